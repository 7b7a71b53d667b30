//! A post to a discussion list's `L@D` (issue 16, `posting = "members"` or
//! `"anyone"`): distributed to every confirmed member as a campaign of kind
//! `post` (the send queue's VERP copies, rate limits, crash bound, bounces,
//! pause and cancel), or held for the owners, who decide by reply; and the
//! members' own settings (`inte-mig`, `mig-också`).
//!
//! Like every handler, it changes the store and queues its mail and never
//! touches the network; the router syncs before it acknowledges.

use crate::address;
use crate::campaign::{self, NewPost};
use crate::compose::post::tag_subject;
use crate::compose::system::AutoSubmitted;
use crate::daemon::context::Context;
use crate::daemon::lists::List;
use crate::daemon::lists::{self, Posting};
use crate::feedback::posts::{deliberate_approval, PREVIEW_LINES};
use crate::mail::message::{message_id, sender};
use crate::mail::reply_text;
use crate::mail::words::{first_own_line, Setting};
use crate::store::{
    Campaign, CampaignStatus, Pending, PendingAction, PostMeta, Status, Subscriber, RECORD_VERSION,
};
use crate::subscription::answer::{base_data, queue_mail, Handled};
use crate::token::{Purpose, Token};
use mail_parser::{Message, MimeHeaders};
use serde_json::json;

/// Words that begin an owner's reply that turns a held post away.
pub const REJECT_WORDS: &[&str] = &["nej", "avvisa", "reject"];
/// What begins an owner's reply that lets a held post through and makes
/// its author a member.
pub const ACCEPT_AND_ADD: &[&str] = &["godkänn och lägg till", "accept and add"];
/// The longest reason for a rejection passed on to the author.
const MAX_REASON_CHARS: usize = 1000;

/// Why a post is held rather than distributed.
fn held_reason(lang_sv: bool, why: Hold) -> &'static str {
    match (why, lang_sv) {
        (Hold::NotMember, true) => "avsändaren är inte medlem i listan",
        (Hold::NotMember, false) => "the sender is not a member of the list",
        (Hold::Rate, true) => {
            "avsändaren har redan skrivit så många inlägg i dag som listan tillåter"
        }
        (Hold::Rate, false) => "the sender has already posted as often today as the list allows",
        (Hold::SeveralFrom, true) => "avsändarraden (From) namnger fler än en adress",
        (Hold::SeveralFrom, false) => "the From field names more than one address",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    NotMember,
    Rate,
    /// A From with more than one address: someone besides the member
    /// (a bank, say) would be named as the post's author. If approved,
    /// the copies name the first address only (`compose::post`).
    SeveralFrom,
}

/// The confirmed member of `list` at `email`, if any.
fn member(ctx: &Context, list: &List, email: &str) -> anyhow::Result<Option<Subscriber>> {
    Ok(ctx
        .store
        .subscriber(&list.id, &address::normalize(email))?
        .filter(|s| s.status == Status::Confirmed))
}

/// Is `email` a confirmed member of `list`?
pub(crate) fn is_member(ctx: &Context, list: &List, email: &str) -> anyhow::Result<bool> {
    Ok(member(ctx, list, email)?.is_some())
}

/// Is `email` one of our own addresses (a VERP sender, a list address)?
fn ours(ctx: &Context, email: &str) -> bool {
    address::split(email).is_some_and(|(_, d)| d.eq_ignore_ascii_case(&ctx.config.domain))
        || address::is_system_sender(email)
}

