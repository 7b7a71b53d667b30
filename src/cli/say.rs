//! What the CLI says to the leader, in Swedish or English: the message
//! catalogue. The language follows the locale as gettext chooses it
//! (`LC_ALL`, then `LC_MESSAGES`, then `LANG`; the first that is set and
//! not empty decides): a value that starts with `sv` gives Swedish,
//! anything else English. Machine formats (`--json`, `--format json|csv`,
//! `person`) are never translated, and neither are the library's own
//! messages that no typed cause lets the CLI word itself.

use std::sync::OnceLock;

use utskick::admin::protocol::{CampaignRow, Forgot};
use utskick::compose::compiled::{Fallback, Why, MAX_TESTED};
use utskick::people::csvfile::RowProblem;
use utskick::people::{ImportReport, Skip};
use utskick::store::{CampaignStatus, Kind};
use utskick::time::{leader_time_of, LeaderTimeError, Zone};

/// The leader's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Sv,
    En,
}

/// The language of the values of `LC_ALL`, `LC_MESSAGES` and `LANG`.
pub fn lang_of(lc_all: Option<&str>, lc_messages: Option<&str>, lang: Option<&str>) -> Lang {
    let chosen = [lc_all, lc_messages, lang]
        .into_iter()
        .flatten()
        .find(|v| !v.is_empty())
        .unwrap_or_default();
    if chosen.starts_with("sv") {
        Lang::Sv
    } else {
        Lang::En
    }
}

/// The language of this process's environment, read once.
pub fn lang() -> Lang {
    static LANG: OnceLock<Lang> = OnceLock::new();
    *LANG.get_or_init(|| {
        let var = |name| std::env::var(name).ok();
        lang_of(
            var("LC_ALL").as_deref(),
            var("LC_MESSAGES").as_deref(),
            var("LANG").as_deref(),
        )
    })
}

/// Swedish or English, by the leader's language.
fn t(sv: String, en: String) -> String {
    match lang() {
        Lang::Sv => sv,
        Lang::En => en,
    }
}

/// A campaign's status, as a word.
pub fn status_word(s: CampaignStatus) -> &'static str {
    match (lang(), s) {
        (Lang::Sv, CampaignStatus::Draft) => "utkast",
        (Lang::Sv, CampaignStatus::Scheduled) => "schemalagt",
        (Lang::Sv, CampaignStatus::Sending) => "skickar",
        (Lang::Sv, CampaignStatus::Paused) => "pausat",
        (Lang::Sv, CampaignStatus::Done) => "klart",
        (Lang::Sv, CampaignStatus::Cancelled) => "avbrutet",
        (Lang::En, s) => s.as_str(),
    }
}

/// A campaign's kind, as a word.
pub fn kind_word(k: Kind) -> &'static str {
    match (lang(), k) {
        (Lang::Sv, Kind::Newsletter) => "nyhetsbrev",
        (Lang::Sv, Kind::Announcement) => "material",
        (Lang::En, Kind::Newsletter) => "newsletter",
        (Lang::En, Kind::Announcement) => "announcement",
        (Lang::Sv, Kind::Post) => "inlägg",
        (Lang::En, Kind::Post) => "post",
    }
}

/// The time that goes with a campaign's status: when it is to be sent,
/// began, or ended, in the leader's zone.
pub fn campaign_time(c: &CampaignRow, zone: Zone) -> String {
    let when = match c.status {
        CampaignStatus::Done | CampaignStatus::Cancelled => c.finished_at.as_ref(),
        CampaignStatus::Sending | CampaignStatus::Paused => c.started_at.as_ref(),
        CampaignStatus::Draft | CampaignStatus::Scheduled => None,
    };
    leader_time_of(when.unwrap_or(&c.scheduled_at), zone)
}

