//! End to end in a real browser: headless Chromium driven over W3C
//! WebDriver (chromedriver), against the real daemon on loopback. The whole
//! web loop a visitor sees: the lists, the form, "check your inbox", the
//! confirmation button, the unsubscribe button, the public archive.
//! Screenshots of every step land in `target/screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; ignored by a plain
//! `cargo test`, run by CI with `.ci/browser.sh`
//! (`cargo test --test browser -- --ignored`).

mod common;

use std::path::PathBuf;

use common::webdriver::Browser;
use common::Daemon;

const LIST: &str = "lokal-finansiering";
const EMAIL: &str = "webb@example.org";
const NAME: &str = "Webb Besökare";
const REGION: &str = "Jämtland";
const BASE_URL: &str = "https://lista.example.se";

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

/// The first `https://lista.example.se{path}TOKEN` link in `text`, pointed at
/// the daemon's own loopback address.
fn local_link(d: &Daemon, text: &str, path: &str) -> String {
    let prefix = format!("{BASE_URL}{path}");
    let start = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no {prefix}… link in the mail:\n{text}"));
    let token: String = text[start + prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '%'))
        .collect();
    assert!(
        !token.is_empty(),
        "an empty token after {prefix} in:\n{text}"
    );
    format!("http://{}{path}{token}", d.http)
}

fn subscriber(d: &Daemon, email: &str) -> serde_json::Value {
    d.subscribers(LIST)
        .into_iter()
        .find(|s| s["email"] == email)
        .unwrap_or_else(|| panic!("{email} is not in {LIST}"))
}

/// Fills in the subscribe form on the current page and submits it.
fn fill_and_submit(b: &Browser, email: &str, name: &str, region: Option<&str>, shot: Option<&str>) {
    let form = "form.subscribe";
    b.wait_for(form);
    b.send_keys(&b.wait_for(&format!("{form} input[name=email]")), email);
    b.send_keys(&b.wait_for(&format!("{form} input[name=name]")), name);
    // The optional attributes of the list are there, and left alone unless given.
    let organisation = b.wait_for(&format!("{form} input[name=organisation]"));
    assert_eq!(b.property(&organisation, "value"), "");
    let region_input = b.wait_for(&format!("{form} input[name=region]"));
    if let Some(region) = region {
        b.send_keys(&region_input, region);
    }
    // The honeypot exists, a person does not see it, and it stays empty.
    let honeypot = b.wait_for(&format!("{form} input[name=website]"));
    assert!(
        !b.displayed(&honeypot),
        "the honeypot field is visible to people"
    );
    assert_eq!(b.property(&honeypot, "value"), "");
    if let Some(shot) = shot {
        b.screenshot(shot);
    }
    let before = b.current_url();
    b.click_and_wait_for_new_page(&b.wait_for(&format!("{form} button[type=submit]")));
    b.wait_url("the page after the form", |u| u != before);
}

