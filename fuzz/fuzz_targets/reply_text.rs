//! Reply-text extraction on arbitrary text, HTML and messages.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let own = utskick::mail::reply_text::own_text_of(&text);
    assert!(own.len() <= text.len() + 16);
    let _ = utskick::mail::html_text::html_to_text(&text);
    if let Some(msg) = mail_parser::MessageParser::default().parse(data) {
        let _ = utskick::mail::reply_text::own_text(&msg);
    }
});
