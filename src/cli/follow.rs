//! `status --follow`: a live progress bar until the campaign ends, then
//! its final line (a campaign that already ended prints that line at once).

use std::time::Duration;

use utskick::admin::{Failure, Request};
use utskick::daemon::config::Config;
use utskick::daemon::files::daemon_answers;

use super::campaigns::campaign;
use super::say;

/// How often the bar asks for the campaign's progress.
const POLL: Duration = Duration::from_millis(500);

pub async fn follow(config: &Config, id: u64) -> Result<(), Failure> {
    let zone = config.timezone;
    let first = campaign(config, Request::Status { id }).await?;
    if first.status.is_final() {
        println!("{}", say::campaign_line(&first, zone));
        return Ok(());
    }
    if !daemon_answers(config) {
        println!("{}", say::campaign_line(&first, zone));
        println!("{}", say::nothing_moves());
        return Ok(());
    }
    let bar = indicatif::ProgressBar::new(first.total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} {msg} ETA {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(id.to_string());
    loop {
        let c = campaign(config, Request::Status { id }).await?;
        bar.set_length(c.total);
        bar.set_position(c.sent + c.failed + c.skipped);
        bar.set_message(format!(
            "{}: {}",
            say::status_word(c.status),
            say::progress(&c)
        ));
        if c.status.is_final() {
            bar.finish_and_clear();
            println!("{}", say::campaign_line(&c, zone));
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}
