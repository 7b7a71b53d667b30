//! The `utskick` binary: parses the command line, sets up tracing, runs the
//! command, and turns an error into one line on stderr and an exit code.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::Value;
use utskick::admin::{self, sysexits, Failure, Request, WireContent};
use utskick::daemon::config::Config;
use utskick::daemon::context::system_clock;
use utskick::outbound::{self, Transport};
use utskick::{compose::newsletter, daemon};

#[derive(Parser)]
#[command(
    name = "utskick",
    version,
    about = "Mailing-list and newsletter daemon"
)]
struct Cli {
    /// Configuration file [default: utskick.toml, or embedded defaults when it is absent]
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyAlgorithm {
    Ed25519,
    Rsa,
}

#[derive(Subcommand)]
enum Command {
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
        /// When to send: 2026-12-01T08:00 (local time) or RFC 3339 [default: now]
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
    /// Make a DKIM key and print its DNS record
    DkimKeygen {
        #[arg(long, value_enum, default_value = "ed25519")]
        algorithm: KeyAlgorithm,
    },
    /// Inbound mail that was neither acted on nor forwarded, and why
    Ignored {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// One campaign
    Status {
        id: u64,
        /// Show a live progress bar until the campaign ends
        #[arg(long)]
        follow: bool,
    },
    /// Pause a campaign
    Pause { id: u64 },
    /// Resume a paused campaign
    Resume { id: u64 },
    /// Cancel a campaign
    Cancel { id: u64 },
}

fn main() -> ExitCode {
    utskick::daemon::memory::bound_arenas();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("utskick: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("utskick: {}", f.message.replace('\n', " "));
            ExitCode::from(u8::try_from(f.exit).unwrap_or(1))
        }
    }
}

fn load_config(path: &Option<PathBuf>) -> Result<Config, Failure> {
    let (path, required) = match path {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("utskick.toml"), false),
    };
    Config::load(&path, required).map_err(|e| Failure {
        message: e.to_string(),
        exit: 78, // EX_CONFIG
    })
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let config = match load_config(&cli.config) {
        Ok(c) => c,
        // An MTA's pipe bounces on anything but 75: a broken configuration
        // must make it keep the mail until the admin mends it.
        Err(mut f) if matches!(cli.command, Command::Inject { .. }) => {
            f.exit = sysexits::TEMPFAIL;
            f.message = format!("4.3.5 {}", f.message);
            return Err(f);
        }
        Err(f) => return Err(f),
    };
    let (request, format) = match cli.command {
        Command::Serve => {
            let signals = daemon::signals()?;
            return match daemon::run(config, signals).await? {
                daemon::Exit::Stopped => Ok(()),
                // Crash-only recovery from a failed store: the same program,
                // the same arguments, the same PID, a fresh store.
                daemon::Exit::Restart => Err(reexec()),
            };
        }
        Command::Inject { recipient, sender } => {
            let (request, _) = inject_request(&config, recipient, sender)?;
            // An MTA's pipe bounces on any exit but 75: everything that is
            // not a verdict on the message itself must say "try again".
            let value = ask(&config, request).await.map_err(|mut f| {
                if f.exit != sysexits::DATAERR && f.exit != sysexits::NOUSER {
                    f.exit = sysexits::TEMPFAIL;
                    f.message = format!("4.3.0 {}", f.message);
                }
                f
            })?;
            print_value(&value, None, Listing::Subscribers);
            return Ok(());
        }
        Command::Lists => (Request::Lists, Some(Format::Table)),
        Command::Subscribers {
            list,
            status,
            format,
        } => return list_subscribers(&config, list, status, format).await,
        Command::Add {
            list,
            email,
            name,
            attrs,
            consent,
        } => {
            let attributes = parse_pairs("--attr", &attrs)?.into_iter().collect();
            (
                Request::Add {
                    list,
                    email,
                    name,
                    attributes,
                    consent,
                },
                None,
            )
        }
        Command::Remove { list, email } => (Request::Remove { list, email }, None),
        Command::Queue {
            list,
            file,
            at,
            filters,
            attach,
            dry_run,
        } => {
            let (content, mut all_filters) = read_newsletter(&config, &file, &attach)?;
            all_filters.extend(parse_pairs("--where", &filters)?);
            let request = Request::Queue {
                list,
                content: WireContent::new(content),
                filters: all_filters,
                at: at.map(|t| parse_at(&t)).transpose()?,
                dry_run,
            };
            return queued(&config, request).await;
        }
        Command::Announce {
            list,
            title,
            link,
            attach,
            body,
            at,
            filters,
        } => {
            let description = match &body {
                Some(path) => Some((file_name(path), read_text(path)?)),
                None => None,
            };
            let attachments = read_attachments(&config, &attach)?;
            let content = newsletter::announcement(
                &title,
                link.as_deref(),
                description.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
                attachments,
            )
            .map_err(|e| Failure::usage(e.to_string()))?;
            let request = Request::Queue {
                list,
                content: WireContent::new(content),
                filters: parse_pairs("--where", &filters)?,
                at: at.map(|t| parse_at(&t)).transpose()?,
                dry_run: false,
            };
            return queued(&config, request).await;
        }
        Command::Preview {
            list,
            file,
            out,
            to,
            attach,
        } => return preview(&config, &list, &file, out, to, &attach).await,
        Command::Campaigns => (Request::Campaigns, Some(Format::Table)),
        Command::Ignored { format } => (Request::Ignored, Some(format)),
        Command::Import {
            list,
            file,
            consent,
            invite,
            allow_forgotten,
        } => return import(&config, list, &file, consent, invite, allow_forgotten).await,
        Command::Person { email } => (Request::Person { email }, Some(Format::Json)),
        Command::Report { list, svg } => {
            let title_list = list.clone();
            let v = ask(&config, Request::Report { list }).await?;
            let months: Vec<utskick::people::report::Month> =
                serde_json::from_value(v).map_err(|e| Failure::usage(e.to_string()))?;
            let lang = report_language(&config, title_list.as_deref());
            print!("{}", utskick::people::report::table(&months, lang));
            if let Some(path) = svg {
                let lists = utskick::daemon::lists::Lists::load(&config.lists_dir)?;
                let name = title_list
                    .as_deref()
                    .and_then(|id| lists.get(id).map(|l| l.name.clone()))
                    .unwrap_or_else(|| "utskick".into());
                let title = match lang {
                    utskick::people::report::Lang::Sv => format!("{name}: nätverkets tillväxt"),
                    utskick::people::report::Lang::En => format!("{name}: growth of the network"),
                };
                std::fs::write(&path, utskick::people::report::svg(&months, &title, lang))
                    .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
                println!("wrote {}", path.display());
            }
            return Ok(());
        }
        Command::Check => {
            let name = cli
                .config
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| {
                    if Path::new("utskick.toml").exists() {
                        "utskick.toml".into()
                    } else {
                        "embedded defaults (no utskick.toml)".into()
                    }
                });
            let (report, ok) = utskick::daemon::check::check(&config, &name).await;
            print!("{report}");
            return if ok {
                Ok(())
            } else {
                Err(Failure {
                    message: "some checks failed".into(),
                    exit: 1,
                })
            };
        }
        Command::DkimKeygen { algorithm } => {
            let path = config
                .dkim
                .as_ref()
                .map(|d| d.private_key_file.clone())
                .unwrap_or_else(|| PathBuf::from("dkim.pem"));
            let algorithm = match algorithm {
                KeyAlgorithm::Ed25519 => utskick::daemon::check::Algorithm::Ed25519,
                KeyAlgorithm::Rsa => utskick::daemon::check::Algorithm::Rsa,
            };
            println!(
                "{}",
                utskick::daemon::check::keygen(&config, &path, algorithm)?
            );
            return Ok(());
        }
        Command::Forget { email } => (Request::Forget { email }, None),
        Command::Backup { file } => {
            let path = std::path::absolute(&file)
                .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
            (
                Request::Backup {
                    path: path.display().to_string(),
                },
                None,
            )
        }
        Command::Restore { file } => return restore(&config, &file),
        Command::Status { id, follow } => {
            if follow {
                return follow_status(&config, id).await;
            }
            (Request::Status { id }, None)
        }
        Command::Pause { id } => steer(id, "pause"),
        Command::Resume { id } => steer(id, "resume"),
        Command::Cancel { id } => steer(id, "cancel"),
    };
    let kind = match &request {
        Request::Lists => Listing::Lists,
        Request::Campaigns => Listing::Campaigns,
        Request::Ignored => Listing::Ignored,
        _ => Listing::Subscribers,
    };
    let value = ask(&config, request).await?;
    print_value(&value, format, kind);
    Ok(())
}