/// How far a campaign got: "120 av 312 skickade, 2 misslyckade, 190 kvar",
/// or before it starts, how many it would go to now.
pub fn progress(c: &CampaignRow) -> String {
    if c.recipients_open() {
        return match (c.recipients_when_sent, c.status) {
            (Some(n), CampaignStatus::Draft) => t(
                format!("{n} mottagare om det godkänns"),
                format!("{n} {} if approved", recipients(n)),
            ),
            (Some(n), _) => t(
                format!("{n} mottagare när det skickas"),
                format!("{n} {} when sent", recipients(n)),
            ),
            // An older daemon does not count them.
            (None, _) => t(
                "mottagarna räknas när det skickas".into(),
                "recipients counted when sent".into(),
            ),
        };
    }
    if c.started_at.is_none() {
        return t("inget skickat".into(), "nothing sent".into());
    }
    let left = c.total.saturating_sub(c.sent + c.failed + c.skipped);
    let mut parts = vec![
        t(
            format!("{} av {} skickade", c.sent, c.total),
            format!("{} of {} sent", c.sent, c.total),
        ),
        t(
            format!("{} misslyckade", c.failed),
            format!("{} failed", c.failed),
        ),
    ];
    if c.skipped > 0 {
        parts.push(t(
            format!("{} hoppades över", c.skipped),
            format!("{} skipped", c.skipped),
        ));
    }
    if !c.status.is_final() {
        parts.push(t(format!("{left} kvar"), format!("{left} left")));
    }
    // What the copies led to, once anything did.
    let o = c.outcome;
    if o.bounced + o.unsubscribed + o.replies > 0 {
        parts.push(t(
            format!(
                "sedan {} studsar, {} lämnade listan, {} svar",
                o.bounced, o.unsubscribed, o.replies
            ),
            format!(
                "since then {} bounced, {} left the list, {} replies",
                o.bounced, o.unsubscribed, o.replies
            ),
        ));
    }
    parts.join(", ")
}

/// "recipient" or "recipients".
fn recipients(n: u64) -> &'static str {
    if n == 1 {
        "recipient"
    } else {
        "recipients"
    }
}

/// One campaign in a line: `Kampanj 7 «Nyhetsbrev december» (natverket):
/// skickar sedan 08:00 CET, 120 av 312 skickade, 2 misslyckade, 190 kvar`.
pub fn campaign_line(c: &CampaignRow, zone: Zone) -> String {
    let head = t(
        format!("Kampanj {} «{}» ({})", c.id, c.subject, c.list),
        format!("Campaign {} \"{}\" ({})", c.id, c.subject, c.list),
    );
    let word = status_word(c.status);
    let when = campaign_time(c, zone);
    let status = match c.status {
        CampaignStatus::Draft => word.to_string(),
        CampaignStatus::Sending => t(
            format!("{word} sedan {when}"),
            format!("{word} since {when}"),
        ),
        CampaignStatus::Paused if c.started_at.is_none() => {
            let scheduled = status_word(CampaignStatus::Scheduled);
            format!("{word} ({scheduled} {when})")
        }
        CampaignStatus::Paused => word.to_string(),
        _ => format!("{word} {when}"),
    };
    format!("{head}: {status}, {}", progress(c))
}

/// The columns of `campaigns`.
pub fn campaigns_header() -> [&'static str; 7] {
    match lang() {
        Lang::Sv => ["id", "lista", "slag", "status", "tid", "förlopp", "ämne"],
        Lang::En => [
            "id", "list", "kind", "status", "time", "progress", "subject",
        ],
    }
}

/// The columns of `ignored` as a table (its CSV keeps the English names).
pub fn ignored_header() -> [&'static str; 6] {
    match lang() {
        Lang::Sv => ["tid", "lista", "adress", "avsändare", "skäl", "ämne"],
        Lang::En => ["at", "list", "address", "sender", "reason", "subject"],
    }
}

/// The columns of `lists`.
pub fn lists_header() -> [&'static str; 9] {
    match lang() {
        Lang::Sv => [
            "lista",
            "adress",
            "anmälan",
            "bekräftade",
            "väntande",
            "väntar_godkännande",
            "avslutade",
            "studsade",
            "avstängda",
        ],
        Lang::En => [
            "list",
            "address",
            "subscription",
            "confirmed",
            "pending",
            "awaiting",
            "unsubscribed",
            "bounced",
            "disabled",
        ],
    }
}