/// A post to `L@D` on a discussion list. An owner who is not a member
/// posts a newsletter (see the router); everyone else arrives here.
pub fn post(
    ctx: &Context,
    list: &List,
    msg: &Message<'_>,
    reverse_path: Option<&str>,
    raw: &[u8],
) -> anyhow::Result<Handled> {
    let Some((from, name)) = sender(msg, None) else {
        return Ok(Handled::ignored("post: no From address"));
    };
    if ours(ctx, &from) || reverse_path.is_some_and(|r| !r.is_empty() && ours(ctx, r)) {
        return Ok(Handled::ignored(
            "post: from one of our own addresses (a loop)",
        ));
    }
    let d = &list.discussion;
    // What the worker will read for every copy must read now, or the
    // post would stay queued and failing.
    if crate::compose::post::Post::parse(raw, d.attachments, true, &crate::compose::post::no_links)
        .is_none()
    {
        return Ok(Handled::ignored(
            "post: its From or MIME structure cannot be read",
        ));
    }
    // Larger than the list takes: not kept (a held copy would be the
    // whole post, from anyone), the author told why, at most once a day.
    if raw.len() > d.max_post_bytes {
        return too_big(ctx, list, msg, &from, &name, raw.len());
    }
    // Envelope and header both: a member's From on someone else's
    // envelope is held (pipe delivery has no envelope: the header alone).
    let author = member(ctx, list, &from)?;
    let envelope_member = match reverse_path {
        None => true,
        Some(r) => !r.is_empty() && member(ctx, list, r)?.is_some(),
    };
    let is_member = author.is_some() && envelope_member;
    let mut hold = match d.posting {
        Posting::Members if !is_member => Some(Hold::NotMember),
        _ => None,
    };
    if hold.is_none() && msg.from().is_some_and(|f| f.iter().nth(1).is_some()) {
        hold = Some(Hold::SeveralFrom);
    }
    let now = ctx.now();
    if hold.is_none() {
        let key = format!("post\0{}\0{}", list.id, address::mailbox(&from));
        let allowed = ctx
            .store
            .write(|tx| Ok(tx.take_daily(&key, d.max_posts_per_member_per_day, now)?))?;
        if !allowed {
            hold = Some(Hold::Rate);
        }
    }
    let meta = PostMeta {
        author: address::normalize(&from),
        skip: author.as_ref().filter(|s| s.notmetoo).map(|s| s.id),
        digest: false,
        digested: false,
    };
    let subject = tag_subject(msg.subject().unwrap_or_default(), &d.subject_tag);
    let Some(why) = hold else {
        let c = campaign::create_post(
            ctx,
            NewPost {
                list: list.id.clone(),
                subject,
                raw: raw.to_vec(),
                meta,
                draft: false,
            },
        )?;
        tracing::info!(list = %list.id, campaign = c.id, "discussion post queued for the members");
        return Ok(Handled::done("discussion post distributed"));
    };
    if list.owners.is_empty() {
        return Ok(Handled::ignored("post held, but the list has no owners"));
    }
    // A flood from one mailbox reaches the owners only so far, as its
    // questions at `L-request@D` do (`limits.questions_per_day`): the rest
    // is neither kept nor previewed, only recorded (`utskick ignored`).
    let preview_key = format!("post-preview\0{}\0{}", list.id, address::mailbox(&from));
    let per_day = ctx.config.limits.questions_per_day;
    if !ctx
        .store
        .write(|tx| Ok(tx.take_daily(&preview_key, per_day, now)?))?
    {
        tracing::info!(list = %list.id, "held post over the sender's daily previews: recorded, not kept");
        return Ok(Handled::ignored(
            "post held: this sender's previews to the owners for today were sent already; not kept",
        ));
    }
    let draft = campaign::create_post(
        ctx,
        NewPost {
            list: list.id.clone(),
            subject: subject.clone(),
            raw: raw.to_vec(),
            meta,
            draft: true,
        },
    )?;
    let sv = list.language == lists::Language::Sv;
    let reason = held_reason(sv, why);
    let text = msg
        .body_text(0)
        .map(|t| t.to_string())
        .or_else(|| {
            msg.body_html(0)
                .map(|h| crate::mail::html_text::html_to_text(&h))
        })
        .unwrap_or_default();
    let preview: String = text
        .lines()
        .take(PREVIEW_LINES)
        .collect::<Vec<_>>()
        .join("\n");
    let attachments: Vec<String> = msg
        .attachments()
        .map(|a| {
            format!(
                "{} ({} kB)",
                a.attachment_name()
                    .map(address::header_safe)
                    .unwrap_or_else(|| "?".into()),
                a.contents().len().div_ceil(1024)
            )
        })
        .collect();
    let in_reply_to = message_id(msg);
    let author_email = address::normalize(&from);
    // The envelope sender, shown to the owners when it is not the From
    // (a forged From is what "accept and add" must not trust).
    let envelope = reverse_path
        .filter(|r| !r.is_empty() && !address::normalize(r).eq_ignore_ascii_case(&author_email))
        .map(address::header_safe);
    let author_key = format!("post-held\0{}\0{}", list.id, address::mailbox(&from));
    ctx.store.write(|tx| {
        let pending = Pending {
            v: RECORD_VERSION,
            id: tx.random_id()?,
            list: list.id.clone(),
            email: list.owners[0].clone(),
            name: String::new(),
            action: PendingAction::Post,
            issued: ctx.now_secs(),
            method: "mail".into(),
            evidence: in_reply_to.clone().unwrap_or_default(),
            attributes: [
                ("author".to_string(), author_email.clone()),
                ("author_name".to_string(), name.clone()),
            ]
            .into_iter()
            .collect(),
            completed: false,
            campaign: Some(draft.id),
        };
        let token = ctx.secret.mint(
            Purpose::Post,
            &pending.list,
            &pending.email,
            pending.id,
            pending.issued,
        );
        tx.put_pending(&pending);
        let confirm = lists::list_address(list, "confirm", Some(&token), &ctx.config.domain);
        for owner in &list.owners {
            let mut data = base_data(ctx, list, owner, "");
            data["post_subject"] = json!(subject);
            data["author"] = json!(author_email);
            data["author_name"] = json!(name);
            if let Some(env) = envelope.as_ref() {
                data["envelope"] = json!(env);
            }
            data["reason"] = json!(reason);
            data["preview"] = json!(preview);
            data["attachments"] = json!(attachments);
            data["token"] = json!(token);
            data["confirm_address"] = json!(confirm);
            data["confirm_url"] = json!(format!("{}/confirm/{token}", ctx.config.base_url()));
            queue_mail(
                ctx,
                tx,
                list,
                "moderate-post",
                owner,
                "",
                &data,
                Some(confirm.clone()),
                AutoSubmitted::Generated,
                None,
            )?;
        }
        // The author hears once a day at most that a moderator decides:
        // a flood of forged posts makes no flood of notices.
        if tx.take_daily(&author_key, 1, now)? {
            let mut data = base_data(ctx, list, &author_email, &name);
            data["post_subject"] = json!(subject);
            data["rejected"] = json!(false);
            data["reason"] = json!(reason);
            queue_mail(
                ctx,
                tx,
                list,
                "post-held",
                &author_email,
                &name,
                &data,
                None,
                AutoSubmitted::Replied,
                in_reply_to.clone(),
            )?;
        }
        Ok(())
    })?;
    tracing::info!(list = %list.id, campaign = draft.id, reason, "discussion post held for the owners");
    Ok(Handled::done("discussion post held for the owners"))
}

