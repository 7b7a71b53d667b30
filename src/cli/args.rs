//! The command line: its commands and flags (clap), and the flags whose
//! values are parsed here (`KEY=VALUE` pairs, `--at` times).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use utskick::admin::Failure;
use utskick::time::{parse_leader_time, Zone};

#[derive(Parser)]
#[command(
    name = "utskick",
    version,
    about = "Mailing-list and newsletter daemon"
)]
pub struct Cli {
    /// Configuration file [default: utskick.toml, or embedded defaults when it is absent]
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum KeyAlgorithm {
    Ed25519,
    Rsa,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon: inbound SMTP/LMTP, HTTP, send queue
    Serve,
    /// Handle one message from stdin (for an MTA's pipe); exit codes follow sysexits
    Inject {
        /// The list address it was received for [default: the first To/Cc address of a list]
        #[arg(long)]
        recipient: Option<String>,
        /// The envelope sender [default: the Return-Path header, if any]
        #[arg(long)]
        sender: Option<String>,
    },
    /// Each list with its subscriber counts per status
    Lists,
    /// The subscribers of a list
    Subscribers {
        list: String,
        #[arg(long)]
        status: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Add a confirmed subscriber (or approve one awaiting approval); the consent text is the proof
    Add {
        list: String,
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// An attribute, KEY=VALUE; may be repeated
        #[arg(long = "attr", value_name = "KEY=VALUE")]
        attrs: Vec<String>,
        /// How this person agreed, e.g. "asked at the meeting in Ljusdal 2026-11-20"
        #[arg(long)]
        consent: String,
    },
    /// Unsubscribe someone (kept as unsubscribed, not deleted)
    Remove { list: String, email: String },
    /// Queue a newsletter written in Markdown
    Queue {
        list: String,
        file: PathBuf,
        /// When to send: 2027-01-15T08:00 or "2027-01-15 08:00" in the configured timezone, or RFC 3339 [default: now]
        #[arg(long)]
        at: Option<String>,
        /// Only subscribers whose attribute KEY is VALUE; may be repeated (all must match)
        #[arg(long = "where", value_name = "KEY=VALUE")]
        filters: Vec<String>,
        /// A file to attach; may be repeated
        #[arg(long)]
        attach: Vec<PathBuf>,
        /// Validate and count the recipients; queue nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Queue a material announcement (a handbook, folder, presentation)
    Announce {
        list: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        link: Option<String>,
        #[arg(long)]
        attach: Vec<PathBuf>,
        /// A Markdown description
        #[arg(long)]
        body: Option<PathBuf>,
        /// When to send, as for `queue --at`
        #[arg(long)]
        at: Option<String>,
        #[arg(long = "where", value_name = "KEY=VALUE")]
        filters: Vec<String>,
    },
    /// Render a newsletter without queueing it
    Preview {
        list: String,
        file: PathBuf,
        /// Write the message (.eml) or its HTML part (.html) here
        #[arg(long)]
        out: Option<PathBuf>,
        /// Send one test copy to this address
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        attach: Vec<PathBuf>,
    },
    /// Queued, sending and sent campaigns with progress
    Campaigns,
    /// Add people from a CSV (email, name, then attributes) with recorded consent, or invite them
    Import {
        list: String,
        file: PathBuf,
        /// How these people agreed, recorded as their consent
        #[arg(long, required_unless_present = "invite", conflicts_with = "invite")]
        consent: Option<String>,
        /// Send each row an invitation to confirm; subscribes no one by itself
        #[arg(long)]
        invite: bool,
        /// Import addresses that were forgotten at their own request
        #[arg(long)]
        allow_forgotten: bool,
        /// Leave out this column of the file (one the list does not
        /// declare); may be repeated
        #[arg(long = "ignore-column", value_name = "COLUMN")]
        ignore_columns: Vec<String>,
    },
    /// Everything stored about one person, across lists, as JSON
    Person { email: String },
    /// Erase a person's data; keep a salted hash so no import brings them back unknowingly
    Forget { email: String },
    /// A consistent snapshot of the store (works while the daemon runs)
    Backup { file: PathBuf },
    /// Load a snapshot into an empty data_dir (with no daemon running)
    Restore { file: PathBuf },
    /// Growth, joins, leaves, bounces and campaigns per month
    Report {
        list: Option<String>,
        /// Also draw the chart into this SVG file
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// Validate config, lists and templates, try the relay, print the DNS records to publish
    Check,
    /// Make a DKIM key (RSA-2048 unless told otherwise) and print its DNS record
    DkimKeygen {
        #[arg(long, value_enum, default_value = "rsa")]
        algorithm: KeyAlgorithm,
    },
    /// What was changed, by whom and when: the workspace's changes and the CLI's
    Audit {
        /// From this day or time on: 2026-12-01, 2026-12-01T08:00 (local time) or RFC 3339
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// A discussion list's posts as threads (public or not: the owners' view)
    Threads { list: String },
    /// Inbound mail that was neither acted on nor forwarded, and why
    Ignored {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// One campaign
    Status {
        id: u64,
        /// Show a live progress bar until the campaign ends
        #[arg(long, conflicts_with = "json")]
        follow: bool,
        /// Print the campaign as one JSON line (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Pause a campaign
    Pause {
        id: u64,
        /// Print the campaign as one JSON line (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Resume a paused campaign
    Resume {
        id: u64,
        /// Print the campaign as one JSON line (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Cancel a campaign
    Cancel {
        id: u64,
        /// Print the campaign as one JSON line (for scripts)
        #[arg(long)]
        json: bool,
    },
}

/// sysexits(3): the command was used wrongly.
const EX_USAGE: i32 = 64;

/// `KEY=VALUE` items of the repeated flag `flag` (`--attr`, `--where`).
pub fn parse_pairs(flag: &str, items: &[String]) -> Result<Vec<(String, String)>, Failure> {
    items
        .iter()
        .map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| Failure::exit(EX_USAGE, crate::cli::say::not_a_pair(flag, a)))
        })
        .collect()
}

/// `--since`: a day (its start, in the configured `timezone`) or a time as
/// `--at` takes it.
pub fn parse_since(text: &str, zone: Zone) -> Result<String, Failure> {
    match chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        Ok(day) => parse_at(&format!("{day}T00:00"), zone),
        Err(_) => parse_at(text.trim(), zone).map_err(|_| {
            Failure::usage(format!(
                "--since {text:?}: expected a day like 2026-12-01 or a time like 2026-12-01T08:00"
            ))
        }),
    }
}

/// `--at`: a time in the configured `timezone` (2027-01-15T08:00 or
/// 2027-01-15 08:00), or RFC 3339 with an offset; as RFC 3339 in UTC, the
/// form the admin protocol carries.
pub fn parse_at(text: &str, zone: Zone) -> Result<String, Failure> {
    parse_leader_time(text, zone)
        .map(|t| t.to_rfc3339())
        .map_err(|e| Failure::exit(EX_USAGE, crate::cli::say::bad_at(&e)))
}
