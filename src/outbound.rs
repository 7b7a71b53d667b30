//! Sending: the transports (file outbox or an SMTP relay through lettre) and
//! the worker that drains the store's queue of system mail.
//!
//! Whether a failure is permanent or transient is decided here, once. A mail
//! leaves the queue only after the transport accepted it (at-least-once: a
//! crash between the two sends it again), or after a permanent failure or
//! the last retry, when it is kept in the dead-letter tree with its error.

use std::sync::Arc;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls as LettreTls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::task::JoinSet;

use crate::config::{Config, Tls, TransportKind};
use crate::context::{Context, Metrics};

/// Retry delays after the 1st, 2nd, … transient failure; after the last the
/// mail is given up (about two days in all, like an MTA's queue lifetime).
const RETRY_DELAYS_SECS: &[i64] = &[60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600];
/// Mails taken from the queue per round.
const BATCH: usize = 64;
/// How long the worker sleeps when nothing wakes it, to pick up retries.
const IDLE_POLL: Duration = Duration::from_secs(5);
/// Per-command timeout towards the relay.
const SMTP_TIMEOUT: Duration = Duration::from_secs(60);

/// A failed delivery, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub permanent: bool,
    pub message: String,
}

#[derive(Clone)]
pub enum Transport {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Transport {
    pub fn from_config(config: &Config) -> anyhow::Result<Transport> {
        match config.outbound.transport {
            TransportKind::File => {
                let dir = config.outbox_dir();
                std::fs::create_dir_all(&dir)
                    .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", dir.display()))?;
                Ok(Transport::File(AsyncFileTransport::with_envelope(dir)))
            }
            TransportKind::Smtp => {
                let o = &config.outbound;
                let (host, port) = o
                    .relay
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
                    .ok_or_else(|| {
                        anyhow::anyhow!("outbound.relay {:?} is not host:port", o.relay)
                    })?;
                let tls = match o.tls {
                    Tls::None => LettreTls::None,
                    Tls::Starttls => LettreTls::Required(TlsParameters::new(host.to_string())?),
                    Tls::Tls => LettreTls::Wrapper(TlsParameters::new(host.to_string())?),
                };
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                    .port(port)
                    .tls(tls)
                    .timeout(Some(SMTP_TIMEOUT))
                    .pool_config(PoolConfig::new().max_size(o.connections));
                if !o.username.is_empty() {
                    let password = std::env::var(&o.password_env).map_err(|_| {
                        anyhow::anyhow!(
                            "outbound.username is set but the environment variable {} (outbound.password_env) is not",
                            o.password_env
                        )
                    })?;
                    builder = builder.credentials(Credentials::new(o.username.clone(), password));
                }
                Ok(Transport::Smtp(builder.build()))
            }
        }
    }

    pub async fn send(
        &self,
        reverse_path: &str,
        forward_path: &[String],
        raw: &[u8],
    ) -> Result<(), SendError> {
        let from = if reverse_path.is_empty() {
            None
        } else {
            Some(reverse_path.parse().map_err(|e| SendError {
                permanent: true,
                message: format!("bad envelope sender: {e}"),
            })?)
        };
        let to = forward_path
            .iter()
            .map(|a| a.parse())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SendError {
                permanent: true,
                message: format!("bad recipient: {e}"),
            })?;
        let envelope = Envelope::new(from, to).map_err(|e| SendError {
            permanent: true,
            message: format!("bad envelope: {e}"),
        })?;
        match self {
            Transport::File(t) => {
                t.send_raw(&envelope, raw)
                    .await
                    .map(drop)
                    .map_err(|e| SendError {
                        // A full disk or a missing directory can be mended by an admin.
                        permanent: false,
                        message: e.to_string(),
                    })
            }
            Transport::Smtp(t) => {
                t.send_raw(&envelope, raw)
                    .await
                    .map(drop)
                    .map_err(|e| SendError {
                        permanent: e.is_permanent(),
                        message: e.to_string(),
                    })
            }
        }
    }
}

/// When to try again after `attempts` failures; None: give up.
pub fn retry_delay(attempts: u32) -> Option<i64> {
    RETRY_DELAYS_SECS.get(attempts as usize - 1).copied()
}

/// Drains the queue until `shutdown` fires; a round in progress finishes first.
pub async fn run_worker(
    ctx: Arc<Context>,
    transport: Transport,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = drain_once(&ctx, &transport).await {
            tracing::error!(error = %e, "outbound round failed");
        }
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = ctx.mail_ready.notified() => {}
            _ = tokio::time::sleep(IDLE_POLL) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Sends what is due now, `outbound.connections` at a time. Returns how many
/// mails were handled.
pub async fn drain_once(ctx: &Arc<Context>, transport: &Transport) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let now = ctx.now().timestamp();
        let due = ctx.store.due_mail(now, BATCH)?;
        if due.is_empty() {
            return Ok(total);
        }
        total += due.len();
        let parallel = ctx.config.outbound.connections.max(1) as usize;
        let mut results = Vec::with_capacity(due.len());
        let mut set = JoinSet::new();
        let mut queue = due.into_iter();
        loop {
            while set.len() < parallel {
                let Some(mail) = queue.next() else { break };
                let transport = transport.clone();
                set.spawn(async move {
                    let r = transport
                        .send(&mail.reverse_path, &mail.forward_path, &mail.raw)
                        .await;
                    (mail, r)
                });
            }
            match set.join_next().await {
                Some(Ok(done)) => results.push(done),
                Some(Err(e)) => tracing::error!(error = %e, "send task failed"),
                None => break,
            }
        }
        let now = ctx.now().timestamp();
        ctx.store.write(|tx| {
            for (mut mail, result) in results {
                match result {
                    Ok(()) => {
                        Metrics::inc(&ctx.metrics.mails_sent);
                        tracing::debug!(id = mail.id, "mail sent");
                        tx.remove_mail(mail.id);
                    }
                    Err(e) => {
                        mail.attempts += 1;
                        mail.last_error = Some(e.message.clone());
                        match (e.permanent, retry_delay(mail.attempts)) {
                            (false, Some(delay)) => {
                                Metrics::inc(&ctx.metrics.mails_deferred);
                                tracing::warn!(id = mail.id, attempts = mail.attempts, error = %e.message, "send deferred");
                                mail.next_attempt = now + delay;
                                tx.update_mail(&mail);
                            }
                            _ => {
                                Metrics::inc(&ctx.metrics.mails_failed);
                                tracing::error!(id = mail.id, permanent = e.permanent, error = %e.message, "send failed for good");
                                tx.bury_mail(&mail);
                            }
                        }
                    }
                }
            }
            Ok(())
        })?;
        ctx.store.sync().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_then_give_up() {
        assert_eq!(retry_delay(1), Some(60));
        assert!(retry_delay(2).unwrap() > retry_delay(1).unwrap());
        assert_eq!(retry_delay(RETRY_DELAYS_SECS.len() as u32 + 1), None);
    }
}
