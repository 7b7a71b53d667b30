//! Only the person changes their subscription, and a person who leaves
//! gets nothing more: through every door, while a campaign round of the
//! real daemon is sending (not paused), and while its recipients are
//! being frozen.
//!
//! The daemon sends through a scripted relay on loopback with one lane,
//! so copies go out in key order (by subscriber id, which is random). X is
//! whoever a first newsletter reached last: X's delivery comes last in
//! key order, behind more subscribers than the lane may have dispatched
//! and not yet recorded (`connections × UNSYNCED_PER_LANE`). The relay
//! holds the round's first copy unanswered, so nothing of the round is
//! recorded and X's copy cannot have been dispatched; X leaves, the door
//! acknowledges (HTTP 200 or SMTP 250, after the store is synced), and
//! only then is the relay let go. "After the leave" is therefore the
//! whole round: X must get no copy of it, and the campaign must finish
//! with its counts adding up.

mod common;

use common::admin::call_to;
use common::relay::Accepted;
use common::reports::{arf, dsn};
use common::round::{unsubscribe_targets, Round, LIST, VERP};
use common::{header_in, plain, DOMAIN};
use utskick::campaign::UNSYNCED_PER_LANE;

/// Subscribers before X in key order.
const OTHERS: usize = 11;
/// The round's newsletter, by Subject.
const ROUND: &str = "Mitt i rundan";
/// The daemon's lanes in the door tests.
const LANES: usize = 1;

// With the relay holding the first copy, the dispatcher can have handed
// at most this many copies to the lane: X's is not among them.
const _: () = assert!(OTHERS > LANES * UNSYNCED_PER_LANE);

/// A daemon, OTHERS subscribers and X, and X's copies of `warmups`
/// newsletters sent to everyone before the round.
struct Scene {
    r: Round,
    /// The one who leaves: last in key order (first with `Scene::x_first`).
    x: String,
    others: Vec<String>,
    /// X's copy of each warm-up newsletter.
    x_copies: Vec<Accepted>,
}

impl Scene {
    fn new(warmups: usize) -> Scene {
        Scene::with_x_at(warmups, |copies| copies.last())
    }

    /// X is first in key order: X's copy is the one a round's lane takes
    /// first.
    fn x_first(warmups: usize) -> Scene {
        Scene::with_x_at(warmups, |copies| copies.first())
    }

    /// X is the one `pick` chooses from a warm-up's copies in key order.
    fn with_x_at(warmups: usize, pick: fn(&[Accepted]) -> Option<&Accepted>) -> Scene {
        let r = Round::start(LANES as u32);
        let people: Vec<String> = (0..=OTHERS)
            .map(|i| format!("p{i:02}@{}.example.org", ["a", "b", "c"][i % 3]))
            .collect();
        r.import(&people);
        let mut x_copies: Vec<Accepted> = Vec::new();
        for n in 1..=warmups {
            let subject = format!("Brev {n}");
            let id = r.queue(&subject, &[]);
            r.wait_done(&id);
            let copies = r.copies(&subject);
            assert_eq!(copies.len(), OTHERS + 1, "{subject}: one copy each");
            // One lane sends in key order, the same each time.
            let mine = pick(&copies).unwrap();
            if let Some(first) = x_copies.first() {
                assert_eq!(mine.to, first.to, "the order of {subject}");
            }
            x_copies.push(mine.clone());
        }
        let x = x_copies[0].to.clone();
        let others = people.into_iter().filter(|p| *p != x).collect();
        Scene {
            r,
            x,
            others,
            x_copies,
        }
    }

    fn copy(&self) -> &str {
        &self.x_copies[0].data
    }

    /// Holds the relay, queues the round, and waits until its first copy
    /// waits at the relay: the round is sending, none of its copies is
    /// taken, and X's has not been dispatched. Returns the campaign id.
    fn start_round(&self) -> String {
        self.r.relay.hold(VERP);
        let id = self.r.queue(ROUND, &[]);
        self.r.wait_active(&id);
        assert!(self.r.copies(ROUND).is_empty());
        id
    }

