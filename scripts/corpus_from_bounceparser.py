#!/usr/bin/env python3
"""Add the challenge/response mails of rjbs/Mail-DeliveryStatus-BounceParser
that its t/non-bounce.t expects to be no bounce (is_bounce => 0) and that
tests/corpus/bounces does not have yet. Copies them byte for byte, prefixed
`bounceparser-`, `.msg` → `.eml`. Runs none of that repository's code.

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
