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
            .unwrap_or_else(|| "utskick".into());
        let title = match lang {
            report::Lang::Sv => format!("{name}: nätverkets tillväxt"),
            report::Lang::En => format!("{name}: growth of the network"),
        };
        std::fs::write(&path, report::svg(&months, &title, lang))
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
