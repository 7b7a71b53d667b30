//! An owner's post by mail: it becomes a draft campaign and a preview to
//! the owner, and only the owner's deliberate reply queues it.

use crate::address;
use crate::campaign::{self, NewCampaign};
use crate::compose::system::AutoSubmitted;
use crate::daemon::context::Context;
use crate::daemon::lists;
use crate::daemon::lists::List;
use crate::mail::automated;
use crate::mail::reply_text;
use crate::mail::words::{begins_with_approval, first_own_line, strip_subject_prefixes};
use crate::store::{Attachment, Content, Kind};
use crate::store::{Pending, PendingAction, Tx, RECORD_VERSION};
use crate::subscription::answer::{base_data, queue_mail, Handled};
use crate::subscription::check_token;
use crate::token::{Purpose, Token};
use mail_parser::{Message, MimeHeaders};
use serde_json::json;

/// Lines of the post shown in the preview mail to the owner.
pub(crate) const PREVIEW_LINES: usize = 40;

/// Words of a person who is away, in the Subject or the first line of a
/// reply: such a reply is a responder's, whatever else it says.
const AWAY_WORDS: &[&str] = &[
    "semester",
    "frånvaro",
    "frånvarande",
    "out of office",
    "out of the office",
    "vacation",
    "autosvar",
    "automatiskt svar",
    "automatic reply",
    "auto-reply",
    "autoreply",
];

/// Does a reply to an approval request approve? Ok(()) only for a
/// deliberate act: the reply's own text (not the quote) begins with an
/// approval word, or holds `token` itself on a short line; and nothing marks it as
/// automatic (RFC 3834 and the other headers and subjects that
/// `automated` knows, or away words in the Subject or the first line).
/// `post_subject` is the subject of the post being approved: its words in
/// the reply's Subject or first line are ours, quoted back, not the
/// owner's.
pub(crate) fn deliberate_approval(
    msg: &Message<'_>,
    reverse_path: Option<&str>,
    token: &Token,
    post_subject: Option<&str>,
) -> Result<(), &'static str> {
    if automated::automated(msg, reverse_path).is_some() {
        return Err("approval: an automatic reply never approves");
    }
    // The post's own subject, quoted back in the reply's Subject, is our
    // words, not the writer's.
    let ours = post_subject
        .map(str::to_lowercase)
        .filter(|s| !s.is_empty());
    let theirs = |text: &str| match &ours {
        Some(ours) => text.to_lowercase().replace(ours, " "),
        None => text.to_lowercase(),
    };
    let subject = theirs(strip_subject_prefixes(msg.subject().unwrap_or_default()));
    let own = reply_text::own_text(msg);
    // The reply's own first line is the writer's alone: the post's subject
    // is not cut out of it (a forger who titles the post "semester" would
    // otherwise erase the away words of a vacation reply).
    let first = first_own_line(&own).unwrap_or_default().to_lowercase();
    if AWAY_WORDS
        .iter()
        .any(|w| subject.contains(w) || first.contains(w))
    {
        return Err("approval: a reply that says its writer is away never approves");
    }
    // The token pasted on a line of its own, or with a word or three
    // ("kod: …"): a responder that echoes our Subject ("… godkänn: X, kod
    // TOKEN") into its text does not approve.
    let quotes_token = own.lines().any(|line| {
        let words: Vec<&str> = line
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        words.len() <= 4
            && words
                .iter()
                .any(|w| Token::decode(w).as_ref() == Some(token))
    });
    if begins_with_approval(first_own_line(&own).unwrap_or_default()) || quotes_token {
        return Ok(());
    }
    Err("approval: the reply does not begin with an approval word (ok, ja, skicka, godkänn, send, approve)")
}