/// `queue` and `announce`: what was queued, when, to how many.
pub fn queued(c: &CampaignRow, recipients: u64, zone: Zone) -> String {
    let when = leader_time_of(&c.scheduled_at, zone);
    t(
        format!(
            "kampanj {} köad för {}: «{}» till {recipients} mottagare, skickas {when}",
            c.id, c.list, c.subject
        ),
        format!(
            "campaign {} queued for {}: {:?} to {recipients} recipients at {when}",
            c.id, c.list, c.subject
        ),
    )
}

/// `queue --dry-run`.
pub fn dry_run(subject: &str, recipients: u64) -> String {
    t(
        format!("«{subject}» skulle gå till {recipients} mottagare (inget köades)"),
        format!("{subject} would go to {recipients} recipients (nothing queued)"),
    )
}

/// After a queue with no daemon running.
pub fn serve_sends_it() -> String {
    t(
        "demonen körs inte: `utskick serve` skickar det".into(),
        "the daemon is not running: `utskick serve` sends it".into(),
    )
}

/// `status --follow` with no daemon running.
pub fn nothing_moves() -> String {
    t(
        "demonen körs inte: inget ändras förrän `utskick serve` körs".into(),
        "the daemon is not running: nothing will change until `utskick serve` runs".into(),
    )
}

/// Queued mail that this process could not send.
pub fn unsent(e: &anyhow::Error) -> String {
    t(
        format!("varning: köad e-post är inte skickad än ({e:#}); `utskick serve` skickar den"),
        format!("warning: queued mail not sent yet ({e:#}); `utskick serve` will send it"),
    )
}

/// A repeated `KEY=VALUE` flag (`--attr`, `--where`) without its `=`.
pub fn not_a_pair(flag: &str, item: &str) -> String {
    t(
        format!("{flag} {item:?}: skriv NYCKEL=VÄRDE"),
        format!("{flag} {item:?}: expected KEY=VALUE"),
    )
}

/// `--at` that names no time.
pub fn bad_at(e: &LeaderTimeError) -> String {
    match (lang(), e) {
        (Lang::Sv, LeaderTimeError::Unreadable { text }) => format!(
            "--at {text:?}: skriv en tid som 2027-01-15 08:00, 2027-01-15T08:00 eller 2027-01-15T08:00:00+01:00"
        ),
        (Lang::Sv, LeaderTimeError::Skipped { text, zone, after }) => format!(
            "--at {text} finns inte i {zone}: klockan ställs fram över den tiden; välj en tid utanför den överhoppade timmen, till exempel {after}"
        ),
        (Lang::En, e) => format!("--at {e}"),
    }
}

/// One line of `add`, `remove`, `backup`, `preview --to` as the library
/// says it (in English), in the leader's language where we know the line.
pub fn said(line: &str) -> String {
    if lang() == Lang::En {
        return line.to_string();
    }
    let between = |prefix: &str, middle: &str| {
        line.strip_prefix(prefix)
            .and_then(|rest| rest.split_once(middle))
    };
    let around = |middle: &str| line.split_once(middle);
    if let Some((email, list)) = between("added ", " to ") {
        format!("lade till {email} i {list}")
    } else if let Some((email, list)) = between("approved ", " on ") {
        format!("godkände {email} i {list}")
    } else if let Some((email, list)) = between("removed ", " from ") {
        format!("tog bort {email} från {list}")
    } else if let Some((n, path)) = between("backed up ", " records to ") {
        format!("säkerhetskopierade {n} poster till {path}")
    } else if let Some(to) = line.strip_prefix("test copy queued to ") {
        format!("testexemplar köat till {to}")
    } else if let Some((email, list)) = around(" is already a confirmed subscriber of ") {
        format!("{email} är redan bekräftad prenumerant på {list}")
    } else if let Some((email, list)) = around(" had already left ") {
        format!("{email} hade redan lämnat {list}")
    } else {
        line.to_string()
    }
}

/// `forget`'s answer.
pub fn forgot(f: &Forgot) -> String {
    t(
        format!(
            "glömde {}: {} poster raderade. En saltad hash finns kvar på spärrlistan, så ingen import tar tillbaka personen om du inte anger --allow-forgotten; anmäler personen sig själv igen lyfts spärren.",
            f.email, f.erased
        ),
        format!(
            "forgot {}: {} records erased. A salted hash stays on the suppression list, so no import brings them back unless you pass --allow-forgotten; if they subscribe again themselves, that lifts it.",
            f.email, f.erased
        ),
    )
}