#[test]
#[ignore = "needs chromium and chromedriver: run with --ignored (CI does)"]
fn subscribe_confirm_unsubscribe_and_archive_in_a_browser() {
    let shots = screenshots();
    let mut d = Daemon::start("");
    let b = Browser::start(&shots);
    let http = format!("http://{}", d.http);

    // 1. The public lists, each with a subscribe form.
    b.goto(&format!("{http}/"));
    b.wait_for("form.subscribe");
    let text = b.body_text();
    assert!(
        text.contains("Lokal finansiering"),
        "the list is not on the front page:\n{text}"
    );
    assert!(
        b.source().contains(&format!("/lists/{LIST}")),
        "no way from the front page to /lists/{LIST}"
    );
    b.screenshot("01-lists.png");

    // 2. The list's own page and its form.
    b.goto(&format!("{http}/lists/{LIST}"));
    fill_and_submit(&b, EMAIL, NAME, Some(REGION), Some("02-form.png"));

    // 3. "Check your inbox", which says nothing about whether the address
    //    was known (compared with a confirmed subscriber at the end).
    let check_inbox = b.body_text();
    assert!(
        check_inbox.contains("inkorg"),
        "not the check-your-inbox page:\n{check_inbox}"
    );
    assert!(
        !check_inbox.contains(EMAIL),
        "the page repeats the address:\n{check_inbox}"
    );
    b.screenshot("03-check-inbox.png");
    assert_eq!(d.status_of(LIST, EMAIL).as_deref(), Some("pending"));

    // 4. The confirmation mail's link: a page with one button; opening it
    //    changes nothing.
    let confirm = d.wait_mails(1).remove(0);
    assert_eq!(confirm.to, EMAIL);
    let link = local_link(&d, &confirm.text, "/confirm/");
    b.goto(&link);
    let button = b.wait_for("form[method=post] button");
    assert_eq!(
        b.find_all("form[method=post] button").len(),
        1,
        "the confirmation page should have one button"
    );
    b.screenshot("04-confirm.png");
    assert_eq!(
        d.status_of(LIST, EMAIL).as_deref(),
        Some("pending"),
        "opening the confirmation link (a GET) changed the subscription"
    );
    b.click_and_wait_for_new_page(&button);

    // 5. Confirmed.
    b.wait_for("h1");
    let text = b.body_text();
    assert!(
        text.contains("Välkommen"),
        "not the confirmed page:\n{text}"
    );
    b.screenshot("05-confirmed.png");
    assert_eq!(d.status_of(LIST, EMAIL).as_deref(), Some("confirmed"));
    let s = subscriber(&d, EMAIL);
    assert_eq!(s["name"], NAME, "{s}");
    assert_eq!(s["attributes"]["region"], REGION, "{s}");
    assert!(
        s["attributes"].get("organisation").is_none_or(|o| o == ""),
        "an organisation nobody typed: {s}"
    );

    // 6. A newsletter reaches the subscriber; its unsubscribe link works.
    let md = d.dir.path().join("decembernytt.md");
    std::fs::write(
        &md,
        "---\nsubject: Decembernytt från nätverket\npreheader: Prov i webbläsaren\n---\n\
         # Decembernytt från nätverket\n\nHej {{name}}!\n\n\
         Handboken om lokala finansieringslösningar finns nu på webben.\n",
    )
    .unwrap();
    d.cli_ok(&["queue", LIST, md.to_str().unwrap()]);
    // The welcome mail and the newsletter, in either order.
    let mails = d.wait_mails(2);
    assert!(mails.iter().all(|m| m.to == EMAIL), "{mails:#?}");
    let newsletter = mails
        .iter()
        .find(|m| m.text.contains("/unsubscribe/"))
        .unwrap_or_else(|| {
            panic!(
                "no newsletter with an unsubscribe link among {:?}",
                mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
            )
        });
    assert!(
        newsletter.subject.contains("Decembernytt"),
        "{}",
        newsletter.subject
    );
    let link = local_link(&d, &newsletter.text, "/unsubscribe/");
    b.goto(&link);
    let button = b.wait_for("form[method=post] button");
    assert_eq!(
        b.find_all("form[method=post] button").len(),
        1,
        "the unsubscribe page should have one button"
    );
    b.screenshot("06-unsubscribe.png");
    assert_eq!(
        d.status_of(LIST, EMAIL).as_deref(),
        Some("confirmed"),
        "opening the unsubscribe link (a GET) changed the subscription"
    );
    b.click_and_wait_for_new_page(&button);
    b.wait_for("h1");
    let text = b.body_text();
    assert!(
        text.contains("avslutat"),
        "not the unsubscribed page:\n{text}"
    );
    b.screenshot("07-unsubscribed.png");
    assert_eq!(d.status_of(LIST, EMAIL).as_deref(), Some("unsubscribed"));

    // 7. The public archive: the newsletter is there, without anyone's data.
    b.goto(&format!("{http}/archive/{LIST}"));
    b.wait_for("main");
    let text = b.body_text();
    assert!(
        text.contains("Decembernytt från nätverket"),
        "the archive does not list the newsletter:\n{text}"
    );
    b.screenshot("08-archive.png");
    let item = b
        .try_find("a.archive-item")
        .unwrap_or_else(|| b.wait_for("main ul a"));
    let href = b.attribute(&item, "href").unwrap_or_default();
    b.click_and_wait_for_new_page(&item);
    b.wait_url("the archived newsletter", |u| {
        u.contains(&format!("/archive/{LIST}/")) && !u.ends_with(&format!("/archive/{LIST}"))
    });
    b.wait_for("h1");
    let text = b.body_text();
    assert!(
        text.contains("Decembernytt från nätverket"),
        "not the archived newsletter ({href}):\n{text}"
    );
    b.screenshot("09-archive-item.png");
    let source = b.source();
    for personal in [EMAIL, "Webb", REGION] {
        assert!(
            !source.contains(personal),
            "the public archive shows personal data ({personal:?}):\n{source}"
        );
    }

    // The form answers a known address exactly as it answered a new one.
    d.cli_ok(&[
        "add",
        LIST,
        "redan@example.org",
        "--name",
        "Redan Med",
        "--consent",
        "browser test",
    ]);
    b.goto(&format!("{http}/lists/{LIST}"));
    fill_and_submit(&b, "redan@example.org", "Redan Med", None, None);
    let again = b.body_text();
    assert_eq!(
        again, check_inbox,
        "the form's answer reveals that the address was already subscribed"
    );
    assert_eq!(
        d.status_of(LIST, "redan@example.org").as_deref(),
        Some("confirmed")
    );
}
