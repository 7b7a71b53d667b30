//! `import`: a CSV file in batches, with a progress bar for a big one;
//! unreadable and skipped rows named by file and line on stderr. A file
//! whose header names a column the list does not declare is refused before
//! any row is imported (exit 65, with both remedies); a file none of whose
//! rows was added, invited or found there already exits 65 too.

use std::path::Path;

use utskick::admin::{self, sysexits, Cause, Failure, Here, Request, Response};
use utskick::daemon::config::Config;
use utskick::people;

use super::{say, unexpected, words};

/// What a batch queued but could not send now: the daemon sends it when
/// it runs.
fn unsent(e: &anyhow::Error) {
    eprintln!("utskick: {}", say::unsent(e));
}

pub async fn import(
    config: &Config,
    list: String,
    file: &Path,
    ignore: &[String],
    options: people::ImportOptions,
) -> Result<(), Failure> {
    let name = file.display().to_string();
    let bytes = std::fs::read(file).map_err(|e| Failure::usage(format!("{name}: {e}")))?;
    let mut csv = people::csvfile::read_file(&bytes, ignore)
        .map_err(|e| Failure::exit(sysexits::DATAERR, say::unreadable_file(&name, &e)))?;
    // The file's columns, ignored ones too, to name an ignored one it
    // lacks (read again only when some are ignored: a big file's reading
    // is a share of its import).
    let all = match ignore.is_empty() {
        true => Ok(Vec::new()),
        false => people::csvfile::read_file(&bytes, &[]).map(|f| f.columns),
    };
    drop(bytes);
    for column in ignore {
        let named = all
            .as_ref()
            .is_ok_and(|all| all.iter().any(|c| c.eq_ignore_ascii_case(column.trim())));
        if !named {
            eprintln!("utskick: {}", say::no_such_column(&name, column));
        }
    }
    // With no daemon running, the store is opened here once for every
    // batch (`Here`), not once a batch.
    let here: tokio::sync::OnceCell<Here> = tokio::sync::OnceCell::new();
    let batch = |rows| {
        let name = &name;
        let here = &here;
        let request = Request::Import {
            list: list.clone(),
            columns: csv.columns.clone(),
            rows,
            options: options.clone(),
        };
        async move {
            let answer = match here.get() {
                Some(local) => local.execute(request, unsent).await,
                None => match admin::call(&config.socket_path(), &request).await? {
                    Some(answer) => answer,
                    None => {
                        let local = here
                            .get_or_try_init(|| async { Here::open_for_bulk(config.clone()) })
                            .await?;
                        local.execute(request, unsent).await
                    }
                },
            };
            match answer.map_err(words::flagged) {
                Ok(Response::Imported(r)) => Ok(r),
                Ok(other) => Err(unexpected(&other)),
                Err(f) => Err(reworded(f, name)),
            }
        }
    };
    // The columns are checked with the first batch, before any of its
    // rows; a file of no rows still has its header checked.
    if csv.rows.is_empty() {
        batch(Vec::new()).await?;
    }
    let data_rows = csv.data_rows();
    let bar = indicatif::ProgressBar::new(csv.rows.len() as u64);
    if csv.rows.len() <= people::batch::IMPORT_BATCH {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    // The first batch finds out who carries the import out: the daemon's
    // batches stay small (its socket's size limit, its other writers),
    // while this process, holding the store alone, takes big ones.
    let first = csv.rows.len().min(people::batch::IMPORT_BATCH);
    let mut head = std::mem::take(&mut csv.rows);
    let rest = head.split_off(first);
    let mut total = people::batch::in_batches(head, people::batch::IMPORT_BATCH, &batch, |n| {
        bar.inc(n as u64)
    })
    .await?;
    let size = match here.get() {
        Some(_) => people::batch::IMPORT_BATCH_HERE,
        None => people::batch::IMPORT_BATCH,
    };
    total.absorb(people::batch::in_batches(rest, size, &batch, |n| bar.inc(n as u64)).await?);
    bar.finish_and_clear();
    // Every row left out, unreadable or skipped, in the file's order.
    let mut left_out: Vec<(usize, String)> = csv
        .errors
        .iter()
        .map(|e| (e.line, say::unreadable(&e.problem)))
        .chain(total.skipped.iter().map(|(l, why)| (*l, say::skipped(why))))
        .collect();
    left_out.sort_by_key(|(line, _)| *line);
    for (line, why) in &left_out {
        eprintln!("{name}:{line}: {why}");
    }
    println!("{}", say::imported(&list, &total, csv.errors.len()));
    // A row invited earlier today is there already, as an unchanged one is.
    let invited_today = total
        .skipped
        .iter()
        .filter(|(_, why)| *why == people::Skip::CapReached)
        .count() as u64;
    let took = total.added + total.invited + total.unchanged + invited_today;
    if took == 0 && data_rows > 0 {
        return Err(Failure::exit(
            sysexits::DATAERR,
            say::nothing_imported(&name, data_rows),
        ));
    }
    Ok(())
}

/// A refusal of the file's columns, worded with the file's name.
fn reworded(mut f: Failure, file: &str) -> Failure {
    if let Some(Cause::UndeclaredColumns {
        list,
        list_file,
        columns,
        declared,
    }) = f.cause.as_deref()
    {
        f.message = say::undeclared_columns(file, list, list_file, columns, declared);
    }
    f
}