/// `subscribers`: streamed from the daemon (or read here a page at a time)
/// and printed as it comes, so a list of any size fits in memory. The
/// table needs every row for its column widths; csv and json do not.
async fn list_subscribers(
    config: &Config,
    list: String,
    status: Option<String>,
    format: Format,
) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut printer = RowPrinter::new(format);
    let request = Request::Subscribers {
        list: list.clone(),
        status: status.clone(),
    };
    let answer =
        admin::call_streaming(&config.socket_path(), &request, |item| printer.take(item)).await?;
    match answer {
        // A daemon from before streaming answers with the whole array.
        Some(Ok(Value::Array(rows))) if !printer.headed => printer
            .page(attribute_names(&rows), rows)
            .map_err(anyhow::Error::from)?,
        Some(Ok(_)) => {}
        Some(Err(f)) => return Err(f),
        None => {
            // No daemon: read the store here, a page at a time.
            let ctx = daemon::build_context(config.clone(), system_clock())?;
            let mut pages = admin::SubscriberPages::new(&ctx, &list, status.as_deref())?;
            printer
                .page(pages.attributes.clone(), Vec::new())
                .map_err(anyhow::Error::from)?;
            while let Some(rows) = pages.next_page()? {
                printer
                    .page(Vec::new(), rows)
                    .map_err(anyhow::Error::from)?;
            }
        }
    }
    printer.finish().map_err(anyhow::Error::from)?;
    std::io::stdout().flush().ok();
    Ok(())
}

