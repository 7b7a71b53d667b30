//! The leader's workspace, below its pages: passwordless sign-in (one-time
//! links mailed to a list's owner), server-side sessions with their CSRF
//! token, and the audit log of every change made through the workspace or
//! the CLI.
//!
//! The pages themselves are in `web::admin`; the changes they make go
//! through `admin::execute`, the same code the CLI's requests run, which
//! records each in the audit log ([`audit`]).
//!
//! Secrets (link tokens, session ids) are 256 random bits; the store keeps
//! only their SHA-256, so a copy of the store signs nobody in. No secret
//! reaches a log line.

pub mod access;
pub mod audit;