/// For a mail that carries an owner's approval token (an owner's post, or
/// a person waiting on a closed list): why it does not approve, if it does
/// not (see [`deliberate_approval`]). None for every other token, and for
/// tokens that do not verify (the caller answers those as before).
pub(crate) fn refused_approval(
    ctx: &Context,
    list: Option<&List>,
    token: &Token,
    msg: &Message<'_>,
    reverse_path: Option<&str>,
) -> anyhow::Result<Option<&'static str>> {
    let Ok(pending) = check_token(ctx, list, token)? else {
        return Ok(None);
    };
    if !matches!(pending.action, PendingAction::Post | PendingAction::Approve) || pending.completed
    {
        return Ok(None);
    }
    let post_subject = match pending.campaign {
        Some(id) => ctx.store.campaign(id)?.map(|c| c.content.subject),
        None => None,
    };
    Ok(deliberate_approval(msg, reverse_path, token, post_subject.as_deref()).err())
}

/// Markdown-safe text: the post's text becomes the newsletter body as
/// paragraphs, with nothing that Markdown or Handlebars would act on
/// except what the owner clearly wrote as fields (`{{name}}`).
pub(crate) fn as_markdown(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = line.trim_end();
        // A leading '#', '>', '-', '*', '+' or "1." would change the block.
        let needs_escape = line.starts_with(['#', '>', '-', '*', '+', '|'])
            || line
                .split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if needs_escape {
            out.push('\\');
        }
        out.push_str(&line.replace('<', "&lt;"));
        // Keep the owner's line breaks.
        out.push_str(if line.is_empty() { "\n" } else { "  \n" });
    }
    out
}

/// `Some(delsp)` when the post's text part is `format=flowed` (RFC 3676),
/// as Thunderbird and Apple Mail send it.
fn flowed(msg: &Message<'_>) -> Option<bool> {
    let part = msg.text_body.first().and_then(|&i| msg.part(i))?;
    let ct = part.content_type()?;
    let param = |name: &str| {
        ct.attribute(name).map(|v| {
            v.trim()
                .eq_ignore_ascii_case(if name == "format" { "flowed" } else { "yes" })
        })
    };
    param("format")
        .unwrap_or(false)
        .then(|| param("delsp").unwrap_or(false))
}