/// `restore`'s answer.
pub fn restored(n: u64, data_dir: &std::path::Path) -> String {
    let dir = data_dir.display();
    t(
        format!("återställde {n} poster i {dir}"),
        format!("restored {n} records into {dir}"),
    )
}

/// `preview`'s last line: whether the copies are filled in from the
/// campaign compiled once, or rendered per recipient, and why.
pub fn sending(fallback: Option<&Fallback>) -> String {
    let Some(f) = fallback else {
        return t(
            "utskicket sänds förkompilerat: mallarna renderas en gång och varje exemplar fylls i".into(),
            "the campaign is sent compiled: the templates are rendered once and each copy is filled in".into(),
        );
    };
    let at = match f.line {
        Some(line) => format!("{}:{line}", f.file),
        None => f.file.clone(),
    };
    let (sv, en) = match &f.why {
        Why::Decides(construct) => (
            format!("{construct} beror på mottagaren"),
            format!("{construct} depends on the recipient"),
        ),
        Why::Partial => (
            "en partial eller decorator".to_string(),
            "a partial or decorator".to_string(),
        ),
        Why::HeadingWithField => (
            "en rubrik med ett mottagarfält i textdelen".to_string(),
            "a heading with a recipient's field in the text part".to_string(),
        ),
        Why::LineOfFields => (
            "en rad i textdelen med bara mottagarfält".to_string(),
            "a line of the text part made of recipient fields alone".to_string(),
        ),
        Why::MarkerCharacter => (
            "tecknet U+E000 eller U+E001".to_string(),
            "the character U+E000 or U+E001".to_string(),
        ),
        Why::TooManyTested(fields) => (
            format!(
                "villkor på fler än {MAX_TESTED} fält ({})",
                fields.join(", ")
            ),
            format!(
                "conditions on more than {MAX_TESTED} fields ({})",
                fields.join(", ")
            ),
        ),
        Why::Unexpected(what) => (what.clone(), what.clone()),
    };
    t(
        format!("utskicket renderas per mottagare (långsammare), eftersom {at}: {sv}"),
        format!("the campaign is rendered per recipient (slower), because {at}: {en}"),
    )
}

/// A file written (`preview --out`, `report --svg`).
pub fn wrote(path: &std::path::Path) -> String {
    let path = path.display();
    t(format!("skrev {path}"), format!("wrote {path}"))
}

/// Why `import` skipped a row.
pub fn skipped(why: &Skip) -> String {
    let sv = match why {
        Skip::UnknownColumns(c) => format!("kolumner som listan inte har: {}", c.join(", ")),
        Skip::NotConfirmed(s) => {
            format!("status {s} i filen: bara bekräftade rader importeras")
        }
        Skip::Forgotten => {
            "glömd på egen begäran (ange --allow-forgotten för att importera ändå)".into()
        }
        Skip::Left => "har lämnat listan; läggs inte till igen".into(),
        Skip::Disabled => "avstängd av en administratör".into(),
        Skip::Bounced => "studsade; läggs inte till igen".into(),
        Skip::CapReached => "redan inbjuden i dag; importera igen i morgon".into(),
        Skip::Said(s) => s.clone(),
    };
    let en = match why {
        Skip::Forgotten => format!("{why} (use --allow-forgotten to import anyway)"),
        _ => why.to_string(),
    };
    t(format!("hoppades över: {sv}"), format!("skipped: {en}"))
}

/// Why a row of an import's file could not be read.
pub fn unreadable(p: &RowProblem) -> String {
    match (lang(), p) {
        (Lang::Sv, RowProblem::TooManyFields { got, header }) => {
            format!("{got} fält där rubrikraden har {header}")
        }
        (Lang::Sv, RowProblem::NotAnAddress(a)) => format!("{a:?} är ingen e-postadress"),
        (Lang::En, p) => p.to_string(),
    }
}