/// A post over `max_post_bytes`: refused, the author told (once a day at
/// most, so a forged flood makes no flood of notices), recorded among the
/// ignored messages.
fn too_big(
    ctx: &Context,
    list: &List,
    msg: &Message<'_>,
    from: &str,
    name: &str,
    size: usize,
) -> anyhow::Result<Handled> {
    let author = address::normalize(from);
    let key = format!("post-held\0{}\0{}", list.id, address::mailbox(&author));
    let now = ctx.now();
    let subject = tag_subject(
        msg.subject().unwrap_or_default(),
        &list.discussion.subject_tag,
    );
    ctx.store.write(|tx| {
        if address::is_valid(&author) && tx.take_daily(&key, 1, now)? {
            let mut data = base_data(ctx, list, &author, name);
            data["post_subject"] = json!(subject);
            data["rejected"] = json!(true);
            data["too_big"] = json!(true);
            data["size_kb"] = json!(size.div_ceil(1024));
            data["max_kb"] = json!(list.discussion.max_post_bytes / 1024);
            queue_mail(
                ctx,
                tx,
                list,
                "post-held",
                &author,
                name,
                &data,
                None,
                AutoSubmitted::Replied,
                message_id(msg),
            )?;
        }
        Ok(())
    })?;
    tracing::info!(list = %list.id, size, "discussion post over max_post_bytes refused");
    Ok(Handled::ignored(
        "post larger than the list's max_post_bytes: refused, not kept",
    ))
}

/// The held post a token stands for: its pending record and draft, when
/// the token names a post (not an owner's newsletter) still undecided.
pub(crate) fn held_post(
    ctx: &Context,
    list: &List,
    token: &Token,
) -> anyhow::Result<Option<(Pending, Campaign)>> {
    let Ok(pending) = crate::subscription::check_token(ctx, Some(list), token)? else {
        return Ok(None);
    };
    if pending.action != PendingAction::Post {
        return Ok(None);
    }
    let Some(c) = pending
        .campaign
        .map(|id| ctx.store.campaign(id))
        .transpose()?
        .flatten()
    else {
        return Ok(None);
    };
    Ok(c.post.is_some().then_some((pending, c)))
}

