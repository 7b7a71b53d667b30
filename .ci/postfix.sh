#!/usr/bin/env bash
# CI: the Postfix path (issue 6, item 7). Debian's Postfix, run as a private
# instance from a scratch directory on loopback ports, takes a subscribe mail
# over SMTP and hands it to utskick over LMTP (transport_maps); utskick's
# outbound relay is Postfix's smtp-sink, where the confirmation must arrive.
#
#   client --SMTP--> postfix smtpd :PORT_SMTP --LMTP--> utskick :PORT_LMTP
#   utskick --SMTP--> smtp-sink :PORT_SINK (one file per message)
#
# Runs as root on a fresh Debian 12 (installs postfix, and python3 for the
# SMTP client, when missing). Never touches /etc/postfix. Prints one summary
# line `postfix-path: N passed, M failed` and exits non-zero on failure.
# POSTFIX_CI_KEEP=1 keeps the scratch directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
domain=lista.example.se
list=lokal-finansiering
subscriber=asa@example.org
t0=$(date +%s)

summary_done=0
summary() { # $1 passed, $2 failed
    summary_done=1
    echo "postfix-path: $1 passed, $2 failed"
}
fail() {
    echo "FAIL: $*" >&2
    dump_diagnostics
    summary 0 1
    exit 1
}
dump_diagnostics() {
    [ -n "${work:-}" ] || return 0
    echo "---- postfix log ($work/postfix.log) ----" >&2
    cat "$work/postfix.log" >&2 2>/dev/null || echo "(none)" >&2
    echo "---- postfix start output ----" >&2
    cat "$work/postfix-start.out" >&2 2>/dev/null || echo "(none)" >&2
    echo "---- utskick stdout ----" >&2
    cat "$work/utskick.out" >&2 2>/dev/null || echo "(none)" >&2
    echo "---- utskick stderr ----" >&2
    cat "$work/utskick.err" >&2 2>/dev/null || echo "(none)" >&2
    echo "---- smtp-sink stderr ----" >&2
    cat "$work/sink.err" >&2 2>/dev/null || echo "(none)" >&2
    echo "---- sink dir ($work/sink) ----" >&2
    ls -la "$work/sink" >&2 2>/dev/null || echo "(empty)" >&2
    for f in "$work"/sink/*; do
        [ -f "$f" ] || continue
        echo "---- $f (first 40 lines) ----" >&2
        head -n 40 "$f" >&2
    done
}

# ---- 1. what we need ---------------------------------------------------------
[ "$(id -u)" -eq 0 ] || { echo "postfix-path: run as root (postfix start needs it)" >&2; exit 1; }
need=()
{ [ -x /usr/sbin/postfix ] && [ -x /usr/sbin/smtp-sink ]; } || need+=(postfix)
command -v python3 > /dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    env DEBIAN_FRONTEND=noninteractive apt-get update
    env DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
    # The package may have started the system instance on port 25; we run our own.
    if [[ " ${need[*]} " == *" postfix "* ]]; then
        postfix stop > /dev/null 2>&1 || true
        service postfix stop > /dev/null 2>&1 || true
    fi
fi

# ---- 2. utskick ------------------------------------------------------------
target=${CARGO_TARGET_DIR:-$root/target}
bin=${UTSKICK_BIN:-$target/debug/utskick}
if [ ! -x "$bin" ]; then
    echo "building utskick (debug)"
    cargo build --locked --quiet
    bin=$target/debug/utskick
fi
echo "utskick: $bin"

# ---- 3. scratch directory and processes ------------------------------------
work=$(mktemp -d /tmp/utskick-postfix.XXXXXX)
chmod 755 "$work" # the postfix user reaches its queue and data dirs below it
sink_pid=""
utskick_pid=""
postfix_started=0
cleanup() {
    rc=$?
    set +e
    if [ "$postfix_started" = 1 ]; then
        postfix -c "$work/postfix" stop > /dev/null 2>&1
        # master exits after its children; wait so the queue dir can go
        for _ in $(seq 50); do
            [ -f "$work/queue/pid/master.pid" ] || break
            pid=$(tr -dc 0-9 < "$work/queue/pid/master.pid")
            { [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null; } || break
            sleep 0.1
        done
    fi
    if [ -n "$utskick_pid" ]; then
        kill "$utskick_pid" 2> /dev/null
        wait "$utskick_pid" 2> /dev/null
    fi
    if [ -n "$sink_pid" ]; then
        kill "$sink_pid" 2> /dev/null
        wait "$sink_pid" 2> /dev/null
    fi
    if [ "$rc" -ne 0 ] && [ "$summary_done" = 0 ]; then
        dump_diagnostics
        echo "postfix-path: 0 passed, 1 failed"
    fi
    if [ "${POSTFIX_CI_KEEP:-0}" = 1 ]; then
        echo "kept: $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }
free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 12000)) # below Linux's ephemeral range
        port_busy "$p" || { echo "$p"; return 0; }
    done
    return 1
}
wait_port() { # $1 port, $2 pid: until something listens there, or the pid dies
    for _ in $(seq 100); do
        port_busy "$1" && return 0
        kill -0 "$2" 2> /dev/null || return 1
        sleep 0.1
    done
    return 1
}

# The sink: every message it receives becomes one file in $work/sink/.
mkdir -p "$work/sink"
for attempt in 1 2 3; do
    sink_port=$(free_port) || fail "no free port"
    /usr/sbin/smtp-sink -u root -d "$work/sink/%M." "127.0.0.1:$sink_port" 100 \
        > "$work/sink.out" 2> "$work/sink.err" &
    sink_pid=$!
    wait_port "$sink_port" "$sink_pid" && break
    kill "$sink_pid" 2> /dev/null || true
    wait "$sink_pid" 2> /dev/null || true
    sink_pid=""
    [ "$attempt" = 3 ] && fail "smtp-sink did not start"
done
echo "smtp-sink on 127.0.0.1:$sink_port"

# utskick, LMTP on a port of its own choosing (read back from its ready line).
cat > "$work/utskick.toml" << TOML
domain = "$domain"
base_url = "https://$domain"
data_dir = "$work/utskick-data"
lists_dir = "$root/lists"
templates_dir = "$root/templates"

[inbound]
listen = "127.0.0.1:0"
protocol = "lmtp"

[http]
listen = "127.0.0.1:0"

[metrics]
listen = "127.0.0.1:0"

[outbound]
transport = "smtp"
relay = "127.0.0.1:$sink_port"
TOML
RUST_LOG=${RUST_LOG:-info} "$bin" --config "$work/utskick.toml" serve \
    > "$work/utskick.out" 2> "$work/utskick.err" &
utskick_pid=$!
lmtp_port=""
for _ in $(seq 300); do
    line=$(grep -m1 '^utskick ready' "$work/utskick.out" 2> /dev/null || true)
    if [ -n "$line" ]; then
        lmtp_port=$(sed -E 's/^utskick ready: lmtp on 127\.0\.0\.1:([0-9]+),.*/\1/' <<< "$line")
        break
    fi
    kill -0 "$utskick_pid" 2> /dev/null || fail "utskick exited before it was ready"
    sleep 0.1
done
[[ "$lmtp_port" =~ ^[0-9]+$ ]] || fail "no 'utskick ready: lmtp on 127.0.0.1:PORT' line within 30 s: '${line:-}'"
echo "$line"

# The private Postfix instance. Nothing in /etc/postfix is read or changed
# (master.cf is copied from it, or from the package's prototype).
smtp_port=$(free_port) || fail "no free port"
pf=$work/postfix
mkdir -p "$pf" "$work/queue" "$work/pfdata"
chown postfix "$work/pfdata"
master_src=/etc/postfix/master.cf
[ -f "$master_src" ] || master_src=/usr/share/postfix/master.cf.dist
cp "$master_src" "$pf/master.cf"
cat > "$pf/main.cf" << CF
# utskick .ci/postfix.sh: a private instance on loopback
compatibility_level = 3.6
queue_directory = $work/queue
data_directory = $work/pfdata
myhostname = mx.postfix-ci.test
mydomain = postfix-ci.test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
# What an administrator sets: the whole list domain goes to utskick over LMTP.
relay_domains = $domain
transport_maps = inline:{ $domain=lmtp:inet:127.0.0.1:$lmtp_port }
recipient_delimiter = +
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject
# Log to a file through postlogd (no syslog in CI).
maillog_file = $work/postfix.log
maillog_file_prefixes = $work
biff = no
CF
# smtpd on our port instead of 25; no chroot (the scratch queue has no /etc copy).
sed -i -E "s/^smtp([[:space:]]+inet[[:space:]])/127.0.0.1:$smtp_port\1/" "$pf/master.cf"
grep -q "^127.0.0.1:$smtp_port[[:space:]]" "$pf/master.cf" || fail "no 'smtp inet' line in $master_src"
grep -q '^postlog[[:space:]]' "$pf/master.cf" ||
    echo 'postlog   unix-dgram n  -       n       -       1       postlogd' >> "$pf/master.cf"
postconf -c "$pf" -F '*/*/chroot = n'
echo "postfix $(postconf -c "$pf" -h mail_version), instance in $pf"
postfix -c "$pf" check > "$work/postfix-start.out" 2>&1 || fail "postfix check"
postfix_started=1
postfix -c "$pf" start >> "$work/postfix-start.out" 2>&1 || fail "postfix start"
master_pid=$(tr -dc 0-9 < "$work/queue/pid/master.pid" 2> /dev/null || true)
[ -n "$master_pid" ] || fail "postfix master wrote no pid file"
wait_port "$smtp_port" "$master_pid" || fail "postfix smtpd not listening on 127.0.0.1:$smtp_port"
echo "postfix on 127.0.0.1:$smtp_port, transport $domain -> lmtp:inet:127.0.0.1:$lmtp_port"

# ---- 4. the subscribe mail, into Postfix over SMTP -----------------------
python3 - "$smtp_port" "$subscriber" "$list-subscribe@$domain" << 'PY' || fail "SMTP submission to Postfix"
import smtplib, sys
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
port, sender, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
m = EmailMessage()
m["From"] = "Åsa Öberg <%s>" % sender
m["To"] = rcpt
m["Subject"] = "prenumerera"
m["Date"] = formatdate(localtime=True)
m["Message-ID"] = make_msgid(domain="example.org")
m.set_content("Hej, jag vill gärna vara med i nätverket.\n")
with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
    refused = s.send_message(m, from_addr=sender, to_addrs=[rcpt])
    assert not refused, refused
print("sent %s -> %s via 127.0.0.1:%d" % (sender, rcpt, port))
PY

# ---- 5. the confirmation at the sink, and the pending subscriber -------------
found=""
delivered=""
for _ in $(seq 300); do # 60 s
    [ -n "$delivered" ] ||
        delivered=$(grep -E " postfix/lmtp\[.*to=<$list-subscribe@$domain>.*relay=127\.0\.0\.1\[127\.0\.0\.1\]:$lmtp_port.*status=sent" \
            "$work/postfix.log" 2> /dev/null | head -n1 || true)
    if [ -z "$found" ]; then
        for f in "$work"/sink/*; do
            [ -f "$f" ] || continue
            if grep -qiE "^X-Rcpt-Args: <$subscriber>" "$f" &&
                grep -qE "^Reply-To: .*$list-confirm\+|$domain/confirm/" "$f"; then
                found=$f
                break
            fi
        done
    fi
    [ -n "$found" ] && [ -n "$delivered" ] && break
    sleep 0.2
done
[ -n "$delivered" ] || fail "no 'status=sent' LMTP delivery to utskick in the postfix log within 60 s"
echo "postfix: ${delivered#*]: }"
[ -n "$found" ] || fail "no confirmation for $subscriber at the smtp-sink within 60 s"
echo "sink: confirmation in $(basename "$found"): $(grep -m1 -E '^Subject:' "$found" || true)"
grep -m1 -E '^Reply-To:' "$found" | sed 's/+[A-Za-z0-9]*@/+TOKEN@/' || true

json=$("$bin" --config "$work/utskick.toml" subscribers "$list" --format json) ||
    fail "utskick subscribers $list --format json"
check_pending='
import json, sys
rows = json.load(sys.stdin)
if isinstance(rows, dict):
    rows = rows.get("subscribers", [])
me = [r for r in rows if str(r.get("email", "")).lower() == sys.argv[1]]
assert len(me) == 1 and me[0].get("status") == "pending", me
print("utskick: %s %s" % (me[0]["email"], me[0]["status"]))
'
python3 -c "$check_pending" "$subscriber" <<< "$json" || fail "$subscriber is not pending: $json"
echo "PASS: Postfix delivered the subscribe mail to utskick over LMTP, the confirmation reached smtp-sink, $subscriber is pending ($(($(date +%s) - t0)) s)"
summary 1 0