    /// Lets the relay go and checks the end of the round: X (whose leave
    /// was acknowledged before) got no copy, everyone else one, and the
    /// campaign is done with sent + skipped + failed = total.
    fn finish_round(&self, id: &str) {
        assert!(
            self.r.copies(ROUND).is_empty(),
            "the relay took a copy while held"
        );
        self.r.relay.release();
        let s = self.r.wait_done(id);
        let mut got: Vec<String> = self.r.copies(ROUND).into_iter().map(|m| m.to).collect();
        assert!(!got.contains(&self.x), "X got a copy after leaving");
        got.sort();
        let mut want = self.others.clone();
        want.sort();
        assert_eq!(got, want, "everyone else gets one copy");
        assert_eq!(s["status"], "done", "{s}");
        let n = |k: &str| s[k].as_u64().unwrap();
        assert_eq!(n("sent") + n("skipped") + n("failed"), n("total"), "{s}");
        assert_eq!(
            (n("total"), n("sent"), n("skipped"), n("failed")),
            (OTHERS as u64 + 1, OTHERS as u64, 1, 0),
            "{s}"
        );
        let table = self.r.d.cli_ok(&["campaigns"]);
        assert!(
            table
                .lines()
                .any(|l| l.split_whitespace().next() == Some(id) && l.contains("done")),
            "{table}"
        );
    }

    /// The round with X leaving in the middle of it: `forged` (attempts
    /// by others, or with tokens not ours) must leave X confirmed; `leave`
    /// takes X out (to status `gone`) before the relay is let go.
    fn leave_mid_round(&self, forged: impl FnOnce(), leave: impl FnOnce(), gone: &str) {
        let id = self.start_round();
        forged();
        assert_eq!(
            self.x_status(),
            "confirmed",
            "X was changed by someone else"
        );
        leave();
        assert_eq!(self.x_status(), gone);
        self.finish_round(&id);
    }

    /// Sends `message` to the daemon over SMTP; asserts the 250.
    fn mail(&self, from: &str, to: &str, message: &str) {
        let r = self.r.d.send(from, to, message);
        assert!(r.starts_with("250"), "{to}: {r}");
    }

    fn x_status(&self) -> String {
        self.r.status_of(&self.x)
    }
}

/// `token` with its last character changed: it decodes, but its MAC is wrong.
fn tampered(token: &str) -> String {
    let mut t = token.to_string();
    let last = t.pop().unwrap();
    t.push(if last == 'a' { 'b' } else { 'a' });
    t
}

/// `address` (or a path) with the token after its last '+' or '/' tampered.
fn forged(address: &str) -> String {
    let at = address.rfind(['+', '/']).unwrap() + 1;
    let end = address[at..].find('@').map_or(address.len(), |e| at + e);
    format!(
        "{}{}{}",
        &address[..at],
        tampered(&address[at..end]),
        &address[end..]
    )
}

/// The address in a header value (`<a@b>` or `a@b`).
fn bare(value: &str) -> String {
    value
        .split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map_or(value, |(a, _)| a)
        .trim()
        .to_string()
}

/// RFC 8058: a POST of the one-click body to `path`; the HTTP status.
fn one_click(http: &str, path: &str) -> u16 {
    call_to(
        http,
        "POST",
        path,
        None,
        Some("List-Unsubscribe=One-Click"),
        "",
    )
    .status
}

/// The one-click link of X's copy, with a token that is not ours first.
#[test]
fn one_click_mid_round_sends_x_nothing_more() {
    let s = Scene::new(1);
    let (link, _) = unsubscribe_targets(s.copy());
    let path = link
        .strip_prefix("https://lista.example.se")
        .expect("the link is under base_url");
    let http = &s.r.d.http;
    s.leave_mid_round(
        || {
            one_click(http, &forged(path));
        },
        || assert_eq!(one_click(http, path), 200),
        "unsubscribed",
    );
}

/// A reply "avsluta" to the Reply-To of X's copy, from X. The same reply
/// from someone the copy was passed on to removes no one.
#[test]
fn a_reply_avsluta_mid_round_sends_x_nothing_more() {
    let s = Scene::new(1);
    let reply_to = bare(&header_in(s.copy(), "Reply-To").expect("Reply-To"));
    assert!(
        reply_to.starts_with(&format!("{LIST}-reply+")),
        "{reply_to}"
    );
    let reply = |from: &str| {
        let body = "avsluta\r\n\r\n> Hej Test!\r\n";
        s.mail(from, &reply_to, &plain(from, &reply_to, "SV: Brev 1", body));
    };
    s.leave_mid_round(
        || reply("vidare@y.example.net"),
        || reply(&s.x),
        "unsubscribed",
    );
}

