//! A campaign round through the real daemon: `utskick serve` sends through
//! a scripted relay on loopback ([`super::relay`]) that the test can hold,
//! and the CLI queues campaigns and reads their counts.

use std::time::{Duration, Instant};

use super::relay::{Accepted, Relay, Script};
use super::{header_in, rand_id, Daemon};

pub const LIST: &str = "lokal-finansiering";
/// Campaign copies (and probes) go out from `L-bounces+TOKEN@D`; system
/// mail from the bare `L-bounces@D`.
pub const VERP: &str = "-bounces+";
/// How long a test waits for a state it can see before it gives up.
const PATIENCE: Duration = Duration::from_secs(600);

pub struct Round {
    pub d: Daemon,
    pub relay: Relay,
}

impl Round {
    /// A daemon with `connections` lanes to a fresh relay. The relay
    /// timeout is long, so a copy held at the relay waits for the test
    /// instead of failing.
    pub fn start(connections: u32) -> Round {
        let relay = Relay::start(Script::default());
        let d = Daemon::start(&format!(
            "[outbound]\ntransport = \"smtp\"\nrelay = \"{}\"\nconnections = {connections}\ntimeout_secs = 600\n",
            relay.addr
        ));
        Round { d, relay }
    }

    /// Imports confirmed subscribers (no welcome mail), in this order.
    pub fn import(&self, people: &[String]) {
        let mut csv = String::from("email,name,organisation,region\n");
        for p in people {
            csv.push_str(&format!("{p},Test,,\n"));
        }
        let path = self.d.dir.path().join(format!("people-{}.csv", rand_id()));
        std::fs::write(&path, csv).unwrap();
        let out = self
            .d
            .cli_ok(&["import", LIST, path.to_str().unwrap(), "--consent", "test"]);
        assert!(out.contains(&format!("{} added", people.len())), "{out}");
    }

    /// Adds one confirmed subscriber after everyone before (so their
    /// deliveries come last in key order), with `region` set.
    pub fn add(&self, email: &str, region: &str) {
        self.d.cli_ok(&[
            "add",
            LIST,
            email,
            "--name",
            "Test",
            "--attr",
            &format!("region={region}"),
            "--consent",
            "test",
        ]);
    }

    /// Queues a newsletter whose Subject is `subject` (plain ASCII), with
    /// `--where` filters; returns the campaign id.
    pub fn queue(&self, subject: &str, filters: &[&str]) -> String {
        let md = self.d.dir.path().join(format!("nyhet-{}.md", rand_id()));
        std::fs::write(&md, format!("# {subject}\n\nHej {{{{name}}}}!\n")).unwrap();
        let mut args = vec!["queue", LIST, md.to_str().unwrap()];
        for f in filters {
            args.extend(["--where", f]);
        }
        let out = self.d.cli_ok(&args);
        let id = out.split_whitespace().nth(1).unwrap().to_string();
        assert!(id.parse::<u64>().is_ok(), "no campaign id in {out:?}");
        id
    }

    /// `utskick status ID --json`.
    pub fn status(&self, id: &str) -> serde_json::Value {
        serde_json::from_str(self.d.cli_ok(&["status", id, "--json"]).trim()).unwrap()
    }

    /// Waits until campaign `id` is over, and returns its status.
    pub fn wait_done(&self, id: &str) -> serde_json::Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let s = self.status(id);
            if s["status"] == "done" || s["status"] == "cancelled" {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "campaign {id} never finished: {s}\n{}",
                self.d.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until campaign `id` is sending and one of its copies waits
    /// at the held relay: the round is under way.
    pub fn wait_active(&self, id: &str) {
        self.relay.wait_held(PATIENCE);
        assert_eq!(self.status(id)["status"], "sending");
    }

    /// The copies with Subject `subject` the relay took, in order.
    pub fn copies(&self, subject: &str) -> Vec<Accepted> {
        self.relay
            .messages()
            .into_iter()
            .filter(|m| m.from.contains(VERP) && subject_of(&m.data) == subject)
            .collect()
    }

    /// The status of `email` on the list, as `utskick subscribers` says.
    pub fn status_of(&self, email: &str) -> String {
        self.d
            .status_of(LIST, email)
            .unwrap_or_else(|| panic!("{email} is not on {LIST}"))
    }
}

/// A message's Subject, decoded.
pub fn subject_of(raw: &str) -> String {
    mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_default()
}

/// The `<…>` entries of a `List-Unsubscribe` value: (https link, mailto).
pub fn unsubscribe_targets(copy: &str) -> (String, String) {
    let value = header_in(copy, "List-Unsubscribe").expect("List-Unsubscribe");
    let entries: Vec<&str> = value
        .split('<')
        .filter_map(|e| e.split_once('>').map(|(a, _)| a))
        .collect();
    let link = entries
        .iter()
        .find(|e| e.starts_with("https://"))
        .expect("an https link");
    let mailto = entries
        .iter()
        .find_map(|e| e.strip_prefix("mailto:"))
        .expect("a mailto");
    (link.to_string(), mailto.to_string())
}
