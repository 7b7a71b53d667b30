//! The `utskick` binary: parses the command line, sets up tracing, runs the
//! command through the library, and turns an error into one line on stderr
//! and an exit code. The argument types, the files they name and the
//! printing are in `cli/`.

mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use utskick::admin::{sysexits, Failure, Request, WireContent};
use utskick::campaign::{preview::Preview, Steer};
use utskick::compose::newsletter;
use utskick::daemon::{self, config::Config, files, lists::Lists};
use utskick::people;

use cli::args::{parse_at, parse_pairs, parse_since, Cli, Command, Format, KeyAlgorithm};
use cli::input::{file_name, read_attachments, read_newsletter, read_text};
use cli::{ask, print, words};

/// sysexits(3): the configuration is broken.
const EX_CONFIG: i32 = 78;

fn main() -> ExitCode {
    daemon::memory::bound_arenas();
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
    Config::load(&path, required).map_err(|e| Failure::exit(EX_CONFIG, e.to_string()))
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let config = match load_config(&cli.config) {
        Ok(c) => c,
        // An MTA's pipe bounces on anything but 75: a broken configuration
        // must make it keep the mail until the admin mends it.
        Err(f) if matches!(cli.command, Command::Inject { .. }) => {
            return Err(Failure::exit(
                sysexits::TEMPFAIL,
                format!("4.3.5 {}", f.message),
            ));
        }
        Err(f) => return Err(f),
    };
    let (request, format) = match cli.command {
        Command::Serve => {
            let signals = daemon::signals()?;
            let ctx = daemon::build_context(config, utskick::time::system_clock())?;
            let listeners = daemon::Listeners::bind(&ctx.config).await?;
            return match daemon::run(ctx, listeners, signals).await? {
                daemon::Exit::Stopped => Ok(()),
                // Crash-only recovery from a failed store: the same program,
                // the same arguments, the same PID, a fresh store.
                daemon::Exit::Restart => Err(reexec()),
            };
        }
        Command::Inject { recipient, sender } => return inject(&config, recipient, sender).await,
        Command::Lists => (Request::Lists, Some(Format::Table)),
        Command::Subscribers {
            list,
            status,
            format,
        } => return cli::subscribers::list(&config, list, status, format).await,
        Command::Add {
            list,
            email,
            name,
            attrs,
            consent,
        } => {
            let attributes = parse_pairs("--attr", &attrs)?.into_iter().collect();
            let request = Request::Add {
                list,
                email,
                name,
                attributes,
                consent,
            };
            (request, None)
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
                at: at.map(|t| parse_at(&t, config.timezone)).transpose()?,
                dry_run,
            };
            return cli::campaigns::queued(&config, request).await;
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
            let content = newsletter::announcement(
                &title,
                link.as_deref(),
                description.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
                read_attachments(&config, &attach)?,
            )
            .map_err(cli::words::authoring)?;
            let request = Request::Queue {
                list,
                content: WireContent::new(content),
                filters: parse_pairs("--where", &filters)?,
                at: at.map(|t| parse_at(&t, config.timezone)).transpose()?,
                dry_run: false,
            };
            return cli::campaigns::queued(&config, request).await;
        }
        Command::Preview {
            list,
            file,
            out,
            to,
            attach,
        } => return preview(&config, &list, &file, out, to, &attach).await,
        Command::Campaigns => return cli::campaigns::list(&config).await,
        Command::Ignored { format } => (Request::Ignored, Some(format)),
        Command::Audit { since, format } => {
            let since = since
                .map(|s| parse_since(&s, config.timezone))
                .transpose()?;
            (Request::Audit { since }, Some(format))
        }
        Command::Threads { list } => (Request::Threads { list }, None),
        Command::Import {
            list,
            file,
            consent,
            invite,
            allow_forgotten,
            ignore_columns,
        } => {
            let options = people::ImportOptions {
                consent,
                invite,
                allow_forgotten,
                source: file_name(&file),
            };
            return cli::import::import(&config, list, &file, &ignore_columns, options).await;
        }
        Command::Person { email } => (Request::Person { email }, Some(Format::Json)),
        Command::Report { list, svg } => return cli::report::report(&config, list, svg).await,
        Command::Check => {
            let name = match &cli.config {
                Some(p) => p.display().to_string(),
                None if Path::new("utskick.toml").exists() => "utskick.toml".into(),
                None => "embedded defaults (no utskick.toml)".into(),
            };
            let sv = cli::say::lang() == cli::say::Lang::Sv;
            let (report, ok) = daemon::check::check(&config, &name, sv).await;
            print!("{report}");
            return match ok {
                true => Ok(()),
                false => Err(Failure::usage(cli::say::checks_failed())),
            };
        }
        Command::DkimKeygen { algorithm } => {
            let algorithm = match algorithm {
                KeyAlgorithm::Ed25519 => daemon::check::Algorithm::Ed25519,
                KeyAlgorithm::Rsa => daemon::check::Algorithm::Rsa,
            };
            println!("{}", daemon::check::keygen(&config, algorithm)?);
            return Ok(());
        }
        Command::Forget { email } => (Request::Forget { email }, None),
        Command::Backup { file } => {
            let path = std::path::absolute(&file)
                .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
            let path = path.display().to_string();
            (Request::Backup { path }, None)
        }
        Command::Restore { file } => {
            let n = files::restore(&config, &file).map_err(|e| Failure::usage(e.to_string()))?;
            println!("{}", cli::say::restored(n, &config.data_dir));
            return Ok(());
        }
        Command::Status {
            id, follow: true, ..
        } => return cli::follow::follow(&config, id).await,
        Command::Status { id, json, .. } => {
            return cli::campaigns::one(&config, Request::Status { id }, json).await
        }
        Command::Pause { id, json } => return steer(&config, id, Steer::Pause, json).await,
        Command::Resume { id, json } => return steer(&config, id, Steer::Resume, json).await,
        Command::Cancel { id, json } => return steer(&config, id, Steer::Cancel, json).await,
    };
    print::answer(&ask(&config, request).await?, format, config.timezone);
    Ok(())
}

