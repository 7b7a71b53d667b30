//! Address validation, recipient parsing and token decoding on arbitrary text.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn lists() -> &'static utskick::daemon::lists::Lists {
    static L: OnceLock<utskick::daemon::lists::Lists> = OnceLock::new();
    L.get_or_init(|| utskick::daemon::lists::Lists::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../lists"))).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let valid = utskick::address::is_valid(&text);
    let normal = utskick::address::normalize(&text);
    if valid {
        assert!(!normal.contains(['\r', '\n']));
    }
    let _ = utskick::daemon::lists::parse_recipient(&text, "localhost", lists());
    let safe = utskick::address::header_safe(&text);
    assert!(!safe.contains(['\r', '\n']));
    if let Some(t) = utskick::token::Token::decode(&text) {
        let secret = utskick::token::Secret::from_bytes([1; 32]);
        assert!(!secret.verify(&t, utskick::token::Purpose::Subscriber, "x", "y") || text.len() == utskick::token::TOKEN_CHARS);
    }
    let _ = utskick::token::Token::find_in(&text);
});
