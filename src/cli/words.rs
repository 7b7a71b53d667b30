//! The CLI's own words for what the library reports in its terms: where a
//! flag is the remedy, the CLI names it (the library never does).

use utskick::admin::protocol::Forgot;
use utskick::admin::{sysexits, Cause, Failure};
use utskick::compose::error::AuthoringError;
use utskick::mail::inject::InjectError;
use utskick::people::Skip;

/// A failure reworded in flags where its cause is known.
pub fn flagged(mut f: Failure) -> Failure {
    let Some(cause) = &f.cause else { return f };
    f.message = match cause {
        Cause::AddWithoutConsent => "--consent must say how this person agreed".into(),
        Cause::ImportWithoutConsent => {
            "--consent must say how these people agreed (or use --invite)".into()
        }
        Cause::UnknownFilter { list, key, known } => format!(
            "--where {key}=…: list {list} has no attribute {key:?} (it has: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ),
        Cause::NotATestAddress { to } => format!("--to {to:?} is not an e-mail address"),
    };
    f
}

/// An authoring error in the CLI's terms: the announcement's `title` and
/// `link` are its `--title` and `--link`, and a link is the remedy for an
/// attachment too big to send.
pub fn authoring(e: AuthoringError) -> Failure {
    let source = match e.source.as_str() {
        "title" => "--title".to_string(),
        "link" => "--link".to_string(),
        _ => e.source.clone(),
    };
    let message = e
        .message
        .replace("send a link instead", "send a link with --link instead");
    Failure::usage(
        AuthoringError {
            source,
            message,
            ..e
        }
        .to_string(),
    )
}

/// `forget`'s answer.
pub fn forgot(f: &Forgot) -> String {
    format!(
        "forgot {}: {} records erased. A salted hash stays on the suppression list, so no import brings them back unless you pass --allow-forgotten; if they subscribe again themselves, that lifts it.",
        f.email, f.erased
    )
}

/// Why `import` skipped a row.
pub fn skipped(why: &Skip) -> String {
    match why {
        Skip::Forgotten => format!("{why} (use --allow-forgotten to import anyway)"),
        _ => why.to_string(),
    }
}

/// An `inject` refused before it reached the store, with its sysexits code.
pub fn inject_refused(e: InjectError) -> Failure {
    match e {
        InjectError::TooBig(_) | InjectError::Unparseable => {
            Failure::exit(sysexits::DATAERR, e.to_string())
        }
        InjectError::NoListAddress => {
            Failure::exit(sysexits::NOUSER, format!("{e}; give --recipient"))
        }
        InjectError::Lists(_) => Failure::usage(e.to_string()),
    }
}