/// `import`'s summary line.
pub fn imported(list: &str, r: &ImportReport, unreadable: usize) -> String {
    let skipped = r.skipped.len();
    t(
        format!(
            "{list}: {} tillagda, {} inbjudna, {} fanns redan, {skipped} överhoppade, {unreadable} oläsbara",
            r.added, r.invited, r.unchanged
        ),
        format!(
            "{list}: {} added, {} invited, {} unchanged, {skipped} skipped, {unreadable} unreadable",
            r.added, r.invited, r.unchanged
        ),
    )
}

/// An import that took none of the file's rows.
pub fn nothing_imported(file: &str, rows: usize) -> String {
    if rows == 1 {
        return t(
            format!("{file}: inget importerades: filens enda rad avvisades (se raden ovan)"),
            format!("{file}: nothing imported: its only row was refused (see the line above)"),
        );
    }
    t(
        format!("{file}: inget importerades: alla {rows} rader avvisades (se raderna ovan)"),
        format!("{file}: nothing imported: all {rows} rows were refused (see the lines above)"),
    )
}

/// A CSV file that cannot be read at all.
pub fn unreadable_file(file: &str, why: &str) -> String {
    let why = match (lang(), why) {
        (Lang::Sv, "the file is empty") => "filen är tom".to_string(),
        (Lang::Sv, w) if w.starts_with("no `email` column") => {
            format!(
                "ingen kolumn `email` {}",
                w.trim_start_matches("no `email` column ")
            )
        }
        (Lang::Sv, w) if w.starts_with("the column ") && w.ends_with(" cannot be left out") => {
            let col = &w["the column ".len()..w.len() - " cannot be left out".len()];
            format!("kolumnen {col} kan inte lämnas bort")
        }
        (_, w) => w.to_string(),
    };
    format!("{file}: {why}")
}

/// `--ignore-column` naming no column of the file.
pub fn no_such_column(file: &str, column: &str) -> String {
    t(
        format!("varning: --ignore-column {column}: {file} har ingen sådan kolumn"),
        format!("warning: --ignore-column {column}: {file} has no such column"),
    )
}

/// An import refused for its columns, with both ways to mend it.
pub fn undeclared_columns(
    file: &str,
    list: &str,
    list_file: &str,
    columns: &[String],
    declared: &[String],
) -> String {
    let mut merged: Vec<String> = declared.to_vec();
    merged.extend(columns.iter().filter(|c| !declared.contains(c)).cloned());
    let array = merged
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let flags = columns
        .iter()
        .map(|c| format!("--ignore-column {c}"))
        .collect::<Vec<_>>()
        .join(" ");
    let names = columns.join(", ");
    let plural = columns.len() > 1;
    t(
        format!(
            "{file}: inget importerades: listan {list} har inte {} {names}; lägg till `attributes = [{array}]` i {list_file}, eller ange `{flags}`",
            if plural { "kolumnerna" } else { "kolumnen" }
        ),
        format!(
            "{file}: nothing imported: list {list} does not declare the {} {names}; add `attributes = [{array}]` to {list_file}, or pass `{flags}`",
            if plural { "columns" } else { "column" }
        ),
    )
}

/// `add` without a consent text.
pub fn add_without_consent() -> String {
    t(
        "--consent måste säga hur personen gick med på det".into(),
        "--consent must say how this person agreed".into(),
    )
}

/// `import` without a consent text.
pub fn import_without_consent() -> String {
    t(
        "--consent måste säga hur de här personerna gick med på det (eller använd --invite)".into(),
        "--consent must say how these people agreed (or use --invite)".into(),
    )
}

/// `--where` naming an attribute the list lacks.
pub fn unknown_filter(list: &str, key: &str, known: &[String]) -> String {
    let known = if known.is_empty() {
        t("inga".into(), "none".into())
    } else {
        known.join(", ")
    };
    t(
        format!("--where {key}=…: listan {list} har inget attribut {key:?} (den har: {known})"),
        format!("--where {key}=…: list {list} has no attribute {key:?} (it has: {known})"),
    )
}