/// Mail to the List-Unsubscribe mailto of X's copy (the token in the
/// address); a tampered token changes no one.
#[test]
fn the_unsubscribe_mailto_mid_round_sends_x_nothing_more() {
    let s = Scene::new(1);
    let (_, mailto) = unsubscribe_targets(s.copy());
    let to = mailto.split('?').next().unwrap().to_string();
    assert!(to.starts_with(&format!("{LIST}-unsubscribe+")), "{to}");
    let x = s.x.as_str();
    let send = |to: &str| s.mail(x, to, &plain(x, to, "unsubscribe", ""));
    s.leave_mid_round(|| send(&forged(&to)), || send(&to), "unsubscribed");
}

/// An ARF complaint to the bare bounce address with X's copy attached
/// (bound by the token in its headers). The forged ones of issue 10 still
/// change no one: a report that only names X, and one to a VERP address
/// whose token is not ours.
#[test]
fn a_complaint_about_x_s_copy_mid_round_sends_x_nothing_more() {
    let s = Scene::new(1);
    let x = Some(s.x.as_str());
    let bounces = format!("{LIST}-bounces@{DOMAIN}");
    let forged_verp = forged(&s.x_copies[0].from);
    let complain = |to: &str, original| {
        s.mail(
            "fbl@mailbox.example",
            to,
            &arf(to, "Complaint", x, original),
        );
    };
    s.leave_mid_round(
        || {
            complain(&bounces, None);
            complain(&forged_verp, None);
        },
        || complain(&bounces, Some(s.copy())),
        "unsubscribed",
    );
}

/// Hard bounces (5.1.1) to the VERP addresses of X's copies: each counts
/// 1 on a score that halves in 14 days, and at the default threshold of 3
/// X is `bounced`. The first two leave X confirmed (X would still get the
/// round); the third takes X out, and X gets nothing more. A bounce to a
/// VERP address whose token is not ours counts for no one.
#[test]
fn a_third_hard_bounce_mid_round_sends_x_nothing_more() {
    let s = Scene::new(3);
    let x = s.x.as_str();
    let bounce = |verp: &str| s.mail("", verp, &dsn(verp, x, "5.1.1", "Undelivered Mail"));
    let record = || {
        s.r.d
            .subscribers(LIST)
            .into_iter()
            .find(|p| p["email"] == x)
            .unwrap()
    };
    s.leave_mid_round(
        || {
            bounce(&forged(&s.x_copies[0].from));
            assert_eq!(record()["bounces"], 0, "a forged VERP counted");
        },
        || {
            for (n, copy) in s.x_copies.iter().enumerate() {
                bounce(&copy.from);
                let now = record();
                assert_eq!(now["bounces"], n as u64 + 1, "{now}");
                let want = if n < 2 { "confirmed" } else { "bounced" };
                assert_eq!(now["status"], want, "after {} hard bounces", n + 1);
            }
        },
        "bounced",
    );
}

/// X's copy is already at the relay (it passed the lane's last look)
/// when X leaves: it goes out, which is right (it was in flight), and the
/// counts still add up. The leave's write marks the delivery skipped; the
/// relay's 250 then counts it sent (it used to stay skipped).
#[test]
fn a_copy_in_flight_when_its_person_leaves_is_counted_as_sent() {
    let s = Scene::x_first(1);
    let (link, _) = unsubscribe_targets(s.copy());
    let path = link.strip_prefix("https://lista.example.se").unwrap();
    let id = s.start_round();
    assert_eq!(
        s.r.relay.held(),
        std::slice::from_ref(&s.x),
        "X's copy is at the relay"
    );
    assert_eq!(one_click(&s.r.d.http, path), 200);
    assert_eq!(s.x_status(), "unsubscribed");
    s.r.relay.release();
    let st = s.r.wait_done(&id);
    let took = s.r.copies(ROUND);
    assert_eq!(took.len(), OTHERS + 1, "X's copy was in flight and went");
    let n = |k: &str| st[k].as_u64().unwrap();
    assert_eq!(st["status"], "done", "{st}");
    assert_eq!(n("sent") + n("skipped") + n("failed"), n("total"), "{st}");
    assert_eq!(
        (n("sent"), n("skipped")),
        (took.len() as u64, 0),
        "every copy the relay took is counted sent: {st}"
    );
}

