//! A message handed over by an MTA's pipe (`utskick inject`): which list
//! address it came for and who sent it, when the MTA did not say. What is
//! then done with it is the router's business, as for mail over SMTP.

use crate::daemon::config::Config;
use crate::daemon::lists::{parse_recipient, Lists};

/// The envelope of a handed-over message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The list address it was received for.
    pub recipient: String,
    /// The envelope sender; `""` is the null sender of a bounce.
    pub sender: Option<String>,
}

/// Why a handed-over message cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error("message exceeds inbound.max_message_bytes ({0} bytes)")]
    TooBig(usize),
    #[error("the message could not be parsed")]
    Unparseable,
    /// No recipient was given, and none in the headers is a list's.
    #[error("no To or Cc address belongs to a list")]
    NoListAddress,
    /// The list files could not be read.
    #[error("{0:#}")]
    Lists(anyhow::Error),
}

/// The envelope of `raw`: `recipient` if given, else the first To or Cc
/// address that belongs to a list; `sender` if given, else the
/// Return-Path header as the MTA wrote it.
pub fn envelope(
    config: &Config,
    raw: &[u8],
    recipient: Option<String>,
    sender: Option<String>,
) -> Result<Envelope, InjectError> {
    if raw.len() > config.inbound.max_message_bytes {
        return Err(InjectError::TooBig(config.inbound.max_message_bytes));
    }
    let Some(msg) = crate::mail::message::parse_message(raw) else {
        return Err(InjectError::Unparseable);
    };
    let lists = Lists::for_config(config).map_err(InjectError::Lists)?;
    let recipient = match recipient {
        Some(r) => r,
        None => msg
            .to()
            .into_iter()
            .chain(msg.cc())
            .flat_map(|a| a.iter())
            .filter_map(|a| a.address())
            .find(|a| parse_recipient(a, &config.domain, &lists).is_some())
            .map(str::to_string)
            .ok_or(InjectError::NoListAddress)?,
    };
    // `<>` is the null sender. (mail-parser's return_address() falls back
    // to From, which would hide a bounce's null sender.)
    let sender = sender.or_else(|| {
        msg.header_raw("Return-Path").map(|r| {
            let r = r.trim();
            let inner = r
                .split('<')
                .nth(1)
                .and_then(|x| x.split('>').next())
                .unwrap_or(r);
            inner.trim().to_string()
        })
    });
    Ok(Envelope { recipient, sender })
}
