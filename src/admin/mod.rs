//! Admin requests: what the CLI asks of the store, carried out in the daemon
//! over a Unix socket in `data_dir` (mode 0600), or in the CLI's own process
//! when no daemon runs. sled admits one process, so there is no third way.
//!
//! `protocol` holds the typed requests and answers both sides share;
//! `server` is the daemon's side of the socket, `client` the CLI's, and
//! `execute` carries a request out. Output formatting (table, CSV) is the
//! CLI's business, not this module's.

pub mod client;
pub mod execute;
pub mod protocol;
pub mod server;

pub use client::{call, call_streaming, execute_here, Here};
pub use execute::{execute, execute_as, SubscriberPages};
pub use protocol::{
    sysexits, Cause, Failure, Request, Response, Streamed, SubscriberRow, WireContent,
};
pub use server::serve;
