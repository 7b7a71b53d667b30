//! `status --follow`: a live progress bar until the campaign ends.

use std::time::Duration;

use utskick::admin::protocol::CampaignRow;
use utskick::admin::{Failure, Request, Response};
use utskick::daemon::config::Config;
use utskick::daemon::files::daemon_answers;
use utskick::store::CampaignStatus;

use super::{ask, print, unexpected};

/// How often the bar asks for the campaign's progress.
const POLL: Duration = Duration::from_millis(500);

async fn status(config: &Config, id: u64) -> Result<CampaignRow, Failure> {
    match ask(config, Request::Status { id }).await? {
        Response::Campaign(c) => Ok(c),
        other => Err(unexpected(&other)),
    }
}

pub async fn follow(config: &Config, id: u64) -> Result<(), Failure> {
    let first = status(config, id).await?;
    if !daemon_answers(config) {
        println!("{}", print::json_line(&first));
        println!("the daemon is not running: nothing will change until `utskick serve` runs");
        return Ok(());
    }
    let bar = indicatif::ProgressBar::new(first.total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:40}] {pos}/{len} {msg} {per_sec} ETA {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("campaign {id}"));
    loop {
        let c = status(config, id).await?;
        let done = c.sent + c.failed + c.skipped;
        bar.set_length(c.total);
        bar.set_position(done);
        bar.set_message(format!(
            "{}: sent {}, failed {}, skipped {}, remaining {}",
            c.status.as_str(),
            c.sent,
            c.failed,
            c.skipped,
            c.total.saturating_sub(done)
        ));
        if matches!(c.status, CampaignStatus::Done | CampaignStatus::Cancelled) {
            bar.finish();
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}