/// Prints a streamed subscriber listing in one of the formats.
struct RowPrinter {
    format: Format,
    out: std::io::BufWriter<std::io::Stdout>,
    attributes: Vec<String>,
    /// A head line came (the columns are known).
    headed: bool,
    rows: u64,
    /// The table's rows, kept for the column widths.
    table: Vec<Vec<String>>,
}

impl RowPrinter {
    fn new(format: Format) -> RowPrinter {
        RowPrinter {
            format,
            out: std::io::BufWriter::new(std::io::stdout()),
            attributes: Vec::new(),
            headed: false,
            rows: 0,
            table: Vec::new(),
        }
    }

    fn header(&self) -> Vec<String> {
        subscriber_header(&self.attributes)
    }

    fn cells(&self, r: &Value) -> Vec<String> {
        subscriber_cells(r, &self.attributes)
    }

    /// Rows that came together; the head first if none came yet.
    fn page(&mut self, attributes: Vec<String>, rows: Vec<Value>) -> std::io::Result<()> {
        if !self.headed {
            self.take(admin::Streamed::Head { attributes })?;
        }
        rows.into_iter()
            .try_for_each(|r| self.take(admin::Streamed::Row(r)))
    }

    fn take(&mut self, item: admin::Streamed) -> std::io::Result<()> {
        use std::io::Write as _;
        match item {
            admin::Streamed::Head { attributes } => {
                self.attributes = attributes;
                self.headed = true;
                match self.format {
                    Format::Csv => writeln!(self.out, "{}", csv_line(&self.header()))?,
                    Format::Json => write!(self.out, "[")?,
                    Format::Table => self.table.push(self.header()),
                }
            }
            admin::Streamed::Row(r) => {
                match self.format {
                    Format::Csv => writeln!(self.out, "{}", csv_line(&self.cells(&r)))?,
                    Format::Json => {
                        let sep = if self.rows == 0 { "\n" } else { ",\n" };
                        write!(self.out, "{sep}  {r}")?;
                    }
                    Format::Table => self.table.push(self.cells(&r)),
                }
                self.rows += 1;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<()> {
        use std::io::Write as _;
        match self.format {
            Format::Csv => {}
            Format::Json if self.rows == 0 => writeln!(self.out, "]")?,
            Format::Json => writeln!(self.out, "\n]")?,
            Format::Table => {
                self.out.flush()?;
                print_aligned(&self.table);
            }
        }
        self.out.flush()
    }
}

/// One RFC 4180 CSV line: fields with a comma, quote or line break are quoted.
fn csv_line(fields: &[String]) -> String {
    fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Rows per request, so a big file moves a progress bar and no one
/// request grows without bound.
const IMPORT_BATCH: usize = 200;

async fn import(
    config: &Config,
    list: String,
    file: &Path,
    consent: Option<String>,
    invite: bool,
    allow_forgotten: bool,
) -> Result<(), Failure> {
    let bytes =
        std::fs::read(file).map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
    let (rows, errors) = utskick::people::csvfile::read(&bytes)
        .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
    for e in &errors {
        eprintln!("{}:{}: {}", file.display(), e.line, e.message);
    }
    let options = utskick::people::ImportOptions {
        consent,
        invite,
        allow_forgotten,
        source: file_name(file),
    };
    let bar = indicatif::ProgressBar::new(rows.len() as u64);
    if rows.len() <= IMPORT_BATCH {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut total = utskick::people::ImportReport::default();
    for chunk in rows.chunks(IMPORT_BATCH) {
        let request = Request::Import {
            list: list.clone(),
            rows: chunk.to_vec(),
            options: options.clone(),
        };
        let v = ask(config, request).await?;
        let r: utskick::people::ImportReport =
            serde_json::from_value(v).map_err(|e| Failure::usage(e.to_string()))?;
        total.added += r.added;
        total.invited += r.invited;
        total.unchanged += r.unchanged;
        total.skipped.extend(r.skipped);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    for (line, why) in &total.skipped {
        eprintln!("{}:{line}: skipped: {why}", file.display());
    }
    println!(
        "{}: {} added, {} invited, {} unchanged, {} skipped, {} unreadable",
        list,
        total.added,
        total.invited,
        total.unchanged,
        total.skipped.len(),
        errors.len()
    );
    Ok(())
}

/// Restores into an empty data_dir; refuses while a daemon runs.
fn restore(config: &Config, file: &Path) -> Result<(), Failure> {
    if std::os::unix::net::UnixStream::connect(config.socket_path()).is_ok() {
        return Err(Failure::usage(
            "a daemon is running on this data_dir: stop it, and restore into a new, empty data_dir",
        ));
    }
    let input = std::fs::File::open(file)
        .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| Failure::usage(format!("{}: {e}", config.data_dir.display())))?;
    if config.secret_path().exists() {
        return Err(Failure::usage(format!(
            "{} exists: restore only into a new, empty data_dir",
            config.secret_path().display()
        )));
    }
    let store = utskick::store::Store::open(&config.store_dir())?;
    let (secret, n) = store
        .restore(std::io::BufReader::new(input))
        .map_err(|e| Failure::usage(format!("{}: {e:#}", file.display())))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write as _;
    options
        .open(config.secret_path())
        .and_then(|mut f| f.write_all(&secret).and_then(|_| f.sync_all()))
        .map_err(|e| Failure::usage(format!("{}: {e}", config.secret_path().display())))?;
    println!("restored {n} records into {}", config.data_dir.display());
    Ok(())
}

fn report_language(config: &Config, list: Option<&str>) -> utskick::people::report::Lang {
    let lists = utskick::daemon::lists::Lists::load(&config.lists_dir).unwrap_or_default();
    match list.and_then(|id| lists.get(id)).map(|l| l.language) {
        Some(utskick::daemon::lists::Language::En) => utskick::people::report::Lang::En,
        _ => utskick::people::report::Lang::Sv,
    }
}

/// Replaces this process with a fresh start of itself; returns only on error.
fn reexec() -> Failure {
    use std::os::unix::process::CommandExt;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return Failure::usage(format!("cannot restart: {e}")),
    };
    let e = std::process::Command::new(exe).args(args).exec();
    Failure::usage(format!("cannot restart: {e}"))
}

fn steer(id: u64, action: &str) -> (Request, Option<Format>) {
    (
        Request::Steer {
            id,
            action: action.into(),
        },
        None,
    )
}

/// Asks the running daemon, or does it here when none runs.
async fn ask(config: &Config, request: Request) -> Result<Value, Failure> {
    match admin::call(&config.socket_path(), &request).await? {
        Some(answer) => answer,
        None => run_locally(config.clone(), request).await,
    }
}

fn parse_pairs(flag: &str, items: &[String]) -> Result<Vec<(String, String)>, Failure> {
    items
        .iter()
        .map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| Failure {
                    message: format!("{flag} {a:?}: expected KEY=VALUE"),
                    exit: 64,
                })
        })
        .collect()
}

/// `--at`: RFC 3339, or a local date and time such as 2026-12-01T08:00.
fn parse_at(text: &str) -> Result<String, Failure> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.to_rfc3339());
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return match naive.and_local_timezone(chrono::Local) {
                chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                    Ok(t.to_rfc3339())
                }
                chrono::LocalResult::None => Err(Failure::usage(format!(
                    "--at {text:?} does not exist in the local time zone"
                ))),
            };
        }
    }
    Err(Failure::usage(format!(
        "--at {text:?}: expected a time like 2026-12-01T08:00 or 2026-12-01T08:00:00+01:00"
    )))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| path.display().to_string())
}

