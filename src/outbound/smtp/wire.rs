//! The relay connection under a session: the stream (plain or TLS),
//! writes with a timeout, and the reply reader, which keeps the bytes of
//! replies read ahead (several may come in one read) for the next call.
//! Part of `outbound::smtp`.

use std::io::IoSlice;
use std::time::Duration;

use smtp_proto::response::parser::ResponseReceiver;
use smtp_proto::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{refusal, Fault};

/// What we read from the relay at once. smtp-proto refuses a reply over
/// its `MAX_RESPONSE_LENGTH` (4 KiB, all lines together), so a hostile
/// relay makes a session hold at most this plus 4 KiB.
const READ_BUF: usize = 4096;

pub(super) fn silent(limit: Duration) -> String {
    format!("the relay did not answer within {} s", limit.as_secs())
}

pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// A connection with its reply reader.
pub(super) struct Wire {
    pub(super) stream: Stream,
    pub(super) timeout: Duration,
    buf: Box<[u8]>,
    /// Unparsed bytes are `buf[start..end]`.
    pub(super) start: usize,
    pub(super) end: usize,
    parser: ResponseReceiver,
}

impl Wire {
    pub(super) fn new(stream: Stream, timeout: Duration) -> Wire {
        Wire {
            stream,
            timeout,
            buf: vec![0; READ_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            parser: ResponseReceiver::default(),
        }
    }

    /// Writes all of `bytes` (one write call where the kernel takes it).
    pub(super) async fn write(&mut self, bytes: &[u8]) -> Result<(), Fault> {
        self.write_parts([bytes]).await
    }

    /// Writes `parts` one after the other, in as few (vectored) writes as
    /// the kernel takes: a copy goes from its own buffer, not copied next
    /// to its command.
    pub(super) async fn write_parts<const N: usize>(
        &mut self,
        parts: [&[u8]; N],
    ) -> Result<(), Fault> {
        let write = async {
            match &mut self.stream {
                Stream::Plain(s) => {
                    let mut slices = parts.map(IoSlice::new);
                    let mut rest = &mut slices[..];
                    IoSlice::advance_slices(&mut rest, 0);
                    while !rest.is_empty() {
                        let n = s.write_vectored(rest).await?;
                        if n == 0 {
                            return Err(std::io::ErrorKind::WriteZero.into());
                        }
                        IoSlice::advance_slices(&mut rest, n);
                    }
                    Ok(())
                }
                Stream::Tls(s) => {
                    for part in parts {
                        s.write_all(part).await?;
                    }
                    s.flush().await
                }
            }
        };
        match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Fault::Broken(format!("network error: {e}"))),
            Err(_) => Err(Fault::Broken(silent(self.timeout))),
        }
    }

    /// The next reply, whole: from bytes already read (several replies may
    /// come in one read) or read now (one reply may come in many).
    pub(super) async fn reply(&mut self) -> Result<Response<String>, Fault> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            if self.start < self.end {
                let mut bytes = self.buf[self.start..self.end].iter();
                let parsed = self.parser.parse(&mut bytes);
                self.start = self.end - bytes.len();
                match parsed {
                    Ok(reply) => {
                        self.parser.reset();
                        return Ok(reply);
                    }
                    Err(smtp_proto::Error::NeedsMoreData { .. }) => {}
                    Err(e) => {
                        return Err(Fault::Broken(format!(
                            "the relay's reply is not SMTP: {e:?}"
                        )))
                    }
                }
            }
            self.start = 0;
            self.end = 0;
            let read = async {
                match &mut self.stream {
                    Stream::Plain(s) => s.read(&mut self.buf).await,
                    Stream::Tls(s) => s.read(&mut self.buf).await,
                }
            };
            self.end = match tokio::time::timeout_at(deadline, read).await {
                Ok(Ok(0)) => return Err(Fault::Broken("the relay closed the connection".into())),
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(Fault::Broken(format!("network error: {e}"))),
                Err(_) => return Err(Fault::Broken(silent(self.timeout))),
            };
        }
    }

    /// Sends one command and reads its reply, which must be `want`.
    pub(super) async fn command(
        &mut self,
        line: &[u8],
        want: u16,
    ) -> Result<Response<String>, Fault> {
        self.write(line).await?;
        expect(self.reply().await?, want)
    }
}

/// A reply of the class of `want` (2 for 2xx, 3 for 3xx) passes; 4xx and
/// 5xx are refusals; anything else means we no longer understand each
/// other.
pub(super) fn expect(r: Response<String>, want: u16) -> Result<Response<String>, Fault> {
    match r.code / 100 {
        c if c == want => Ok(r),
        4 | 5 => Err(Fault::Refused(r)),
        _ => Err(Fault::Broken(refusal(&r).message)),
    }
}
