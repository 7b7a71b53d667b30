//! The binary's own parts: arguments, reading the files they name, asking
//! the library, and printing the answers.

pub mod args;
pub mod campaigns;
pub mod follow;
pub mod import;
pub mod input;
pub mod print;
pub mod report;
pub mod say;
pub mod subscribers;
pub mod words;

use utskick::admin::{self, Failure, Request, Response};
use utskick::daemon::config::Config;

/// Asks the running daemon, or does it here when none runs. A failure comes
/// back in the CLI's words.
pub async fn ask(config: &Config, request: Request) -> Result<Response, Failure> {
    let answer = match admin::call(&config.socket_path(), &request).await? {
        Some(answer) => answer,
        None => {
            admin::execute_here(config.clone(), request, |e| {
                eprintln!("utskick: {}", say::unsent(e))
            })
            .await
        }
    };
    answer.map_err(words::flagged)
}

/// An answer of another kind than the request gets.
pub fn unexpected(response: &Response) -> Failure {
    Failure::usage(format!(
        "unexpected answer from the daemon: {}",
        print::json_line(response)
    ))
}