/// X leaves by the one-click link right after a campaign to a large list
/// is queued: while its recipients are being frozen (X sorts first by
/// address, so X's batch is frozen first) or just after. X is then not
/// counted (their frozen delivery dropped, or never frozen) or skipped;
/// either way the campaign finishes with its counts adding up, and X gets
/// no copy. Here X's place in key order is not chosen, so a copy may have
/// passed its lane's last look before the leave: one per lane at most,
/// held at the relay, so among the first the relay takes once let go.
/// Only if the campaign was already sending at the acknowledgement and
/// X's copy is among those may X have it; if it was still being frozen,
/// X is not counted at all.
#[test]
fn leaving_while_the_recipients_are_frozen_sends_nothing_and_the_counts_add_up() {
    const N: usize = 2000;
    const LANES: usize = 4;
    let x = "a0-x@x.example.org";
    let r = Round::start(LANES as u32);
    let others: Vec<String> = (0..N)
        .map(|i| format!("m{i:05}@{}.example.org", ["a", "b", "c", "d"][i % 4]))
        .collect();
    r.import(&others);
    r.add(x, "X");
    // A newsletter to X alone gives X a copy with its link.
    let only_x = r.queue("Bara till X", &["region=X"]);
    r.wait_done(&only_x);
    let copies = r.copies("Bara till X");
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].to, x);
    let (link, _) = unsubscribe_targets(&copies[0].data);
    let path = link.strip_prefix("https://lista.example.se").unwrap();

    r.relay.hold(VERP);
    let id = r.queue("Stor runda", &[]);
    assert_eq!(one_click(&r.d.http, path), 200);
    let at_leave = r.status(&id);
    assert_eq!(r.status_of(x), "unsubscribed");
    assert!(r.copies("Stor runda").is_empty());
    r.relay.release();
    let s = r.wait_done(&id);

    let got: Vec<String> = r.copies("Stor runda").into_iter().map(|m| m.to).collect();
    let frozen = at_leave["started_at"].is_null();
    let in_flight = !frozen && got.iter().take(LANES).any(|to| to == x);
    assert!(
        !got.iter().skip(LANES).any(|to| to == x),
        "X got a copy after leaving (status at the leave: {at_leave})"
    );
    let mut unique: Vec<&String> = got.iter().filter(|to| *to != x).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), N, "one copy each to the others");
    assert_eq!(got.len(), N + usize::from(in_flight));
    let n = |k: &str| s[k].as_u64().unwrap();
    assert_eq!(s["status"], "done", "{s}");
    assert_eq!(n("sent") + n("skipped") + n("failed"), n("total"), "{s}");
    assert_eq!(n("failed"), 0, "{s}");
    let counted = (n("total"), n("sent"), n("skipped"));
    let (all, sent_all) = (N as u64 + 1, N as u64 + u64::from(in_flight));
    assert!(
        counted == (N as u64, N as u64, 0) || counted == (all, sent_all, 1 - u64::from(in_flight)),
        "X neither dropped nor skipped: {s}"
    );
    if frozen {
        assert_eq!(
            counted,
            (N as u64, N as u64, 0),
            "left while frozen: not counted"
        );
    }
    eprintln!(
        "the leave was acknowledged with the campaign {} (started_at {}); X {}",
        at_leave["status"],
        at_leave["started_at"],
        match (counted.0 == N as u64, in_flight) {
            (true, _) => "not counted",
            (false, false) => "skipped",
            (false, true) => "sent before the leave",
        }
    );
}

/// X is second in key order: the lane takes X's job while the first copy
/// is sent, and (to a relay with PIPELINING) X's MAIL, RCPT and DATA ride
/// behind that copy's final "."; the relay holds its answer. X leaves, the
/// door acknowledges, the relay is let go and says 354 to X's DATA: X's
/// copy must still not go. The leave came before X's bytes were written,
/// so X is skipped as X would be had the job waited in the queue.
#[test]
fn a_copy_whose_envelope_went_ahead_is_not_sent_when_its_person_leaves_before_its_body() {
    let s = Scene::with_x_at(1, |copies| copies.get(1));
    let (link, _) = unsubscribe_targets(s.copy());
    let path = link
        .strip_prefix("https://lista.example.se")
        .unwrap()
        .to_string();
    s.leave_mid_round(
        || {},
        || assert_eq!(one_click(&s.r.d.http, &path), 200),
        "unsubscribed",
    );
}