/// What an owner's reply to a held post says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Approve,
    ApproveAndAdd,
    /// With the reason to pass on ("" for none).
    Reject(String),
}

/// Reads the owner's own text (never the quote): "godkänn och lägg till",
/// a rejection word with an optional reason after it, or a deliberate
/// approval (`posts::deliberate_approval`: an auto-reply never decides).
pub(crate) fn decision(
    msg: &Message<'_>,
    reverse_path: Option<&str>,
    token: &Token,
    post_subject: &str,
) -> Result<Decision, &'static str> {
    if crate::mail::automated::automated(msg, reverse_path).is_some() {
        return Err("moderation: an automatic reply never decides");
    }
    let own = reply_text::own_text(msg);
    let first = first_own_line(&own).unwrap_or_default().trim().to_string();
    let lower = first.to_lowercase();
    if ACCEPT_AND_ADD.iter().any(|w| lower.starts_with(w)) {
        deliberate_approval(msg, reverse_path, token, Some(post_subject))
            .map_err(|_| "moderation: the reply looks automatic")?;
        return Ok(Decision::ApproveAndAdd);
    }
    let word: String = lower.chars().take_while(|c| c.is_alphabetic()).collect();
    if REJECT_WORDS.contains(&word.as_str()) {
        // The reason: what follows the word, and the lines after it.
        let rest_of_line = first[word.len().min(first.len())..]
            .trim_start_matches(|c: char| {
                c.is_whitespace() || matches!(c, ',' | ':' | '.' | '-' | '!')
            })
            .to_string();
        let after: Vec<&str> = own
            .lines()
            .skip_while(|l| l.trim() != first)
            .skip(1)
            .collect();
        let mut reason = rest_of_line;
        let more = after.join("\n").trim().to_string();
        if !more.is_empty() {
            if !reason.is_empty() {
                reason.push('\n');
            }
            reason.push_str(&more);
        }
        return Ok(Decision::Reject(
            reason.chars().take(MAX_REASON_CHARS).collect(),
        ));
    }
    deliberate_approval(msg, reverse_path, token, Some(post_subject))?;
    Ok(Decision::Approve)
}

/// An owner's reply to a held post: approve, approve and add the author,
/// or reject (the author is told, with the reason when one was given).
pub(crate) fn moderate(
    ctx: &Context,
    list: &List,
    pending: Pending,
    draft: Campaign,
    token: &Token,
    msg: &Message<'_>,
    reverse_path: Option<&str>,
) -> anyhow::Result<Handled> {
    if pending.completed || draft.status != CampaignStatus::Draft {
        return Ok(Handled::ignored(
            "moderation: this post was decided already",
        ));
    }
    // By mail, only an owner decides (as `apply_token` refuses an
    // approval from a non-owner): a forwarded preview is no licence.
    let who = sender(msg, None).map(|(e, _)| e).unwrap_or_default();
    if !list.is_owner(&who) {
        tracing::warn!(list = %list.id, "moderation reply from a non-owner ignored");
        return Ok(Handled::ignored(
            "moderation: the reply is not from an owner",
        ));
    }
    let decided = match decision(msg, reverse_path, token, &draft.content.subject) {
        Ok(d) => d,
        Err(reason) => return Ok(Handled::ignored(reason)),
    };
    let now = ctx.now();
    let author = pending
        .attributes
        .get("author")
        .cloned()
        .unwrap_or_default();
    let author_name = pending
        .attributes
        .get("author_name")
        .cloned()
        .unwrap_or_default();
    let evidence = message_id(msg).unwrap_or_default();
    // "Accept and add" approves the post and invites its author: a From
    // may be forged, so the address becomes a member only when its owner
    // confirms (double opt-in, the ordinary confirmation to join).
    if decided == Decision::ApproveAndAdd && address::is_valid(&author) {
        let invite = crate::subscription::answer::Request {
            list,
            email: &author,
            name: &author_name,
            method: crate::subscription::setting::OWNER_INVITED,
            evidence: format!(
                "invited by list owner {} when approving the post {} ({evidence})",
                address::header_safe(&who),
                pending.evidence
            ),
            in_reply_to: None,
            attributes: Default::default(),
        };
        if let Err(e) = crate::subscription::subscribe(ctx, &invite) {
            tracing::warn!(list = %list.id, error = %e, "could not invite the author of an approved post");
        }
    }
    ctx.store.write(|tx| {
        let Some(mut c) = tx.campaign(draft.id)? else {
            return Ok(());
        };
        if c.status != CampaignStatus::Draft {
            return Ok(());
        }
        let mut p = pending.clone();
        p.completed = true;
        tx.put_pending(&p);
        match &decided {
            Decision::Approve | Decision::ApproveAndAdd => {
                c.status = CampaignStatus::Scheduled;
                c.scheduled_at = now;
                tx.put_campaign(&c);
            }
            Decision::Reject(reason) => {
                c.status = CampaignStatus::Cancelled;
                c.finished_at = Some(now);
                tx.put_campaign(&c);
                if address::is_valid(&author) {
                    let mut data = base_data(ctx, list, &author, &author_name);
                    data["post_subject"] = json!(c.content.subject);
                    data["rejected"] = json!(true);
                    data["reason"] = json!(reason);
                    queue_mail(
                        ctx,
                        tx,
                        list,
                        "post-held",
                        &author,
                        &author_name,
                        &data,
                        None,
                        AutoSubmitted::Generated,
                        None,
                    )?;
                }
            }
        }
        Ok(())
    })?;
    match decided {
        Decision::Approve => Ok(Handled::done("held post approved by an owner")),
        Decision::Reject(_) => Ok(Handled::done("held post rejected by an owner")),
        Decision::ApproveAndAdd => Ok(Handled::done("held post approved and its author invited")),
    }
}