fn read_text(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))
}

fn read_attachments(
    config: &Config,
    paths: &[PathBuf],
) -> Result<Vec<utskick::store::Attachment>, Failure> {
    let mut total = 0;
    let mut out = Vec::new();
    for p in paths {
        let a = newsletter::read_attachment(p, total, config.limits.max_attachment_bytes)
            .map_err(|e| Failure::usage(e.to_string()))?;
        total += a.data.len();
        out.push(a);
    }
    Ok(out)
}

fn read_newsletter(
    config: &Config,
    file: &Path,
    attach: &[PathBuf],
) -> Result<(utskick::store::Content, Vec<(String, String)>), Failure> {
    let text = read_text(file)?;
    let (mut content, filters) = newsletter::parse_newsletter(&file_name(file), &text)
        .map_err(|e| Failure::usage(e.to_string()))?;
    content.attachments = read_attachments(config, attach)?;
    Ok((content, filters))
}

async fn queued(config: &Config, request: Request) -> Result<(), Failure> {
    let daemon_running = std::os::unix::net::UnixStream::connect(config.socket_path()).is_ok();
    let v = ask(config, request).await?;
    if v["dry_run"] == true {
        println!(
            "{} would go to {} recipients (nothing queued)",
            text(&v["subject"]),
            text(&v["recipients"])
        );
        return Ok(());
    }
    println!(
        "campaign {} queued for {}: {:?} to {} recipients at {}",
        text(&v["id"]),
        text(&v["list"]),
        text(&v["subject"]),
        text(&v["recipients"]),
        text(&v["scheduled_at"]),
    );
    if !daemon_running {
        println!("the daemon is not running: `utskick serve` sends it");
    }
    Ok(())
}

