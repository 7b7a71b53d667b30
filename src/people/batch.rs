//! A big import in batches: one request per batch, so a big file moves a
//! progress bar and no one request (or transaction run) grows without
//! bound. The file's rows are read on a thread of their own, a few
//! batches ahead of the import, so reading overlaps the store's writes and
//! a big file is never held as rows all at once. Whoever carries a batch
//! out (the daemon over the admin socket, or this process) is the
//! caller's choice.

use crate::people::csvfile::{Reader, Row, RowError};
use crate::people::ImportReport;

/// Rows per batch sent to a running daemon: a request must stay under the
/// admin socket's size limit (64 KiB at the least, see `admin::server`),
/// and a batch holds the daemon's writer lock while it runs.
pub const IMPORT_BATCH: usize = 200;

/// Rows per batch when this process holds the store (no daemon runs):
/// nobody else waits for the writer lock, and each batch costs a
/// transaction, two syncs (`fdatasync`) and an audit entry, so a big file
/// goes in big batches. 1M rows are 50 batches; the bar still moves.
pub const IMPORT_BATCH_HERE: usize = 20_000;

/// Data rows (good or not) per message from the reading thread.
const READ_CHUNK: usize = IMPORT_BATCH;

/// Messages the reading thread may be ahead of the import: two of this
/// process's batches, so the next one is read while one is written
/// (about 10 MB of rows at 1M rows of four columns).
const READ_AHEAD: usize = 2 * IMPORT_BATCH_HERE / READ_CHUNK;

impl ImportReport {
    /// Adds what another batch did.
    pub fn absorb(&mut self, other: ImportReport) {
        self.added += other.added;
        self.invited += other.invited;
        self.unchanged += other.unchanged;
        self.skipped.extend(other.skipped);
    }
}

/// Up to `READ_CHUNK` data rows read in a row: the good ones, and the
/// errors of the others.
#[derive(Default)]
struct Chunk {
    rows: Vec<Row>,
    errors: Vec<RowError>,
}

/// A file's rows in batches of the size the caller asks for, in the
/// file's order, read on a thread of their own.
pub struct Batches {
    chunks: tokio::sync::mpsc::Receiver<Chunk>,
    /// Rows read and not yet handed out (a chunk's rest past a batch).
    carry: Vec<Row>,
    /// The rows that could not be read so far, in the file's order.
    pub errors: Vec<RowError>,
    /// Data rows read so far, good or not.
    pub read: usize,
    reading: Option<std::thread::JoinHandle<()>>,
}

impl Batches {
    /// Starts reading `reader`'s rows on a thread (fails only when no
    /// thread can be started).
    pub fn start(reader: Reader) -> std::io::Result<Batches> {
        let (send, chunks) = tokio::sync::mpsc::channel(READ_AHEAD);
        let reading = std::thread::Builder::new()
            .name("import-read".into())
            .spawn(move || {
                let mut chunk = Chunk::default();
                for row in reader {
                    match row {
                        Ok(row) => chunk.rows.push(row),
                        Err(e) => chunk.errors.push(e),
                    }
                    if chunk.rows.len() + chunk.errors.len() == READ_CHUNK
                        && send.blocking_send(std::mem::take(&mut chunk)).is_err()
                    {
                        // The import stopped: nobody reads on.
                        return;
                    }
                }
                if !chunk.rows.is_empty() || !chunk.errors.is_empty() {
                    let _ = send.blocking_send(chunk);
                }
            })?;
        Ok(Batches {
            chunks,
            carry: Vec::new(),
            errors: Vec::new(),
            read: 0,
            reading: Some(reading),
        })
    }

    /// The next batch of at most `size` rows (at least one), with the
    /// data rows, good or not, read for it (for a progress bar); `None`
    /// when no good row is left. The errors read on the way are added to
    /// `errors`.
    pub async fn next(&mut self, size: usize) -> Option<(Vec<Row>, usize)> {
        let size = size.max(1);
        let first = self.carry.len().min(size);
        let mut rows: Vec<Row> = self.carry.drain(..first).collect();
        let mut read = first;
        while rows.len() < size {
            let Some(chunk) = self.chunks.recv().await else {
                self.finished();
                break;
            };
            self.read += chunk.rows.len() + chunk.errors.len();
            read += chunk.rows.len() + chunk.errors.len();
            self.errors.extend(chunk.errors);
            let mut more = chunk.rows;
            if more.len() > size - rows.len() {
                self.carry = more.split_off(size - rows.len());
                read -= self.carry.len();
            }
            rows.append(&mut more);
        }
        (!rows.is_empty()).then_some((rows, read))
    }

    /// The reading thread has ended: a panic there is one here (else the
    /// file would end early without a word).
    fn finished(&mut self) {
        if let Some(Err(panic)) = self.reading.take().map(|t| t.join()) {
            std::panic::resume_unwind(panic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::people::csvfile::RowProblem;

    /// Batches come in the sizes asked for, in the file's order, across
    /// the reading thread's chunks; every bad row is kept with its line,
    /// the good rows after it still come, and every row read is counted.
    #[tokio::test]
    async fn batches_keep_the_order_and_every_bad_row() {
        let n = 3 * READ_CHUNK + 7;
        let mut csv = String::from("email,name\n");
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for i in 0..n {
            if i % 97 == 5 {
                csv.push_str("not-an-address,X\n");
                bad.push(2 + good.len() + bad.len());
            }
            csv.push_str(&format!("p{i}@example.se,P {i}\n"));
            good.push((2 + good.len() + bad.len(), format!("p{i}@example.se")));
        }
        let reader = Reader::open(csv.into_bytes(), &[]).unwrap();
        let total = reader.rows_left();
        assert_eq!(total, good.len() + bad.len());
        let mut batches = Batches::start(reader).unwrap();
        let mut sizes = Vec::new();
        let mut rows = Vec::new();
        let mut read = 0;
        for size in [IMPORT_BATCH, 250, 1_000] {
            let (batch, k) = batches.next(size).await.unwrap();
            sizes.push(batch.len());
            read += k;
            rows.extend(batch.into_iter().map(|r| (r.line, r.email)));
        }
        assert!(batches.next(10).await.is_none());
        assert_eq!(sizes, [IMPORT_BATCH, 250, n - IMPORT_BATCH - 250]);
        assert_eq!(rows, good);
        let lines: Vec<usize> = batches.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, bad);
        assert!(batches
            .errors
            .iter()
            .all(|e| e.problem == RowProblem::NotAnAddress("not-an-address".into())));
        assert_eq!(batches.read, total);
        assert_eq!(read, total);
    }
}
