#!/usr/bin/env bash
# Campaign send rate through a real SMTP relay on loopback, against the
# machine's reference: Postfix's smtp-source into the same smtp-sink, with
# the same number of connections, measured in the same run.
# Needs: apt-get install postfix (for smtp-sink and smtp-source).
# Usage: scripts/bench-send.sh [RECIPIENTS] [CONNECTIONS]
set -euo pipefail
n=${1:-2000}
conns=${2:-4}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin=$root/target/release/utskick
sink_port=$((20000 + RANDOM % 10000))
/usr/sbin/smtp-sink -u "$(id -un)" 127.0.0.1:$sink_port 256 &
sleep 0.3

cat > "$work/u.toml" <<TOML
data_dir = "$work/data"
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
relay = "127.0.0.1:$sink_port"
connections = $conns
TOML
RUST_LOG=warn "$bin" --config "$work/u.toml" serve > "$work/out" 2> "$work/err" &
sleep 0.5
echo "adding $n subscribers..."
for i in $(seq 1 "$n"); do
  "$bin" --config "$work/u.toml" add lokal-finansiering "p$i@example.org" --name "Person $i" --consent bench > /dev/null
done
# Let the welcome mails drain before timing the campaign.
sleep 2
printf -- '---\nsubject: Bench\n---\nHej {{name}}!\n\nEtt stycke text.\n' > "$work/b.md"
start=$(date +%s.%N)
id=$("$bin" --config "$work/u.toml" queue lokal-finansiering "$work/b.md" | awk '{print $2}')
until "$bin" --config "$work/u.toml" status "$id" --json | grep -q '"status":"done"'; do sleep 0.1; done
end=$(date +%s.%N)
ours=$(echo "$n / ($end - $start)" | bc -l)

size=$(stat -c %s "$work/b.md")
start=$(date +%s.%N)
/usr/sbin/smtp-source -s "$conns" -m "$n" -l 4000 -f bench@example.org -t sink@example.org 127.0.0.1:$sink_port
end=$(date +%s.%N)
ref=$(echo "$n / ($end - $start)" | bc -l)
printf 'utskick campaign: %d messages in %d connections: %.0f msg/s\n' "$n" "$conns" "$ours"
printf 'smtp-source (reference, 4 kB messages): %.0f msg/s\n' "$ref"
printf 'ratio utskick / smtp-source: %.2f\n' "$(echo "$ours / $ref" | bc -l)"
