//! `import`: a CSV file in batches, with a progress bar for a big one;
//! unreadable and skipped rows named by file and line on stderr.

use std::path::Path;

use utskick::admin::{Failure, Request, Response};
use utskick::daemon::config::Config;
use utskick::people;

use super::{ask, unexpected, words};

pub async fn import(
    config: &Config,
    list: String,
    file: &Path,
    options: people::ImportOptions,
) -> Result<(), Failure> {
    let bytes =
        std::fs::read(file).map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
    let (rows, errors) = people::csvfile::read(&bytes)
        .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
    for e in &errors {
        eprintln!("{}:{}: {}", file.display(), e.line, e.message);
    }
    let bar = indicatif::ProgressBar::new(rows.len() as u64);
    if rows.len() <= people::batch::IMPORT_BATCH {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let batch = |rows| {
        let request = Request::Import {
            list: list.clone(),
            rows,
            options: options.clone(),
        };
        async move {
            match ask(config, request).await? {
                Response::Imported(r) => Ok(r),
                other => Err(unexpected(&other)),
            }
        }
    };
    let total = people::batch::in_batches(&rows, batch, |n| bar.inc(n as u64)).await?;
    bar.finish_and_clear();
    for (line, why) in &total.skipped {
        eprintln!(
            "{}:{line}: skipped: {}",
            file.display(),
            words::skipped(why)
        );
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
