//! utskick: the mailing-list and newsletter daemon of the project
//! *Lokal finansiering – för landsbygdens utveckling*.
//!
//! The way a message travels is visible in the module names:
//! `inbound` (SMTP/LMTP) → `classify` (automated or not) → `commands`
//! (subscribe, confirm, …) → `store` (sled, the only module that imports it)
//! → `outbound` (lettre) and back out. `web` and `admin` are the other two
//! doors into `commands` and the store. ARCHITECTURE.md has the map and the
//! invariants.

pub mod address;
pub mod admin;
pub mod bounce;
pub mod campaign;
pub mod check;
pub mod classify;
pub mod commands;
pub mod compose;
pub mod config;
pub mod context;
pub mod csvfile;
pub mod daemon;
pub mod dialogue;
pub mod inbound;
pub mod lists;
pub mod memory;
pub mod newsletter;
pub mod outbound;
pub mod people;
pub mod reply;
pub mod report;
pub mod store;
pub mod templates;
pub mod token;
pub mod web;