/// `inte-mig` / `nomail-self` (no copy of one's own posts), `mig-också` /
/// `metoo` (copies again), `sammandrag` / `digest` (a digest a day) and
/// `enskilda` / `nodigest` (each post) at `L-request@D`: a confirmation to
/// the member's own address; the setting changes when they answer it
/// (`subscription::setting`). Someone who is not a member is told so by
/// the ordinary help mail (the caller's job).
pub(crate) fn set_member(
    ctx: &Context,
    list: &List,
    email: &str,
    setting: Setting,
    in_reply_to: Option<String>,
) -> anyhow::Result<Option<Handled>> {
    let evidence = in_reply_to
        .clone()
        .unwrap_or_else(|| "mail without Message-ID".into());
    crate::subscription::setting::request(ctx, list, email, setting, evidence, in_reply_to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_reply_decides_by_its_own_text() {
        let secret = crate::token::Secret::from_bytes([5; 32]);
        let text = secret.mint(Purpose::Post, "p", "ledare@b.se", 1, 100);
        let token = Token::decode(&text).unwrap();
        let check = |headers: &str, body: &str| {
            let raw = format!(
                "{headers}From: ledare@b.se\r\nSubject: Re: Inlägg väntar: [P] Möte\r\n\r\n{body}\r\n"
            );
            let msg = mail_parser::MessageParser::default()
                .parse(raw.as_bytes())
                .unwrap();
            decision(&msg, Some("ledare@b.se"), &token, "[P] Möte")
        };
        assert_eq!(check("", "ok"), Ok(Decision::Approve));
        assert_eq!(
            check("", "Godkänn och lägg till\r\n\r\n> x"),
            Ok(Decision::ApproveAndAdd)
        );
        assert_eq!(check("", "Nej"), Ok(Decision::Reject(String::new())));
        assert_eq!(
            check(
                "",
                "Nej, det hör inte hit.\r\nSkriv till mig i stället.\r\n\r\n> ok"
            ),
            Ok(Decision::Reject(
                "det hör inte hit.\nSkriv till mig i stället.".into()
            ))
        );
        assert_eq!(check("", "reject"), Ok(Decision::Reject(String::new())));
        assert!(check("Auto-Submitted: auto-replied\r\n", "ok").is_err());
        assert!(check("Auto-Submitted: auto-replied\r\n", "nej").is_err());
        assert!(check("", "Tack, jag läser det sen.").is_err());
        assert!(check("", "Hej\r\n\r\n> ok").is_err());
    }
}
