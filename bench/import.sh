#!/usr/bin/env bash
# Import at scale (issue 17): an offline import (no daemon) of N rows of
# bench/run's CSV into a fresh store, timed; above 100,000 rows the last
# 100,000 go in a second run, timed on their own (rows/s as the store is
# full); then the whole file again (it must add nothing, exit 0), the
# tallies (`lists`) and the store's size.
#
#   bench/import.sh target/release/utskick 1000000 after
#
# CPU seconds (user, sys) of each timed run come from /usr/bin/time: on a
# shared machine they say more than the wall time.
# KEEP=1 keeps the temp dir. Nothing is asserted about timing.
set -euo pipefail
bin=$1; n=$2; label=${3:-import}
root=$(cd "$(dirname "$0")/.." && pwd)
w=$(mktemp -d /var/tmp/imp-bench.XXXXXX)
cat > "$w/u.toml" <<TOML
domain = "lista.example.se"
base_url = "https://lista.example.se"
data_dir = "$w/data"
lists_dir = "$root/lists"
templates_dir = "$root/templates"
[inbound]
listen = "127.0.0.1:0"
[http]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[outbound]
transport = "smtp"
relay = "127.0.0.1:9"
connections = 4
TOML
awk -v n="$n" 'BEGIN { print "email,name,organisation,region";
    split("Jämtland,Västerbotten,Dalarna,Gotland,Skåne", r, ",");
    for (i = 1; i <= n; i++) printf "p%d@example.org,Person %d,Förening %d,%s\n", i, i, i % 97, r[i % 5 + 1] }' > "$w/subs.csv"
# the last 100k: import the first n-100k, then the last 100k
if [ "$n" -gt 100000 ]; then
  head -1 "$w/subs.csv" > "$w/a.csv"; sed -n "2,$((n-100000+1))p" "$w/subs.csv" >> "$w/a.csv"
  head -1 "$w/subs.csv" > "$w/b.csv"; sed -n "$((n-100000+2)),\$p" "$w/subs.csv" >> "$w/b.csv"
  t0=$(date +%s%N)
  /usr/bin/time -f "first cpu user %U sys %S wall %e maxrss %MKB" -o "$w/timea" "$bin" --config "$w/u.toml" import lokal-finansiering "$w/a.csv" --consent bench > "$w/a.log" 2>&1; cat "$w/timea"
  t1=$(date +%s%N)
  /usr/bin/time -f "last100k cpu user %U sys %S wall %e maxrss %MKB" -o "$w/timeb" "$bin" --config "$w/u.toml" import lokal-finansiering "$w/b.csv" --consent bench > "$w/b.log" 2>&1; cat "$w/timeb"
  t2=$(date +%s%N)
  awk -v a=$t0 -v b=$t1 -v c=$t2 -v n=$n -v l="$label" 'BEGIN{s1=(b-a)/1e9; s2=(c-b)/1e9; printf "%s N=%d: first %d in %.1f s (%.0f/s); last 100k in %.1f s (%.0f/s); total %.1f s (%.0f/s)\n", l, n, n-100000, s1, (n-100000)/s1, s2, 100000/s2, s1+s2, n/(s1+s2)}'
  tail -1 "$w/b.log"
else
  t0=$(date +%s%N)
  /usr/bin/time -f "cpu user %U sys %S wall %e maxrss %MKB" -o "$w/time" "$bin" --config "$w/u.toml" import lokal-finansiering "$w/subs.csv" --consent bench > "$w/a.log" 2>&1; cat "$w/time"
  t1=$(date +%s%N)
  awk -v a=$t0 -v b=$t1 -v n=$n -v l="$label" 'BEGIN{s=(b-a)/1e9; printf "%s N=%d: %.1f s (%.0f/s)\n", l, n, s, n/s}'
  tail -1 "$w/a.log"
fi
t0=$(date +%s%N)
set +e
"$bin" --config "$w/u.toml" import lokal-finansiering "$w/subs.csv" --consent bench > "$w/r.log" 2>&1; rc=$?
t1=$(date +%s%N)
awk -v a=$t0 -v b=$t1 -v rc=$rc -v l="$label" 'BEGIN{printf "%s re-run: %.1f s, exit %d\n", l, (b-a)/1e9, rc}'
tail -2 "$w/r.log"
"$bin" --config "$w/u.toml" lists 2>&1 | head -5
du -sh "$w/data"
[ -n "${KEEP:-}" ] && echo "kept $w" || rm -rf "$w"
