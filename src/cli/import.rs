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
    // The header is read here; the rows a batch at a time, on a thread
    // (`Batches`), while the batches before them are imported.
    let reader = people::csvfile::Reader::open(bytes, ignore)
        .map_err(|e| Failure::exit(sysexits::DATAERR, say::unreadable_file(&name, &e)))?;
    for column in ignore {
        let named = reader
            .all_columns
            .iter()
            .any(|c| c.eq_ignore_ascii_case(column.trim()));
        if !named {
            eprintln!("utskick: {}", say::no_such_column(&name, column));
        }
    }
    let columns = reader.columns.clone();
    // The bar's length: the file's data rows, counted in a pass over its
    // text that keeps nothing (a tenth of a second at 1M rows).
    let rows_in_file = reader.rows_left();
    let mut rows =
        people::batch::Batches::start(reader).map_err(|e| Failure::from(anyhow::Error::from(e)))?;
    // With no daemon running, the store is opened here once for every
    // batch (`Here`), not once a batch.
    let here: tokio::sync::OnceCell<Here> = tokio::sync::OnceCell::new();
    let batch = |rows| {
        let name = &name;
        let here = &here;
        let request = Request::Import {
            list: list.clone(),
            columns: columns.clone(),
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
    let bar = indicatif::ProgressBar::new(rows_in_file as u64);
    if rows_in_file <= people::batch::IMPORT_BATCH {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    // The first batch finds out who carries the import out: the daemon's
    // batches stay small (its socket's size limit, its other writers),
    // while this process, holding the store alone, takes big ones. It
    // also has the columns checked, before any row is imported: a file of
    // no good rows sends it empty.
    let (first, read) = rows
        .next(people::batch::IMPORT_BATCH)
        .await
        .unwrap_or_default();
    let mut total = batch(first).await?;
    bar.inc(read as u64);
    let size = match here.get() {
        Some(_) => people::batch::IMPORT_BATCH_HERE,
        None => people::batch::IMPORT_BATCH,
    };
    while let Some((next, read)) = rows.next(size).await {
        total.absorb(batch(next).await?);
        bar.inc(read as u64);
    }
    bar.finish_and_clear();
    let errors = std::mem::take(&mut rows.errors);
    let data_rows = rows.read;
    // Every row left out, unreadable or skipped, in the file's order.
    let mut left_out: Vec<(usize, String)> = errors
        .iter()
        .map(|e| (e.line, say::unreadable(&e.problem)))
        .chain(total.skipped.iter().map(|(l, why)| (*l, say::skipped(why))))
        .collect();
    left_out.sort_by_key(|(line, _)| *line);
    for (line, why) in &left_out {
        eprintln!("{name}:{line}: {why}");
    }
    println!("{}", say::imported(&list, &total, errors.len()));
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
