#!/usr/bin/env python3
"""Add mails of rjbs/Mail-DeliveryStatus-BounceParser that tests/corpus/bounces
does not have yet: the challenge/response mails its t/non-bounce.t expects to be
no bounce (is_bounce => 0), and the bounces its t/various-unknown.t and
t/aol-senderblock.t expect with `addresses`. Copies them byte for byte,
prefixed `bounceparser-`, `.msg` → `.eml`. Runs none of that repository's code.

`permanent` of a bounce: the class of the message's own DSN `Status:` field
when it has exactly one (`permanent_basis: dsn-status`), else null.

usage: scripts/corpus_from_bounceparser.py [--write]
"""
import hashlib, json, os, subprocess, sys

REPO = os.path.join(os.environ.get("MIRRORS", "/work/.mirror"), "rjbs+Mail-DeliveryStatus-BounceParser/repo")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "tests/corpus/bounces")
FILES = {
    "boxbe-cr.msg": "Boxbe challenge/response wrapped in a DSN (Status 4.7.0, 'Sender not pre-approved')",
    "boxbe-cr2.msg": "Boxbe challenge/response wrapped in a DSN (Status 4.7.0, 'Sender not pre-approved')",
    "whitelist.msg": "Postfix DSN of a server that wants the sending server confirmed ('550 Your server requires confirmation ... Whitelist')",
}

# t/various-unknown.t: every file listed expects addresses => ['recipient@example.net'],
# std_reason user_unknown (long-smtp.msg: unknown).
UNKNOWN = [
    "cox-via-sendmail.unknown.msg", "generic-postfix-via-sendmail.unknown.msg",
    "msn-via-sendmail.unknown.msg", "yahoo-user-unknown.msg", "cam-unknown.msg", "rcpt-dne.msg",
    "mailbox-unknown.msg", "deactivated-mailbox.msg", "user-unknown-dne.msg", "badrcptto.msg",
    "nomailbox.msg", "doesnotexist.msg", "doesnotexist2.msg", "user-unknown-not-active.msg",
    "user-unknown-not.msg", "user-unknown-bad.msg",
]
BOUNCES = {name: ("recipient@example.net", "user_unknown", "t/various-unknown.t") for name in UNKNOWN}
BOUNCES["aol-senderblock.msg"] = ("mykewlaolacct@aol.com", None, "t/aol-senderblock.t")


def dsn_statuses(raw):
    import email, email.policy, re
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    out = []
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            pl = part.get_payload()
            text = "\n".join(p.as_string() for p in pl) if isinstance(pl, list) else str(pl)
            out += re.findall(r"^Status:\s*([245]\.\d+\.\d+)", text, re.M | re.I)
    return out


def main():
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    path = os.path.join(CORPUS, "expected.json")
    entries = json.load(open(path))
    have = {e["file"] for e in entries}
    added = []
    for name, fmt in FILES.items():
        local = "bounceparser-" + name[: -len(".msg")] + ".eml"
        if local in have:
            continue
        raw = subprocess.run(["git", "-C", REPO, "show", f"HEAD:t/corpus/{name}"], capture_output=True, check=True).stdout
        added.append(({
            "file": local, "kind": "other", "recipient": None, "permanent": None, "status": None,
            "reason": "challenge-response", "judged": False,
            "source": f"rjbs/Mail-DeliveryStatus-BounceParser@{commit[:12]}:t/corpus/{name}",
            "expected_from": [f"rjbs/Mail-DeliveryStatus-BounceParser@{commit[:12]}:t/non-bounce.t: is_bounce => 0"],
            "format": fmt, "family": "challenge-response",
            "licence": "Perl-5 terms (Artistic-1.0 or GPL-1.0-or-later)",
            "sha1_git": hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest(),
            "line_endings": "CRLF" if b"\r\n" in raw else "LF",
        }, raw))
    for name, (rcpt, reason, test) in BOUNCES.items():
        local = "bounceparser-" + name[: -len(".msg")] + ".eml"
        if local in have:
            continue
        raw = subprocess.run(["git", "-C", REPO, "show", f"HEAD:t/corpus/{name}"], capture_output=True, check=True).stdout
        st = dsn_statuses(raw)
        e = {
            "file": local, "kind": "bounce", "recipient": rcpt,
            "permanent": st[0].startswith("5") if len(st) == 1 else None,
            "status": st[0] if len(st) == 1 else None, "reason": reason, "judged": False,
            "source": f"rjbs/Mail-DeliveryStatus-BounceParser@{commit[:12]}:t/corpus/{name}",
            "expected_from": [f"rjbs/Mail-DeliveryStatus-BounceParser@{commit[:12]}:{test}: addresses => ['{rcpt}']"],
            "format": "BounceParser sample (" + name[: -len(".msg")] + ")", "family": "bounceparser",
            "recipient_basis": "test",
            "licence": "Perl-5 terms (Artistic-1.0 or GPL-1.0-or-later)",
            "sha1_git": hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest(),
            "line_endings": "CRLF" if b"\r\n" in raw else "LF",
        }
        if len(st) == 1:
            e["permanent_basis"] = "dsn-status"
        added.append((e, raw))
    print(f"new: {len(added)}")
    if "--write" in sys.argv:
        for e, raw in added:
            open(os.path.join(CORPUS, e["file"]), "wb").write(raw)
        entries += [e for e, _ in added]
        with open(path, "w") as f:
            json.dump(entries, f, indent=1, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    main()
