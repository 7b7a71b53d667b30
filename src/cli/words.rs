//! The CLI's own words for what the library reports in its terms: where a
//! flag is the remedy, the CLI names it (the library never does).

use utskick::admin::{sysexits, Cause, Failure};
use utskick::compose::error::AuthoringError;
use utskick::mail::inject::InjectError;

use crate::cli::say;

/// A failure reworded in flags, and in the leader's language, where its
/// cause is known.
pub fn flagged(mut f: Failure) -> Failure {
    let Some(cause) = &f.cause else { return f };
    f.message = match &**cause {
        Cause::AddWithoutConsent => say::add_without_consent(),
        Cause::ImportWithoutConsent => say::import_without_consent(),
        Cause::UnknownFilter { list, key, known } => say::unknown_filter(list, key, known),
        Cause::NotATestAddress { to } => say::not_a_test_address(to),
        Cause::UndeclaredColumns {
            list,
            list_file,
            columns,
            declared,
        } => say::undeclared_columns("import", list, list_file, columns, declared),
        Cause::NoList { id, known } => say::no_list(id, known),
        Cause::NoCampaign { id } => say::no_campaign(*id),
        Cause::CannotSteer { id, status } => say::cannot_steer(*id, *status),
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
