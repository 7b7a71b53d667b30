//! Message classification on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(msg) = mail_parser::MessageParser::default().parse(data) {
        let _ = utskick::mail::automated::automated(&msg, None);
        let _ = utskick::mail::automated::automated(&msg, Some(""));
        let _ = utskick::mail::automated::is_bounce(&msg, Some("a@b.se"));
    }
});
