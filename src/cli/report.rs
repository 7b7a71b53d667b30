//! `report`: the growth table in the list's language, and the chart as SVG.

use std::path::PathBuf;

use utskick::admin::{Failure, Request, Response};
use utskick::daemon::config::Config;
use utskick::daemon::lists::{Language, Lists};
use utskick::people::report;

use super::{ask, unexpected};

pub async fn report(
    config: &Config,
    list: Option<String>,
    svg: Option<PathBuf>,
) -> Result<(), Failure> {
    let request = Request::Report { list: list.clone() };
    let months = match ask(config, request).await? {
        Response::Report(months) => months,
        other => return Err(unexpected(&other)),
    };
    let lists = Lists::for_config(config);
    let language = list
        .as_deref()
        .and_then(|id| lists.as_ref().ok()?.get(id))
        .map(|l| l.language);
    let lang = match language {
        Some(Language::En) => report::Lang::En,
        _ => report::Lang::Sv,
    };
    print!("{}", report::table(&months, lang));
    if let Some(path) = svg {
        let lists = Lists::for_config(config)?;
        let name = list
            .as_deref()
            .and_then(|id| lists.get(id).map(|l| l.name.clone()))
            .unwrap_or_else(|| match lang {
                report::Lang::Sv => "alla listor".into(),
                report::Lang::En => "all lists".into(),
            });
        // The day the report was made, as the reader's calendar has it.
        let made = chrono::Local::now().date_naive();
        let caption = report::caption(&name, made, lang);
        std::fs::write(
            &path,
            report::svg(&months, report::title(lang), &caption, lang),
        )
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
        println!("{}", super::say::wrote(&path));
    }
    Ok(())
}