/// A recipient for previews: the list's sample person.
fn sample_attributes(list: &utskick::daemon::lists::List) -> BTreeMap<String, String> {
    list.attributes
        .iter()
        .map(|a| (a.clone(), format!("({a})")))
        .collect()
}

async fn preview(
    config: &Config,
    list_id: &str,
    file: &Path,
    out: Option<PathBuf>,
    to: Option<String>,
    attach: &[PathBuf],
) -> Result<(), Failure> {
    let lists = utskick::daemon::lists::Lists::load(&config.lists_dir)?;
    let list = lists
        .get(list_id)
        .ok_or_else(|| Failure::usage(format!("no list {list_id:?}")))?;
    let (content, _) = read_newsletter(config, file, attach)?;
    if let Some(to) = to {
        let v = ask(
            config,
            Request::SendTest {
                list: list_id.to_string(),
                content: WireContent::new(content.clone()),
                to,
            },
        )
        .await?;
        println!("{}", text(&v));
    }
    let prepared = utskick::compose::mime::Prepared::new(&content, list, &config.templates_dir)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let attributes = sample_attributes(list);
    let base = config.base_url();
    let unsubscribe_url = format!("{base}/unsubscribe/preview");
    let mailto = utskick::daemon::lists::list_address(list, "unsubscribe", None, &config.domain);
    let reply_to = utskick::daemon::lists::list_address(list, "reply", None, &config.domain);
    let recipient = utskick::compose::mime::Recipient {
        email: "anna.andersson@example.se",
        name: "Anna Andersson",
        attributes: &attributes,
        unsubscribe_url: &unsubscribe_url,
        unsubscribe_mailto: &mailto,
        reply_to: &reply_to,
    };
    let message_id = format!("utskick.{}.preview@{}", list.id, config.domain);
    let env = utskick::compose::mime::Envelope {
        message_id: &message_id,
        date: chrono::Local::now().fixed_offset(),
        domain: &config.domain,
    };
    let raw = prepared.message(list, &recipient, &env, None)?;
    match out {
        Some(path) if path.extension().is_some_and(|x| x == "html") => {
            let html = prepared.html(list, &recipient)?;
            std::fs::write(&path, html)
                .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
            println!("wrote {}", path.display());
        }
        Some(path) => {
            std::fs::write(&path, &raw)
                .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
            println!("wrote {}", path.display());
        }
        None => {
            let parsed = mail_parser::MessageParser::default().parse(&raw);
            let subject = parsed
                .as_ref()
                .and_then(|m| m.subject())
                .unwrap_or_default();
            let body = parsed
                .as_ref()
                .and_then(|m| m.body_text(0))
                .unwrap_or_default();
            println!("Subject: {subject}\n\n{body}");
        }
    }
    Ok(())
}

