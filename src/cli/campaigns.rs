//! The leader's campaigns: the echo of `queue` and `announce`, the
//! `campaigns` table, and the readable line of `status`, `pause`, `resume`
//! and `cancel` (one JSON line with `--json`, for scripts). Times are in
//! the configured `timezone`, to the minute.

use utskick::admin::protocol::CampaignRow;
use utskick::admin::{Failure, Request, Response};
use utskick::daemon::config::Config;
use utskick::daemon::files;

use super::{ask, print, say, unexpected};

/// `queue` and `announce`.
pub async fn queued(config: &Config, request: Request) -> Result<(), Failure> {
    let daemon_running = files::daemon_answers(config);
    match ask(config, request).await? {
        Response::DryRun(d) => println!("{}", say::dry_run(&d.subject, d.recipients)),
        Response::Queued(q) => {
            println!(
                "{}",
                say::queued(&q.campaign, q.recipients, config.timezone)
            );
            if !daemon_running {
                println!("{}", say::serve_sends_it());
            }
        }
        other => return Err(unexpected(&other)),
    }
    Ok(())
}

/// `status ID`, `pause`, `resume`, `cancel`: the campaign as it is now
/// (after the steer), as a line for people or, with `json`, as JSON.
pub async fn one(config: &Config, request: Request, json: bool) -> Result<(), Failure> {
    let c = campaign(config, request).await?;
    if json {
        // Without `recipients_when_sent`: the shape scripts have read
        // since before it existed.
        let row = CampaignRow {
            recipients_when_sent: None,
            ..c
        };
        println!("{}", print::json_line(&row));
    } else {
        println!("{}", say::campaign_line(&c, config.timezone));
    }
    Ok(())
}

/// The campaign a `status` or steer request answers with.
pub async fn campaign(config: &Config, request: Request) -> Result<CampaignRow, Failure> {
    match ask(config, request).await? {
        Response::Campaign(c) => Ok(c),
        other => Err(unexpected(&other)),
    }
}

/// `campaigns`: a table, oldest first.
pub async fn list(config: &Config) -> Result<(), Failure> {
    let rows = match ask(config, Request::Campaigns).await? {
        Response::Campaigns(rows) => rows,
        other => return Err(unexpected(&other)),
    };
    let mut table = vec![say::campaigns_header().map(str::to_string).to_vec()];
    table.extend(rows.iter().map(|c| {
        vec![
            c.id.to_string(),
            c.list.clone(),
            say::kind_word(c.kind).to_string(),
            say::status_word(c.status).to_string(),
            say::campaign_time(c, config.timezone),
            say::progress(c),
            c.subject.clone(),
        ]
    }));
    print::aligned(&table);
    Ok(())
}
