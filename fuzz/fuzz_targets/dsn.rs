//! DSN and non-DSN bounce parsing, and ARF complaints, on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(msg) = mail_parser::MessageParser::default().parse(data) {
        for f in utskick::mail::bounce::parse(&msg) {
            assert!(!f.recipient.is_empty());
            assert!(f.diagnostic.len() <= 1024);
        }
        let _ = utskick::mail::bounce::complaint(&msg);
    }
});
