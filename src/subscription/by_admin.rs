//! The administrator adds and removes people, with the consent recorded.

use crate::address;
use crate::daemon::context::Context;
use crate::daemon::lists::List;
use crate::store::{Consent, Status, Subscriber};
use crate::subscription::answer::queue_welcome;
use std::collections::BTreeMap;

/// Why an admin's add was refused, apart from the store failing.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("{0:?} is not an e-mail address")]
    NotAnAddress(String),
    /// The consent text is empty.
    #[error("the consent must say how this person agreed")]
    NoConsent,
    #[error("list {list} has no attribute {key:?} (it has: {})", .known.join(", "))]
    UnknownAttribute {
        list: String,
        key: String,
        known: Vec<String>,
    },
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// `utskick add`: a confirmed subscriber on an admin's word, or the approval
/// of someone awaiting it. The consent text is the proof.
pub fn admin_add(
    ctx: &Context,
    list: &List,
    email: &str,
    name: Option<&str>,
    attributes: BTreeMap<String, String>,
    consent: &str,
) -> Result<String, AddError> {
    if !address::is_valid(email) {
        return Err(AddError::NotAnAddress(email.to_string()));
    }
    if consent.trim().is_empty() {
        return Err(AddError::NoConsent);
    }
    if let Some(key) = attributes.keys().find(|k| !list.attributes.contains(k)) {
        return Err(AddError::UnknownAttribute {
            list: list.id.clone(),
            key: key.clone(),
            known: list.attributes.clone(),
        });
    }
    let email = address::normalize(email);
    let now = ctx.now();
    let said = ctx.store.write(|tx| {
        let mut s = tx.subscriber(&list.id, &email)?.unwrap_or(Subscriber::new(
            tx.random_id()?,
            &list.id,
            &email,
            "",
            Status::Pending,
            now,
        ));
        if let Some(name) = name {
            s.name = address::header_safe(name);
        }
        s.attributes.extend(
            attributes
                .into_iter()
                .map(|(k, v)| (k, address::header_safe(&v))),
        );
        let was = s.status;
        if was == Status::Confirmed {
            s.updated_at = now;
            tx.put_subscriber(&s);
            return Ok(format!(
                "{email} is already a confirmed subscriber of {}",
                list.id
            ));
        }
        s.status = Status::Confirmed;
        s.subscribed_at = Some(now);
        s.unsubscribed_at = None;
        s.bounces = 0;
        s.updated_at = now;
        let admin_consent = Consent {
            method: "admin".into(),
            at: now,
            evidence: address::header_safe(consent),
            confirmed_by: Some("recorded by an admin".into()),
        };
        if was == Status::AwaitingApproval {
            if let Some(c) = s.consent.as_mut() {
                c.confirmed_by = Some(format!(
                    "{}; approved by an admin: {}",
                    c.confirmed_by.clone().unwrap_or_default(),
                    admin_consent.evidence
                ));
            } else {
                s.consent = Some(admin_consent);
            }
        } else {
            s.consent = Some(admin_consent);
        }
        tx.put_subscriber(&s);
        queue_welcome(ctx, tx, list, &s)?;
        Ok(if was == Status::AwaitingApproval {
            format!("approved {email} on {}", list.id)
        } else {
            format!("added {email} to {}", list.id)
        })
    })?;
    Ok(said)
}

/// `utskick remove`: kept as unsubscribed, not deleted; no mail is sent.
pub fn admin_remove(ctx: &Context, list: &List, email: &str) -> anyhow::Result<String> {
    let email = address::normalize(email);
    let now = ctx.now();
    ctx.store.write(|tx| {
        let Some(mut s) = tx.subscriber(&list.id, &email)? else {
            anyhow::bail!("{email} is not on {}", list.id);
        };
        if s.status == Status::Unsubscribed {
            return Ok(format!("{email} had already left {}", list.id));
        }
        s.status = Status::Unsubscribed;
        s.unsubscribed_at = Some(now);
        s.updated_at = now;
        tx.put_subscriber(&s);
        Ok(format!("removed {email} from {}", list.id))
    })
}