/// `pause`, `resume`, `cancel`.
async fn steer(config: &Config, id: u64, action: Steer, json: bool) -> Result<(), Failure> {
    cli::campaigns::one(config, Request::Steer { id, action }, json).await
}

/// `inject`: exit codes follow sysexits, for an MTA's pipe.
async fn inject(
    config: &Config,
    recipient: Option<String>,
    sender: Option<String>,
) -> Result<(), Failure> {
    let raw = cli::input::read_stdin(config.inbound.max_message_bytes)?;
    let envelope = utskick::mail::inject::envelope(config, &raw, recipient, sender)
        .map_err(words::inject_refused)?;
    let request = Request::inject(envelope.recipient, envelope.sender, &raw);
    // An MTA's pipe bounces on any exit but 75: everything that is not a
    // verdict on the message itself must say "try again".
    let answer = ask(config, request).await.map_err(|f| {
        if f.exit == sysexits::DATAERR || f.exit == sysexits::NOUSER {
            f
        } else {
            Failure::exit(sysexits::TEMPFAIL, format!("4.3.0 {}", f.message))
        }
    })?;
    print::answer(&answer, None, config.timezone);
    Ok(())
}

async fn preview(
    config: &Config,
    list_id: &str,
    file: &Path,
    out: Option<PathBuf>,
    to: Option<String>,
    attach: &[PathBuf],
) -> Result<(), Failure> {
    let lists = Lists::for_config(config)?;
    let list = lists.get(list_id).ok_or_else(|| {
        let known: Vec<String> = lists.iter().map(|l| l.id.clone()).collect();
        Failure::usage(cli::say::no_list(list_id, &known))
    })?;
    let (content, _) = read_newsletter(config, file, attach)?;
    if let Some(to) = to {
        let request = Request::SendTest {
            list: list_id.to_string(),
            content: WireContent::new(content.clone()),
            to,
        };
        print::answer(&ask(config, request).await?, None, config.timezone);
    }
    let preview =
        Preview::new(config, list, &content).map_err(|e| Failure::usage(e.to_string()))?;
    let raw = preview.message()?;
    let write = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
        println!("{}", cli::say::wrote(path));
        Ok::<_, Failure>(())
    };
    match out {
        Some(path) if path.extension().is_some_and(|x| x == "html") => {
            write(&path, preview.html()?.as_bytes())?
        }
        Some(path) => write(&path, &raw)?,
        None => {
            let parsed = mail_parser::MessageParser::default().parse(&raw);
            let subject = parsed.as_ref().and_then(|m| m.subject());
            let body = parsed.as_ref().and_then(|m| m.body_text(0));
            println!(
                "Subject: {}\n\n{}",
                subject.unwrap_or_default(),
                body.unwrap_or_default()
            );
        }
    }
    println!("{}", cli::say::sending(preview.fallback()));
    Ok(())
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
