//! The `utskick` binary: parses the command line, sets up tracing, runs the
//! command, and turns an error into one line on stderr and an exit code.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::Value;
use utskick::admin::{self, sysexits, Failure, Request};
use utskick::config::Config;
use utskick::context::system_clock;
use utskick::outbound::{self, Transport};
use utskick::{address, daemon};

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
}

fn main() -> ExitCode {
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
    let config = load_config(&cli.config)?;
    let (request, format) = match cli.command {
        Command::Serve => {
            let signals = daemon::signals()?;
            return daemon::run(config, signals).await.map_err(Failure::from);
        }
        Command::Inject { recipient, sender } => {
            let (request, _) = inject_request(&config, recipient, sender)?;
            (request, None)
        }
        Command::Lists => (Request::Lists, Some(Format::Table)),
        Command::Subscribers {
            list,
            status,
            format,
        } => (Request::Subscribers { list, status }, Some(format)),
        Command::Add {
            list,
            email,
            name,
            attrs,
            consent,
        } => {
            let mut attributes = BTreeMap::new();
            for a in attrs {
                let (k, v) = a.split_once('=').ok_or_else(|| Failure {
                    message: format!("--attr {a:?}: expected KEY=VALUE"),
                    exit: 64,
                })?;
                attributes.insert(k.trim().to_string(), v.to_string());
            }
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
    };
    let is_lists = matches!(request, Request::Lists);
    let value = match admin::call(&config.socket_path(), &request).await? {
        Some(answer) => answer?,
        None => run_locally(config, request).await?,
    };
    print_value(&value, format, is_lists);
    Ok(())
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
    let Some(msg) = utskick::commands::parse_message(&raw) else {
        return Err(Failure {
            message: "the message could not be parsed".into(),
            exit: sysexits::DATAERR,
        });
    };
    let lists = utskick::lists::Lists::load(&config.lists_dir)?;
    let recipient = match recipient {
        Some(r) => r,
        None => msg
            .to()
            .into_iter()
            .chain(msg.cc())
            .flat_map(|a| a.iter())
            .filter_map(|a| a.address())
            .find(|a| address::parse_recipient(a, &config.domain, &lists).is_some())
            .map(str::to_string)
            .ok_or_else(|| Failure {
                message: "no To or Cc address belongs to a list; give --recipient".into(),
                exit: sysexits::NOUSER,
            })?,
    };
    let sender = sender.or_else(|| {
        msg.return_address()
            .map(|r| r.trim_matches(['<', '>']).to_string())
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

fn print_value(value: &Value, format: Option<Format>, is_lists: bool) {
    match (format, value) {
        (None, Value::String(s)) => println!("{s}"),
        (None, v) => println!("{v}"),
        (Some(Format::Json), v) => {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default())
        }
        (Some(_), Value::Array(rows)) if is_lists => print_lists(rows),
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

fn subscriber_rows(rows: &[Value]) -> Vec<Vec<String>> {
    let attrs = attribute_names(rows);
    let mut out = vec![["email", "name", "status", "bounces", "subscribed_at"]
        .iter()
        .map(|s| s.to_string())
        .chain(attrs.iter().cloned())
        .collect::<Vec<_>>()];
    for r in rows {
        let mut row = vec![
            text(&r["email"]),
            text(&r["name"]),
            text(&r["status"]),
            text(&r["bounces"]),
            text(&r["subscribed_at"]),
        ];
        row.extend(attrs.iter().map(|a| text(&r["attributes"][a])));
        out.push(row);
    }
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
        let fields: Vec<String> = row
            .iter()
            .map(|f| {
                if f.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", f.replace('"', "\"\""))
                } else {
                    f.clone()
                }
            })
            .collect();
        println!("{}", fields.join(","));
    }
}