async fn follow_status(config: &Config, id: u64) -> Result<(), Failure> {
    let first = ask(config, Request::Status { id }).await?;
    if std::os::unix::net::UnixStream::connect(config.socket_path()).is_err() {
        print_value(&first, None, Listing::Subscribers);
        println!("the daemon is not running: nothing will change until `utskick serve` runs");
        return Ok(());
    }
    let bar = indicatif::ProgressBar::new(first["total"].as_u64().unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:40}] {pos}/{len} {msg} {per_sec} ETA {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("campaign {id}"));
    loop {
        let v = ask(config, Request::Status { id }).await?;
        let total = v["total"].as_u64().unwrap_or(0);
        let (sent, failed, skipped) = (
            v["sent"].as_u64().unwrap_or(0),
            v["failed"].as_u64().unwrap_or(0),
            v["skipped"].as_u64().unwrap_or(0),
        );
        bar.set_length(total);
        bar.set_position(sent + failed + skipped);
        let status = text(&v["status"]);
        bar.set_message(format!(
            "{status}: sent {sent}, failed {failed}, skipped {skipped}, remaining {}",
            total.saturating_sub(sent + failed + skipped)
        ));
        if matches!(status.as_str(), "done" | "cancelled") {
            bar.finish();
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Without a daemon: open the store here, act, and send what the action queued.
async fn run_locally(config: Config, request: Request) -> Result<Value, Failure> {
    let transport = Transport::from_config(&config)?;
    let ctx = std::sync::Arc::new(daemon::build_context(config, system_clock())?);
    let value = admin::execute(&ctx, request).await?;
    if let Err(e) = outbound::drain_once(&ctx, &transport).await {
        eprintln!(
            "utskick: warning: queued mail not sent yet ({e:#}); `utskick serve` will send it"
        );
    }
    ctx.store.sync().await?;
    Ok(value)
}

fn inject_request(
    config: &Config,
    recipient: Option<String>,
    sender: Option<String>,
) -> Result<(Request, ()), Failure> {
    // One byte over the limit is enough to know it is too big.
    let limit = config.inbound.max_message_bytes as u64 + 1;
    let mut raw = Vec::new();
    std::io::stdin()
        .take(limit)
        .read_to_end(&mut raw)
        .map_err(|e| Failure {
            message: format!("cannot read the message from stdin: {e}"),
            exit: sysexits::TEMPFAIL,
        })?;
    if raw.len() as u64 >= limit {
        return Err(Failure {
            message: format!(
                "message exceeds inbound.max_message_bytes ({} bytes)",
                config.inbound.max_message_bytes
            ),
            exit: sysexits::DATAERR,
        });
    }
    let Some(msg) = utskick::mail::message::parse_message(&raw) else {
        return Err(Failure {
            message: "the message could not be parsed".into(),
            exit: sysexits::DATAERR,
        });
    };
    let lists = utskick::daemon::lists::Lists::load(&config.lists_dir)?;
    let recipient = match recipient {
        Some(r) => r,
        None => msg
            .to()
            .into_iter()
            .chain(msg.cc())
            .flat_map(|a| a.iter())
            .filter_map(|a| a.address())
            .find(|a| utskick::daemon::lists::parse_recipient(a, &config.domain, &lists).is_some())
            .map(str::to_string)
            .ok_or_else(|| Failure {
                message: "no To or Cc address belongs to a list; give --recipient".into(),
                exit: sysexits::NOUSER,
            })?,
    };
    // The Return-Path header as the MTA wrote it: `<>` is the null sender.
    // (mail-parser's return_address() falls back to From, which would hide
    // a bounce's null sender.)
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
    let message = data_encoding::BASE64.encode(&raw);
    Ok((
        Request::Inject {
            recipient,
            sender,
            message,
        },
        (),
    ))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Listing {
    Lists,
    Campaigns,
    Ignored,
    Subscribers,
}

fn print_value(value: &Value, format: Option<Format>, kind: Listing) {
    match (format, value) {
        (None, Value::String(s)) => println!("{s}"),
        (None, v) => println!("{v}"),
        (Some(Format::Json), v) => {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default())
        }
        (Some(_), Value::Array(rows)) if kind == Listing::Lists => print_lists(rows),
        (Some(_), Value::Array(rows)) if kind == Listing::Campaigns => print_campaigns(rows),
        (Some(Format::Table), Value::Array(rows)) if kind == Listing::Ignored => print_columns(
            rows,
            &["at", "list", "address", "sender", "reason", "subject"],
        ),
        (Some(Format::Csv), Value::Array(rows)) => print_csv(rows),
        (Some(Format::Table), Value::Array(rows)) => print_table(rows),
        (_, v) => println!("{v}"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

fn print_columns(rows: &[Value], keys: &[&str]) {
    let mut table = vec![keys.iter().map(|k| k.to_string()).collect::<Vec<_>>()];
    for r in rows {
        table.push(keys.iter().map(|k| text(&r[*k])).collect());
    }
    print_aligned(&table);
}

fn print_campaigns(rows: &[Value]) {
    print_columns(
        rows,
        &[
            "id",
            "list",
            "kind",
            "status",
            "sent",
            "failed",
            "skipped",
            "total",
            "scheduled_at",
            "subject",
        ],
    );
}

fn print_lists(rows: &[Value]) {
    let mut table = vec![vec![
        "list".to_string(),
        "address".into(),
        "subscription".into(),
        "confirmed".into(),
        "pending".into(),
        "awaiting".into(),
        "unsubscribed".into(),
        "bounced".into(),
        "disabled".into(),
    ]];
    for r in rows {
        let c = &r["counts"];
        table.push(vec![
            text(&r["id"]),
            text(&r["address"]),
            text(&r["subscription"]),
            text(&c["confirmed"]),
            text(&c["pending"]),
            text(&c["awaiting_approval"]),
            text(&c["unsubscribed"]),
            text(&c["bounced"]),
            text(&c["disabled"]),
        ]);
    }
    print_aligned(&table);
}

/// Attribute names across all rows, sorted, for the table and CSV columns.
fn attribute_names(rows: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = rows
        .iter()
        .filter_map(|r| r["attributes"].as_object())
        .flat_map(|o| o.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The columns of a subscriber listing: the fixed ones, then `attributes`.
fn subscriber_header(attributes: &[String]) -> Vec<String> {
    ["email", "name", "status", "bounces", "subscribed_at"]
        .iter()
        .map(|s| s.to_string())
        .chain(attributes.iter().cloned())
        .collect()
}

/// One subscriber (as `subscriber_json` gives it) in those columns.
fn subscriber_cells(r: &Value, attributes: &[String]) -> Vec<String> {
    let mut row = vec![
        text(&r["email"]),
        text(&r["name"]),
        text(&r["status"]),
        text(&r["bounces"]),
        text(&r["subscribed_at"]),
    ];
    row.extend(attributes.iter().map(|a| text(&r["attributes"][a])));
    row
}

fn subscriber_rows(rows: &[Value]) -> Vec<Vec<String>> {
    let attrs = attribute_names(rows);
    let mut out = vec![subscriber_header(&attrs)];
    out.extend(rows.iter().map(|r| subscriber_cells(r, &attrs)));
    out
}

fn print_table(rows: &[Value]) {
    print_aligned(&subscriber_rows(rows));
}

fn print_aligned(table: &[Vec<String>]) {
    let cols = table.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

/// RFC 4180 CSV: fields with a comma, quote or line break are quoted.
fn print_csv(rows: &[Value]) {
    for row in subscriber_rows(rows) {
        println!("{}", csv_line(&row));
    }
}
