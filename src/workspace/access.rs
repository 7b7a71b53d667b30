//! Signing in and staying signed in: one-time login links, sessions with
//! an idle expiry, and the CSRF token that every POST must carry.

use chrono::{DateTime, Duration, Utc};
use data_encoding::BASE32_NOPAD;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::address;
use crate::compose::system::{system_mail, AutoSubmitted, Envelope};
use crate::daemon::context::Context;
use crate::daemon::lists::List;
use crate::store::{LoginLink, Session, RECORD_VERSION};
use crate::subscription::answer::{base_data, queue_mail};

/// A login link works this long after it was mailed, and once.
pub const LINK_MINUTES: i64 = 15;
/// A session ends after this long without a request.
pub const IDLE_HOURS: i64 = 12;
/// A session ends this long after it began, however busy: a stolen cookie
/// kept alive does not live for ever.
pub const MAX_SESSION_DAYS: i64 = 7;
/// Login links mailed to one mailbox per hour; more asks get the same page
/// and no mail.
pub const LINKS_PER_ADDRESS_PER_HOUR: u32 = 5;
/// A session's `last_seen` is written at most this often (seconds), so
/// reading pages does not write the store on every request.
const TOUCH_EVERY_SECS: i64 = 60;

/// 256 random bits, lower-case base32 (52 characters): a link token or a
/// session id.
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    BASE32_NOPAD.encode(&bytes).to_ascii_lowercase()
}

/// What the store keeps instead of a secret.
fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.trim().as_bytes()).to_vec()
}

/// Whether `secret` could be one of ours (a cheap check before a lookup).
fn well_formed(secret: &str) -> bool {
    secret.len() == 52
        && secret
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7'))
}

/// The first list `email` owns, if any.
pub fn owned_list<'c>(ctx: &'c Context, email: &str) -> Option<&'c List> {
    ctx.lists.iter().find(|l| l.is_owner(email))
}

/// The lists `email` owns, in configuration order.
pub fn owned_lists<'c>(ctx: &'c Context, email: &str) -> Vec<&'c List> {
    ctx.lists.iter().filter(|l| l.is_owner(email)).collect()
}

/// Someone asked for a login link for `email`. If it is an owner's and the
/// address's hourly budget allows, a link is stored and its mail queued,
/// in one write. Every address takes the same way through the store (the
/// budget is counted for strangers too), so the answer and its timing do
/// not tell an owner from anyone else. The caller syncs, then rings
/// `mail_ready`; it answers the same page whatever happened.
pub fn request_link(ctx: &Context, email: &str) -> anyhow::Result<()> {
    let email = address::normalize(email.trim()).to_lowercase();
    if !address::is_valid(&email) {
        return Ok(());
    }
    let now = ctx.now();
    let budget = format!("admin-login\0{}", address::mailbox(&email));
    let owner = owned_list(ctx, &email);
    ctx.store.write(|tx| {
        let allowed = tx
            .take_hourly(&[(&budget, LINKS_PER_ADDRESS_PER_HOUR)], now, 1)?
            .is_some();
        let token = new_secret();
        let Some(list) = owner.or_else(|| ctx.lists.iter().next()) else {
            return Ok(());
        };
        let mut data = base_data(ctx, list, &email, "");
        data["login_url"] = json!(format!("{}/admin/login/{token}", ctx.config.base_url()));
        data["login_minutes"] = json!(LINK_MINUTES);
        if owner.is_none() || !allowed {
            // The mail is made for a stranger too (and for an owner past
            // the budget), then dropped: an owner's answer takes no longer.
            let rendered = ctx
                .templates
                .render(list.language, &list.id, "admin-login", &data)?;
            let env = Envelope {
                list,
                domain: &ctx.config.domain,
                to_email: &email,
                to_name: "",
                reply_to: None,
                auto: AutoSubmitted::Generated,
                in_reply_to: None,
                dkim: ctx.dkim.as_ref(),
            };
            let _ = system_mail(&env, &rendered, 0);
            return Ok(());
        }
        tx.put_login_link(
            &hash(&token),
            &LoginLink {
                v: RECORD_VERSION,
                email: email.clone(),
                expires_at: now + Duration::minutes(LINK_MINUTES),
            },
        );
        queue_mail(
            ctx,
            tx,
            list,
            "admin-login",
            &email,
            "",
            &data,
            None,
            AutoSubmitted::Generated,
            None,
        )
    })
}

