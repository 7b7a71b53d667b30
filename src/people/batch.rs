//! A big import in batches: one request per batch, so a big file moves a
//! progress bar and no one request (or transaction run) grows without
//! bound. Whoever carries a batch out (the daemon over the admin socket, or
//! this process) is the caller's choice.

use std::future::Future;

use crate::people::csvfile::Row;
use crate::people::ImportReport;

/// Rows per batch sent to a running daemon: a request must stay under the
/// admin socket's size limit (64 KiB at the least, see `admin::server`),
/// and a batch holds the daemon's writer lock while it runs.
pub const IMPORT_BATCH: usize = 200;

/// Rows per batch when this process holds the store (no daemon runs):
/// nobody else waits for the writer lock, and each batch costs a
/// transaction, a sync (an `fdatasync`) and an audit entry, so a big file
/// goes in big batches. 1M rows are 200 batches; the bar still moves.
pub const IMPORT_BATCH_HERE: usize = 5_000;

impl ImportReport {
    /// Adds what another batch did.
    pub fn absorb(&mut self, other: ImportReport) {
        self.added += other.added;
        self.invited += other.invited;
        self.unchanged += other.unchanged;
        self.skipped.extend(other.skipped);
    }
}

/// Imports `rows` `size` at a time through `import`, in order, calling
/// `done` with the rows of each batch carried out; stops at the first
/// failure. Returns what all batches did together. The rows are moved
/// into their batch, not copied.
pub async fn in_batches<E, F, Fut>(
    rows: Vec<Row>,
    size: usize,
    mut import: F,
    mut done: impl FnMut(usize),
) -> Result<ImportReport, E>
where
    F: FnMut(Vec<Row>) -> Fut,
    Fut: Future<Output = Result<ImportReport, E>>,
{
    let mut total = ImportReport::default();
    let mut rows = rows.into_iter();
    loop {
        let chunk: Vec<Row> = rows.by_ref().take(size.max(1)).collect();
        let n = chunk.len();
        if n == 0 {
            break;
        }
        total.absorb(import(chunk).await?);
        done(n);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::people::Skip;

    fn row(line: usize) -> Row {
        Row {
            line,
            email: format!("p{line}@example.se"),
            name: String::new(),
            status: None,
            attributes: Default::default(),
        }
    }

    #[tokio::test]
    async fn batches_add_up_in_order_and_stop_at_a_failure() {
        let rows: Vec<Row> = (2..2 + IMPORT_BATCH + 5).map(row).collect();
        let mut sizes = Vec::new();
        let mut seen = Vec::new();
        let total = in_batches(
            rows.clone(),
            IMPORT_BATCH,
            |batch| {
                seen.push(batch.first().map(|r| r.line));
                async move {
                    Ok::<_, ()>(ImportReport {
                        added: batch.len() as u64 - 1,
                        skipped: vec![(batch[0].line, Skip::Left)],
                        ..Default::default()
                    })
                }
            },
            |n| sizes.push(n),
        )
        .await
        .unwrap();
        assert_eq!(sizes, vec![IMPORT_BATCH, 5]);
        assert_eq!(seen, vec![Some(2), Some(2 + IMPORT_BATCH)]);
        assert_eq!(total.added, rows.len() as u64 - 2);
        assert_eq!(
            total.skipped,
            vec![(2, Skip::Left), (2 + IMPORT_BATCH, Skip::Left)]
        );
        let mut calls = 0;
        let failed = in_batches(
            rows.clone(),
            IMPORT_BATCH,
            |_| {
                calls += 1;
                async { Err::<ImportReport, _>("full disk") }
            },
            |_| {},
        )
        .await;
        assert_eq!(failed, Err("full disk"));
        assert_eq!(calls, 1);
    }
}
