//! The SMTP session state machine, fed arbitrary bytes in arbitrary chunks,
//! with the real command handlers behind it.
#![no_main]
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;

struct World {
    _dir: tempfile::TempDir,
    ctx: Arc<utskick::daemon::context::Context>,
    rt: tokio::runtime::Runtime,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let text = format!(
            "data_dir = \"{}\"\nlists_dir = \"{root}/lists\"\ntemplates_dir = \"{root}/templates\"\n[inbound]\nmax_message_bytes = 65536\n",
            dir.path().join("data").display()
        );
        let config = utskick::daemon::config::Config::parse(&text, "fuzz.toml").unwrap();
        let ctx = Arc::new(utskick::daemon::build_context(config, utskick::daemon::context::system_clock()).unwrap());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        World { _dir: dir, ctx, rt }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    // The first byte picks the chunk size, so splits land anywhere.
    let (size, rest) = match data.split_first() {
        Some((s, rest)) => (usize::from(*s).max(1), rest),
        None => return,
    };
    let chunks: Vec<&[u8]> = rest.chunks(size).collect();
    let out = w.rt.block_on(utskick::mail::listener::replay(w.ctx.clone(), &chunks));
    // Every answer is a well-formed reply line.
    for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        assert!(line.len() >= 4 && line[..3].iter().all(u8::is_ascii_digit), "{:?}", String::from_utf8_lossy(line));
    }
});
