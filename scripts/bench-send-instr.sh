#!/usr/bin/env bash
# Instructions a message, not seconds: one campaign send to N subscribers
# (scripts/bench-send-mem.sh) with the daemon under valgrind's callgrind,
# which counts user-space instructions the same from run to run whatever
# else the machine does. This VM's CPU time moves by 15-30% from one
# half hour to the next (BENCHMARKS.md); an A/B of two builds by this
# count shows a change of a few percent that timing cannot. The kernel's
# part (the writes, the wake-ups) is not counted, so it does not replace
# bench/run's CPU figure; it tells where our own code's cost went.
# Usage: scripts/bench-send-instr.sh BIN [N]  (N default 10000; about
# 30 s at 10k). Needs valgrind, and smtp-sink (apt-get install postfix).
# Prints instructions a message for the whole daemon (start-up included,
# so compare like with like), the fixing of the recipients, and the
# lanes (making and sending the copies); CG_OUT=FILE keeps the profile
# for callgrind_annotate.
set -euo pipefail
bin=$(realpath "$1")
n=${2:-10000}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${CG_OUT:-$(mktemp /tmp/utskick-callgrind.XXXXXX)}
wrap=$(mktemp /tmp/utskick-vg.XXXXXX)
trap 'rm -f "$wrap"; [ -n "${CG_OUT:-}" ] || rm -f "$out"' EXIT
cat > "$wrap" <<EOF
#!/usr/bin/env bash
for a in "\$@"; do
  if [ "\$a" = serve ]; then
    exec valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "\$@" 2>/dev/null
  fi
done
exec "$bin" "\$@"
EOF
chmod +x "$wrap"
BIN="$wrap" "$root/scripts/bench-send-mem.sh" "$n" 8 > /dev/null
# The daemon writes the profile as it exits; wait for it.
for _ in $(seq 1 100); do
  grep -q '^totals:' "$out" 2>/dev/null && break
  sleep 0.2
done
callgrind_annotate --inclusive=yes "$out" 2>/dev/null | awk -v n="$n" '
  function count(s) { gsub(",", "", s); return s + 0 }
  /PROGRAM TOTALS/ { total = count($1) }
  /utskick::campaign::recipients::fix / { fix = count($1) }
  /utskick::campaign::send::send_round::\{\{closure\}\}::\{\{closure\}\} / && !lanes { lanes = count($1) }
  END {
    printf "N=%d: instructions a message: whole daemon %.0f, fixing the recipients %.0f, the lanes %.0f\n", n, total / n, fix / n, lanes / n
  }'
