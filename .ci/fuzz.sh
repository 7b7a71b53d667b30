#!/usr/bin/env bash
# CI: every cargo-fuzz target for a fixed time, seeded from the committed
# corpus in fuzz/corpus/ and the test corpora (real bounces, auto-replies
# and replies). The toolchain is stable, so RUSTC_BOOTSTRAP lets cargo-fuzz
# pass its -Z flags; without a sanitizer (-s none) a panic is still a
# crash. New inputs go to a scratch copy, so the run changes nothing in git.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
(cd fuzz && cargo fuzz build -s none -O)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
for t in smtp_session classify reply_text dsn address_token; do
    mkdir -p "$work/$t"
    cp fuzz/corpus/$t/* "$work/$t/" 2>/dev/null || true
    case $t in
        classify|dsn) cp tests/corpus/bounces/*.eml "$work/$t/" ;;
        reply_text) cp tests/corpus/replies/*.eml tests/corpus/replies/*.txt tests/corpus/replies/*.html "$work/$t/" ;;
    esac
    echo "== fuzz $t for ${seconds}s"
    if (cd fuzz && cargo fuzz run -s none -O "$t" "$work/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 -artifact_prefix="$work/$t-" 2>&1 | grep -E "^Done|panicked|ERROR|SUMMARY" ); then
        if ls "$work/$t-"crash-* >/dev/null 2>&1; then
            failed=$((failed + 1))
            echo "fuzz $t: crash, input:"; xxd "$work/$t-"crash-* | head -20
        else
            passed=$((passed + 1))
        fi
    else
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