/// RFC 3676 §4: a line that ends in a space continues on the next (the
/// space removed too with `delsp=yes`); a leading space was stuffed; the
/// signature separator `-- ` ends a paragraph. The owner's paragraphs and
/// deliberate line breaks stay; the client's wrapping at 72 goes.
pub(crate) fn unflow(text: &str, delsp: bool) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = line.strip_prefix(' ').unwrap_or(line);
        let soft = line.ends_with(' ') && line != "-- " && !line.starts_with('>');
        if soft {
            out.push_str(if delsp { &line[..line.len() - 1] } else { line });
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// An owner's mail to `L@D`: held as a draft campaign, and the owner gets a
/// preview with a token. Only the reply from the owner's real mailbox (the
/// round trip) queues it: a forged From gets nowhere.
pub fn owner_post(
    ctx: &Context,
    list: &List,
    owner: &str,
    msg: &Message<'_>,
) -> anyhow::Result<Handled> {
    let subject = address::header_safe(msg.subject().unwrap_or_default());
    let subject = strip_subject_prefixes(&subject).to_string();
    let text = match msg.body_text(0) {
        Some(t) if !msg.text_body.is_empty() => match flowed(msg) {
            Some(delsp) => unflow(&t, delsp),
            None => t.to_string(),
        },
        _ => msg
            .body_html(0)
            .map(|h| crate::mail::html_text::html_to_text(&h))
            .unwrap_or_default(),
    };
    let mut attachments = Vec::new();
    let mut total = 0usize;
    for part in msg.attachments() {
        let data = part.contents().to_vec();
        total += data.len();
        let filename = part
            .attachment_name()
            .map(address::header_safe)
            .unwrap_or_else(|| "bilaga".to_string());
        let content_type = part
            .content_type()
            .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("octet-stream")))
            .unwrap_or_else(|| "application/octet-stream".into());
        attachments.push(Attachment {
            filename,
            content_type,
            data,
        });
    }
    let content = Content {
        kind: Kind::Newsletter,
        source: "mail".into(),
        subject: if subject.is_empty() {
            list.name.clone()
        } else {
            subject.clone()
        },
        preheader: String::new(),
        markdown: as_markdown(&text),
        title: String::new(),
        link: None,
        attachments,
    };
    let problem = if total > ctx.config.limits.max_attachment_bytes {
        Some(format!(
            "the attachments are {} kB, more than the {} kB allowed; put big files on the web and link to them",
            total / 1024,
            ctx.config.limits.max_attachment_bytes / 1024
        ))
    } else {
        crate::compose::mime::Prepared::new(&content, list, &ctx.config.templates_dir)
            .err()
            .map(|e| e.to_string())
    };
    let recipients = campaign::count_recipients(ctx, &list.id, &[])?;
    let names: Vec<String> = content
        .attachments
        .iter()
        .map(|a| format!("{} ({} kB)", a.filename, a.data.len().div_ceil(1024)))
        .collect();
    let preview: String = text
        .lines()
        .take(PREVIEW_LINES)
        .collect::<Vec<_>>()
        .join("\n");
    // One mail for both outcomes: the preview with its token, or the problem.
    let answer = |tx: &mut Tx<'_>, token: Option<&str>, problem: &str| {
        let mut data = base_data(ctx, list, owner, "");
        data["post_subject"] = json!(content.subject);
        data["problem"] = json!(problem);
        data["recipients"] = json!(recipients);
        data["attachments"] = json!(names);
        data["preview"] = json!(if token.is_some() {
            preview.as_str()
        } else {
            ""
        });
        data["token"] = json!(token.unwrap_or_default());
        let reply_to =
            token.map(|t| lists::list_address(list, "confirm", Some(t), &ctx.config.domain));
        data["confirm_address"] = json!(reply_to.clone().unwrap_or_default());
        data["confirm_url"] = json!(token
            .map(|t| format!("{}/confirm/{t}", ctx.config.base_url()))
            .unwrap_or_default());
        queue_mail(
            ctx,
            tx,
            list,
            "post-preview",
            owner,
            "",
            &data,
            reply_to,
            AutoSubmitted::Replied,
            crate::mail::message::message_id(msg),
        )
    };
    if let Some(problem) = problem {
        ctx.store.write(|tx| answer(tx, None, &problem))?;
        return Ok(Handled::done("owner post refused: it has a problem"));
    }
    let draft = campaign::create(
        ctx,
        NewCampaign {
            list: list.id.clone(),
            content: content.clone(),
            filters: vec![],
            at: None,
            draft: true,
        },
    )?;
    ctx.store.write(|tx| {
        let pending = Pending {
            v: RECORD_VERSION,
            id: tx.random_id()?,
            list: list.id.clone(),
            email: address::normalize(owner),
            name: String::new(),
            action: PendingAction::Post,
            issued: ctx.now_secs(),
            method: "mail".into(),
            evidence: crate::mail::message::message_id(msg).unwrap_or_default(),
            attributes: Default::default(),
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
        answer(tx, Some(&token), "")
    })?;
    Ok(Handled::done("owner post held for approval"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn format_flowed_text_is_unwrapped_and_hard_breaks_stay() {
        let text = "Hej alla!\n\nHandboken om lokala finansieringslösningar \nfinns nu på webben, med \nexempel från tolv orter.\n\nHälsningar\nKarin\n-- \nProjektledare\n";
        assert_eq!(
            super::unflow(text, false),
            "Hej alla!\n\nHandboken om lokala finansieringslösningar finns nu på webben, med exempel från tolv orter.\n\nHälsningar\nKarin\n-- \nProjektledare\n"
        );
        // delsp=yes: the space before the break was added by the client.
        assert_eq!(super::unflow("ett-\ntvå \ntre\n", true), "ett-\ntvåtre\n");
        // Space-stuffing is undone.
        assert_eq!(super::unflow("  From here\n", false), " From here\n");
    }
}