/// The owner a login link signs in, while it is unused and in time.
pub fn link_owner(ctx: &Context, token: &str) -> anyhow::Result<Option<String>> {
    if !well_formed(token) {
        return Ok(None);
    }
    let now = ctx.now();
    Ok(ctx
        .store
        .login_link(&hash(token))?
        .filter(|l| l.expires_at > now)
        .map(|l| l.email))
}

/// A new session, as the browser's cookie carries it.
pub struct NewSession {
    /// The cookie's value: the session id (only its hash is stored).
    pub id: String,
    pub email: String,
}

/// Uses a login link: in one write the link goes (a second use finds
/// nothing) and a session starts for its owner, while the owner still owns
/// a list. Sessions and links that ran out are swept at the same time.
/// None for a link that is unknown, used or out of time. The caller syncs
/// before it sets the cookie.
pub fn use_link(ctx: &Context, token: &str) -> anyhow::Result<Option<NewSession>> {
    if !well_formed(token) {
        return Ok(None);
    }
    let now = ctx.now();
    let key = hash(token);
    ctx.store.write(|tx| {
        let Some(link) = tx.login_link(&key)? else {
            return Ok(None);
        };
        tx.remove_login_link(&key);
        tx.sweep_workspace(|l| l.expires_at <= now, |s| idle_out(s, now))?;
        if link.expires_at <= now || owned_list(ctx, &link.email).is_none() {
            return Ok(None);
        }
        let id = new_secret();
        tx.put_session(
            &hash(&id),
            &Session {
                v: RECORD_VERSION,
                email: link.email.clone(),
                created_at: now,
                last_seen: now,
            },
        );
        Ok(Some(NewSession {
            id,
            email: link.email,
        }))
    })
}

fn idle_out(s: &Session, now: DateTime<Utc>) -> bool {
    now - s.last_seen >= Duration::hours(IDLE_HOURS)
        || now - s.created_at >= Duration::days(MAX_SESSION_DAYS)
}

/// The owner signed in by session `id`, if the session exists, has not
/// been idle for [`IDLE_HOURS`] nor begun [`MAX_SESSION_DAYS`] ago, and
/// its owner still owns a list. Moves the
/// session's idle clock (a write at most once a minute, not synced: losing
/// it in a crash only shortens the session).
pub fn session_owner(ctx: &Context, id: &str) -> anyhow::Result<Option<String>> {
    if !well_formed(id) {
        return Ok(None);
    }
    let now = ctx.now();
    let key = hash(id);
    let Some(session) = ctx.store.session(&key)? else {
        return Ok(None);
    };
    if idle_out(&session, now) || owned_list(ctx, &session.email).is_none() {
        ctx.store.write(|tx| {
            tx.remove_session(&key);
            Ok(())
        })?;
        return Ok(None);
    }
    if (now - session.last_seen).num_seconds() >= TOUCH_EVERY_SECS {
        ctx.store.write(|tx| {
            // Only if it was not ended meanwhile.
            if let Some(mut s) = tx.session(&key)? {
                s.last_seen = now;
                tx.put_session(&key, &s);
            }
            Ok(())
        })?;
    }
    Ok(Some(session.email))
}

/// Ends session `id` (sign out). The caller syncs before it answers.
pub fn end_session(ctx: &Context, id: &str) -> anyhow::Result<()> {
    let key = hash(id);
    ctx.store.write(|tx| {
        tx.remove_session(&key);
        Ok(())
    })
}

/// The CSRF token of session `id`: derived from the id with the daemon's
/// secret, so it needs no storage and dies with the session.
pub fn csrf_token(ctx: &Context, id: &str) -> String {
    let mac = ctx.secret.fingerprint("workspace-csrf", id);
    mac[..20].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `given` is session `id`'s CSRF token (constant time).
pub fn csrf_ok(ctx: &Context, id: &str, given: &str) -> bool {
    let expected = csrf_token(ctx, id);
    subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), given.trim().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_only_their_hash_is_kept() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(a, b);
        assert!(well_formed(&a), "{a}");
        assert!(!well_formed(&a[1..]));
        assert!(!well_formed(&a.to_uppercase()));
        assert_eq!(hash(&a).len(), 32);
        assert_ne!(hash(&a), a.as_bytes());
    }
}
