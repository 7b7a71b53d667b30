//! utskick: the mailing-list and newsletter daemon of the project
//! *Lokal finansiering – för landsbygdens utveckling*.
//!
//! The folders follow a message's way through the daemon; ARCHITECTURE.md
//! has the map, each folder's invariants, and where to change what.

pub mod address;
pub mod admin;
pub mod campaign;
pub mod compose;
pub mod daemon;
pub mod feedback;
pub mod mail;
pub mod outbound;
pub mod people;
pub mod store;
pub mod subscription;
pub mod time;
pub mod token;
pub mod web;
pub mod workspace;