/// `preview --to` that is no address.
pub fn not_a_test_address(to: &str) -> String {
    t(
        format!("--to {to:?} är ingen e-postadress"),
        format!("--to {to:?} is not an e-mail address"),
    )
}

/// No list with this id.
pub fn no_list(id: &str, known: &[String]) -> String {
    let known = known.join(", ");
    t(
        format!("ingen lista {id:?} (listorna: {known})"),
        format!("no list {id:?} (lists: {known})"),
    )
}

/// `check` found something wrong.
pub fn checks_failed() -> String {
    t(
        "några kontroller misslyckades".into(),
        "some checks failed".into(),
    )
}

/// No campaign with this id.
pub fn no_campaign(id: u64) -> String {
    t(format!("ingen kampanj {id}"), format!("no campaign {id}"))
}

/// A steer the campaign's status does not allow.
pub fn cannot_steer(id: u64, status: CampaignStatus) -> String {
    let word = status_word(status);
    if status.is_final() {
        t(
            format!("kampanj {id} har status {word} och kan inte ändras"),
            format!("campaign {id} is {word} and cannot be changed"),
        )
    } else {
        t(
            format!("kampanj {id} har status {word}, inte pausat"),
            format!("campaign {id} is {word}, not paused"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_locale_is_chosen_as_gettext_does() {
        assert_eq!(lang_of(None, None, Some("sv_SE.UTF-8")), Lang::Sv);
        assert_eq!(lang_of(None, None, Some("C")), Lang::En);
        assert_eq!(lang_of(None, None, None), Lang::En);
        assert_eq!(lang_of(Some("C"), None, Some("sv_SE.UTF-8")), Lang::En);
        assert_eq!(lang_of(Some(""), Some("sv_FI"), Some("en_GB")), Lang::Sv);
        assert_eq!(lang_of(None, Some("en_US"), Some("sv_SE")), Lang::En);
    }

    fn sending() -> CampaignRow {
        CampaignRow {
            id: 7,
            list: "natverket".into(),
            kind: Kind::Newsletter,
            subject: "Nyhetsbrev december".into(),
            status: CampaignStatus::Sending,
            scheduled_at: "2027-01-15T07:00:00+00:00".into(),
            started_at: Some("2027-01-15T07:00:05+00:00".into()),
            finished_at: None,
            filters: vec![],
            attachments: vec![],
            total: 312,
            sent: 120,
            failed: 2,
            skipped: 0,
            recipients_when_sent: None,
            outcome: Default::default(),
        }
    }

    #[test]
    fn a_sending_campaign_reads_as_a_sentence() {
        let line = campaign_line(&sending(), Zone::STOCKHOLM);
        let want = match lang() {
            Lang::Sv => "Kampanj 7 «Nyhetsbrev december» (natverket): skickar sedan 2027-01-15 08:00 CET, 120 av 312 skickade, 2 misslyckade, 190 kvar",
            Lang::En => "Campaign 7 \"Nyhetsbrev december\" (natverket): sending since 2027-01-15 08:00 CET, 120 of 312 sent, 2 failed, 190 left",
        };
        assert_eq!(line, want);
        let done = CampaignRow {
            status: CampaignStatus::Done,
            finished_at: Some("2027-01-15T07:14:00+00:00".into()),
            sent: 309,
            skipped: 1,
            ..sending()
        };
        let want = match lang() {
            Lang::Sv => "309 av 312 skickade, 2 misslyckade, 1 hoppades över",
            Lang::En => "309 of 312 sent, 2 failed, 1 skipped",
        };
        assert_eq!(progress(&done), want);
        let led = CampaignRow {
            outcome: utskick::store::Outcome {
                bounced: 3,
                unsubscribed: 1,
                replies: 2,
            },
            ..done.clone()
        };
        let want = match lang() {
            Lang::Sv => "309 av 312 skickade, 2 misslyckade, 1 hoppades över, sedan 3 studsar, 1 lämnade listan, 2 svar",
            Lang::En => "309 of 312 sent, 2 failed, 1 skipped, since then 3 bounced, 1 left the list, 2 replies",
        };
        assert_eq!(progress(&led), want);
        assert!(campaign_line(&done, Zone::STOCKHOLM).contains("08:14 CET"));
    }
}
