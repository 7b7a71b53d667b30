#!/usr/bin/env bash
# One campaign send to N confirmed subscribers into smtp-sink, as bench/run's
# outbound part does it, reporting the daemon's CPU per message and its peak
# RSS (VmHWM over its whole life: start-up, fixing the recipients, the send),
# with VmRSS sampled every 100 ms to show where the peak is.
# Usage: BIN=path/to/utskick scripts/bench-send-mem.sh N [CONNECTIONS]
# DKIM=1: every copy signed with a fresh RSA-2048 key (`dkim-keygen`).
# SPLIT=1, PERF_OUT=FILE: see below (fixing the recipients vs the send).
# METRICS=1: also the store's group commits (from /metrics) and the
# daemon's write syscalls and bytes written to disk during the send
# (/proc/PID/io), on stderr.
# The seeded data dir is kept in $SEEDS (default /var/tmp/utskick-seeds) and
# copied for each run. Needs /usr/sbin/smtp-sink (apt-get install postfix).
set -euo pipefail
n=${1:-10000}
conns=${2:-4}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-${CARGO_TARGET_DIR:-$root/target}/release/utskick}
seeds=${SEEDS:-/var/tmp/utskick-seeds}
# The addresses are spread over DOMAINS domains (default 50), as bench/run does.
domains=${DOMAINS:-50}
work=$(mktemp -d /var/tmp/utskick-send.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sink_port=$(port)
/usr/sbin/smtp-sink -u "$(id -un)" 127.0.0.1:"$sink_port" 1024 &
pids+=($!)
config() { # DIR
  cat > "$1/u.toml" <<TOML
domain = "lista.example.se"
base_url = "https://lista.example.se"
data_dir = "$1/data"
lists_dir = "$root/lists"
templates_dir = "$root/templates"
[inbound]
listen = "127.0.0.1:$(port)"
[http]
listen = "127.0.0.1:$(port)"
[metrics]
listen = "127.0.0.1:$(port)"
[outbound]
transport = "smtp"
relay = "127.0.0.1:$sink_port"
connections = $conns
TOML
}
seed=$seeds/$n-d$domains
if [ ! -d "$seed/data" ]; then
  mkdir -p "$seed"
  config "$seed"
  awk -v n="$n" -v d="$domains" 'BEGIN { print "email,name,organisation,region";
    split("Jämtland,Västerbotten,Dalarna,Gotland,Skåne", r, ",");
    for (i = 1; i <= n; i++) printf "p%d@%s,Person %d,Förening %d,%s\n", i, (d > 1 ? "d" (i % d) ".example.org" : "example.org"), i, i % 97, r[i % 5 + 1] }' > "$seed/subs.csv"
  "$bin" --config "$seed/u.toml" import lokal-finansiering "$seed/subs.csv" --consent bench > /dev/null
fi
cp -a "$seed/data" "$work/data"
config "$work"
if [ "${DKIM:-0}" = 1 ]; then
  printf '[dkim]\nprivate_key_file = "%s"\n' "$work/dkim.pem" >> "$work/u.toml"
  "$bin" --config "$work/u.toml" dkim-keygen > /dev/null
fi
RUST_LOG=warn "$bin" --config "$work/u.toml" serve > "$work/out" 2> "$work/err" &
dpid=$!
pids+=($dpid)
until grep -q "ready" "$work/out" 2>/dev/null; do sleep 0.05; done
( t0=$(date +%s%N); while kill -0 "$dpid" 2>/dev/null; do
    awk -v t="$(( ($(date +%s%N) - t0) / 1000000 ))" '/^VmRSS/ {r=$2} /^VmHWM/ {h=$2} END {printf "%d %.1f %.1f\n", t, r/1024, h/1024}' "/proc/$dpid/status" 2>/dev/null || true
    sleep 0.1; done ) > "$work/rss" &
pids+=($!)
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; }
# PERF_OUT=FILE: perf record (DWARF call graphs) of the daemon from just
# before the queue, until the campaign is done, or with PERF_FIX=1 until
# its recipients are fixed.
if [ -n "${PERF_OUT:-}" ]; then
  perf record -g --call-graph dwarf,16384 -F "${PERF_FREQ:-499}" -o "$PERF_OUT" -p "$dpid" 2> "$work/perf.err" &
  perfpid=$!
  sleep 1
fi
io() { awk '/^(syscw|write_bytes)/ { printf "%s %s ", $1, $2 }' "/proc/$dpid/io"; }
[ "${METRICS:-0}" = 1 ] && io0=$(io)
c0=$(cpu "$dpid"); t0=$(date +%s%N)
id=$("$bin" --config "$work/u.toml" queue lokal-finansiering "$root/bench/newsletter.md" | awk '{print $2}')
# SPLIT=1: the daemon's CPU also when the campaign is first seen sending,
# to tell fixing the recipients (queue included) from the send.
if [ "${SPLIT:-0}" = 1 ] || [ -n "${PERF_OUT:-}" ]; then
  until "$bin" --config "$work/u.toml" status "$id" --json 2>/dev/null | grep -q '"status":"\(sending\|done\)"'; do sleep 0.02; done
  tm=$(date +%s%N); cm=$(cpu "$dpid")
  if [ -n "${PERF_OUT:-}" ] && [ "${PERF_FIX:-0}" = 1 ]; then kill -INT "$perfpid"; wait "$perfpid" || true; perfpid=; fi
fi
until "$bin" --config "$work/u.toml" status "$id" --json 2>/dev/null | grep -q '"status":"done"'; do sleep 0.05; done
t1=$(date +%s%N); c1=$(cpu "$dpid")
if [ -n "${perfpid:-}" ]; then kill -INT "$perfpid"; wait "$perfpid" || true; fi
if [ "${METRICS:-0}" = 1 ]; then
  echo "io before the queue: $io0; after the send: $(io)" >&2
  mport=$(awk -F'"' '/^\[metrics\]/ { m = 1 } m && /^listen/ { print $2; exit }' "$work/u.toml")
  curl -s "http://$mport/metrics" | grep -E '^utskick_store_commit' >&2 || true
fi
hwm=$(awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$dpid/status")
"$bin" --config "$work/u.toml" status "$id" --json
peak=$(awk '$2 > m { m = $2; line = $0 } END { print line }' "$work/rss")
awk -v n="$n" -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hwm="$hwm" -v peak="$peak" 'BEGIN {
  s = (t1 - t0) / 1e9; printf "N=%d: %.2f s, %.0f msg/s, daemon CPU %.2f s = %.0f us/msg, VmHWM %s MB (highest sampled RSS at ms/RSS/HWM: %s)\n", n, s, n / s, c1 - c0, (c1 - c0) / n * 1e6, hwm, peak }'
if [ -n "${tm:-}" ]; then
  awk -v n="$n" -v c0="$c0" -v cm="$cm" -v c1="$c1" -v t0="$t0" -v tm="$tm" -v t1="$t1" 'BEGIN {
    printf "split: fixing %.2f s, daemon CPU %.2f s = %.1f us/msg; send %.2f s, daemon CPU %.2f s = %.1f us/msg\n", (tm - t0) / 1e9, cm - c0, (cm - c0) / n * 1e6, (t1 - tm) / 1e9, c1 - cm, (c1 - cm) / n * 1e6 }'
fi
[ -n "${RSS_OUT:-}" ] && cp "$work/rss" "$RSS_OUT"
exit 0
