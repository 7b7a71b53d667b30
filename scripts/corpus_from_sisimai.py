#!/usr/bin/env python3
"""Widen tests/corpus/bounces from sisimai's set-of-emails (issue 14).

Reads three bare git mirrors (never their code: only test tables and mails):
  SET  sisimai/set-of-emails   maildir/bsd/*.eml, maildir/not/*.eml
  RB   sisimai/rb-sisimai      test/public/{lhost,rhost}-*.rb, arf.rb, rfc3464.rb, rfc3834.rb
  P5   sisimai/p5-sisimai      t/*-{lhost,rhost}-*.t, 890-rfc3464.t, 891-rfc3834.t, 899-arf.t

A mail is taken when
  - the rb and p5 tables both list it and agree row by row on status, reply code,
    reason and hardbounce, and
  - for a bounce: the table lists exactly one result, and one recipient can be
    read from the message (see `recipient()`); for a non-bounce (reason
    vacation, feedback or delivered): any number of rows.
Mails already in expected.json are kept as they are. The mail is copied byte for
byte, name unchanged. Nothing here runs sisimai.

usage: scripts/corpus_from_sisimai.py [--write]   (without --write: a dry run)
"""
import email, email.policy, hashlib, json, os, re, subprocess, sys
from collections import Counter

MIRRORS = os.environ.get("MIRRORS", "/work/.mirror")
SET = f"{MIRRORS}/sisimai+set-of-emails/repo"
RB = f"{MIRRORS}/sisimai+rb-sisimai/repo"
P5 = f"{MIRRORS}/sisimai+p5-sisimai/repo"
MMP = f"{MIRRORS}/zbateson+mail-mime-parser/repo"
# Ordinary (non-bounce) mails written by four mail clients, from the test data of
# zbateson/mail-mime-parser (its tests/_data/emails/README.md: "sample messages in
# MIME format from common email Mail User Agents", copied there with permission
# from hunnysoft.com). Five of each client.
MMP_FILES = [f"m{g}{n:03d}.txt" for g in (0, 1, 2, 3) for n in range(1, 7)]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "tests/corpus/bounces")


def git(repo, *args, binary=False):
    out = subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True).stdout
    return out if binary else out.decode()


def head(repo):
    return git(repo, "rev-parse", "HEAD").strip()


def ls(repo, tree):
    return git(repo, "ls-tree", "--name-only", f"HEAD:{tree}").split()


ROW = re.compile(r"\[\s*'([^']*)'\s*,\s*'([^']*)'\s*,\s*'([^']*)'\s*,\s*(true|false|0|1)")
KEY = re.compile(r"^\s*'(\d+)'\s*=>")


def table(text):
    """{'04': [(status, replycode, reason, hardbounce), ...]} from an IsExpected table."""
    out, cur = {}, None
    body = text.split("IsExpected", 1)[-1] if "IsExpected" in text else text.split("isexpected", 1)[-1]
    for line in body.splitlines():
        m = KEY.match(line)
        if m:
            cur = m.group(1)
            out[cur] = []
        elif re.match(r"^\s*[}]", line):
            cur = None
        if cur is None:
            continue
        for r in ROW.findall(line):
            out[cur].append((r[0], r[1], r[2], r[3] in ("true", "1")))
    return out


def rb_tables():
    res = {}
    for name in ls(RB, "test/public"):
        if not re.match(r"(lhost|rhost)-.*\.rb$|(arf|rfc3464|rfc3834)\.rb$", name):
            continue
        text = git(RB, "show", f"HEAD:test/public/{name}")
        if "IsExpected" not in text:
            continue
        engine = re.search(r"^\s*module (\w+)\s*$", text, re.M)
        mods = re.findall(r"^\s*module (\w+(?:::\w+)*)", text, re.M)
        engine = mods[-1].split("::")[-1]
        prefix = "lhost-" if "LhostEngineTest" in text else "rhost-" if "RhostEngineTest" in text else ""
        if engine in ("ARF", "RFC3464", "RFC3834"):
            prefix = ""
        res[(prefix + engine.lower())] = (f"test/public/{name}", table(text))
    return res


def p5_tables():
    res = {}
    for name in ls(P5, "t"):
        if not name.endswith(".t"):
            continue
        text = git(P5, "show", f"HEAD:t/{name}")
        m = re.search(r"my \$enginename\s*=\s*'(\w+)'", text)
        if not m or "isexpected" not in text:
            continue
        engine = m.group(1)
        prefix = "rhost-" if "-rhost-" in name else "lhost-" if "-lhost-" in name else ""
        res[prefix + engine.lower()] = (f"t/{name}", table(text))
    return res


ADDR = re.compile(r"[A-Za-z0-9._%+\-=/'!#$&*?^`{|}~]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")


def parse(raw):
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[1]
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def dsn_blocks(msg):
    """Per-recipient field blocks of every message/delivery-status part."""
    out = []
    for part in msg.walk():
        if part.get_content_type() not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            text = "\n\n".join(p.as_string() for p in payload)
        else:
            text = part.get_payload(decode=True) or b""
            text = text.decode("utf-8", "replace")
        text = text.replace("\r\n", "\n")
        for block in re.split(r"\n\s*\n", text):
            fields = {}
            for line in re.sub(r"\n[ \t]+", " ", block).splitlines():
                if ":" in line:
                    k, v = line.split(":", 1)
                    fields.setdefault(k.strip().lower(), v.strip())
            if "final-recipient" in fields or "original-recipient" in fields:
                out.append(fields)
    return out


def addr_of(field):
    v = field.split(";", 1)[-1].strip().strip("<>").strip()
    m = ADDR.search(v)
    return m.group(0).lower() if m else None


def text_parts(msg):
    """Decoded text of the bounce's own text parts (not of an attached original)."""
    out = []

    def walk(p):
        ct = p.get_content_type()
        if p.is_multipart():
            if ct == "message/rfc822":
                return
            for s in p.get_payload():
                if s.get_content_type() in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
                    continue
                walk(s)
        elif ct.startswith("text/"):
            b = p.get_payload(decode=True) or b""
            out.append(b.decode(p.get_content_charset() or "latin-1", "replace"))

    walk(msg)
    return "\n".join(out)


CUT = re.compile(
    r"^(?:-+ ?(?:Original message|original message|Below this line|This is a copy|The header|Original Message|"
    r"Returned mail|Unsent Message|Headers of)|Return-Path: |Received: |Message-Id: |"
    r"-+\s*(?:original|The following is|Orig)|\s*------ This is a copy)",
    re.M | re.I,
)
NOT_RCPT = re.compile(r"^(mailer-daemon|postmaster|root|daemon|mail|noreply|no-reply|abuse|MAILER_DAEMON|bounce)", re.I)


def header_addrs(msg):
    s = set()
    for h in ("From", "To", "Cc", "Sender", "Return-Path", "Reply-To", "Delivered-To", "Envelope-To"):
        for v in msg.get_all(h) or []:
            s.update(a.lower() for a in ADDR.findall(str(v)))
    return s


def original_from(msg, text):
    s = set()
    for p in msg.walk():
        if p.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            pl = p.get_payload()
            t = pl[0].as_string() if isinstance(pl, list) and pl else str(p.get_payload(decode=True) or b"", "latin-1")
            for m in re.finditer(r"^(?:From|Sender|Return-Path|Reply-To):.*$", t, re.M | re.I):
                s.update(a.lower() for a in ADDR.findall(m.group(0)))
    for m in re.finditer(r"^\s*(?:From|Sender|Return-Path|Reply-To):.*$", text, re.M | re.I):
        s.update(a.lower() for a in ADDR.findall(m.group(0)))
    for m in re.finditer(r"^\s*Message-Id:.*$", text, re.M | re.I):
        s.update(a.lower() for a in ADDR.findall(m.group(0)))
    return s


def recipient(msg):
    """(address, basis, judged) or (None, why, None)."""
    blocks = dsn_blocks(msg)
    failing = [b for b in blocks if b.get("action", "failed").lower().split()[0] in ("failed", "delayed")] or blocks
    finals = {addr_of(b.get("final-recipient", b.get("original-recipient", ""))) for b in failing} - {None}
    if len(finals) == 1:
        return finals.pop(), "dsn-final-recipient", False
    if len(finals) > 1:
        return None, "several DSN recipients", None
    xf = set()
    for v in msg.get_all("X-Failed-Recipients") or []:
        xf.update(a.lower() for a in ADDR.findall(str(v)))
    if len(xf) == 1:
        return xf.pop(), "x-failed-recipients-header", False
    if len(xf) > 1:
        return None, "several X-Failed-Recipients", None
    text = text_parts(msg)
    m = CUT.search(text)
    top = text[: m.start()] if m else text
    excluded = header_addrs(msg) | original_from(msg, text)
    cands = []
    for a in ADDR.findall(top):
        a = a.lower().rstrip(".")
        if a in excluded or NOT_RCPT.match(a) or a in cands:
            continue
        cands.append(a)
    if len(cands) == 1:
        return cands[0], "body-text", True
    return None, f"text names {len(cands)} candidates: {cands[:4]}", None


def blob_sha(raw):
    return hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest()


# rb-sisimai's own tests skip these two (test/public/lhost-code.rb, `skiptonext`).
SKIP = {"lhost-postfix-49.eml", "lhost-postfix-50.eml"}


def family_of(e):
    """sisimai's lhost/rhost module name (or arf, rfc3464, rfc3834), else the entry's format."""
    m = re.match(r"((?:lhost|rhost)-[a-z0-9]+|arf|rfc3464|rfc3834)-\d+\.eml$", e["file"])
    return m.group(1) if m else e.get("family") or e.get("format") or "other"


NONBOUNCE = {"vacation": "auto-reply", "feedback": "other", "delivered": "other"}


def main():
    write = "--write" in sys.argv
    set_c, rb_c, p5_c = head(SET), head(RB), head(P5)
    rb, p5 = rb_tables(), p5_tables()
    exp_path = os.path.join(CORPUS, "expected.json")
    entries = json.load(open(exp_path))
    have = {e["file"] for e in entries}
    added, skipped = [], Counter()
    why = []
    for name in ls(SET, "maildir/bsd"):
        if name in have or name in SKIP or not name.endswith(".eml"):
            continue
        m = re.match(r"(.+)-(\d+)\.eml$", name)
        family, key = m.group(1), m.group(2)
        if family not in rb or family not in p5:
            skipped["no test table in rb and p5"] += 1
            why.append((name, "no test table"))
            continue
        rrows, prows = rb[family][1].get(key), p5[family][1].get(key)
        if not rrows or not prows:
            skipped["not listed by both tests"] += 1
            why.append((name, "not listed by both tests"))
            continue
        if rrows != prows:
            skipped["rb and p5 disagree"] += 1
            why.append((name, f"rb {rrows} p5 {prows}"))
            continue
        reasons = {r[2] for r in rrows}
        raw = git(SET, "show", f"HEAD:maildir/bsd/{name}", binary=True)
        msg = parse(raw)
        src = f"sisimai/set-of-emails@{set_c[:12]}:maildir/bsd/{name}"
        exp_from = [f"sisimai/rb-sisimai@{rb_c[:12]}:{rb[family][0]} (key {key})",
                    f"sisimai/p5-sisimai@{p5_c[:12]}:{p5[family][0]} (key {key})"]
        fam = family.split("-", 1)[1] if family.startswith(("lhost-", "rhost-")) else family
        base = {"file": name}
        if reasons <= set(NONBOUNCE):
            if len(reasons) != 1:
                skipped["mixed non-bounce reasons"] += 1
                continue
            reason = reasons.pop()
            e = dict(base, kind=NONBOUNCE[reason], recipient=None, permanent=None, status=None,
                     reason=reason, judged=False, source=src, expected_from=exp_from,
                     format=fam, family=family,
                     sisimai={"status": rrows[0][0], "replycode": rrows[0][1], "reason": reason,
                              "hardbounce": rrows[0][3], "rows": len(rrows)})
        else:
            if reasons & set(NONBOUNCE):
                skipped["mixed bounce and non-bounce rows"] += 1
                continue
            if len(rrows) != 1:
                # Several results: taken when the DSN names exactly as many
                # failed recipients, all of one permanence.
                blocks = dsn_blocks(msg)
                failing = [b for b in blocks
                           if b.get("action", "failed").lower().split()[0] in ("failed", "delayed")]
                rcpts = []
                for b in failing:
                    a = addr_of(b.get("final-recipient", b.get("original-recipient", "")))
                    if a and a not in rcpts:
                        rcpts.append(a)
                classes = {r[0][:1] for r in rrows}
                if len(rcpts) != len(rrows) or len(classes) != 1:
                    skipped["more than one result"] += 1
                    why.append((name, f"{len(rrows)} results"))
                    continue
                statuses = {r[0] for r in rrows}
                reasons_ = [r[2] for r in rrows]
                e = dict(base, kind="bounce", recipient=None, recipients=rcpts,
                         permanent=rrows[0][0].startswith("5"),
                         status=statuses.pop() if len(statuses) == 1 else None,
                         reason=reasons_[0] if len(set(reasons_)) == 1 else None,
                         judged=False, source=src, expected_from=exp_from, format=fam, family=family,
                         sisimai=[{"status": r[0], "replycode": r[1], "reason": r[2], "hardbounce": r[3]}
                                  for r in rrows],
                         recipient_basis="dsn-final-recipient",
                         note="several results: the DSN's failed recipients, as many as sisimai's rows",
                         dsn=[{"final_recipient": b.get("final-recipient"),
                               "original_recipient": b.get("original-recipient"),
                               "action": b.get("action"), "status": b.get("status")} for b in blocks])
                if e["status"] and re.match(r"\d\.0\.9\d\d$", e["status"]):
                    e["status"] = None
                e["licence"] = "BSD-2-Clause"
                e["sha1_git"] = blob_sha(raw)
                e["line_endings"] = "CRLF" if b"\r\n" in raw else "LF"
                added.append((e, raw))
                continue
            st, code, reason, hard = rrows[0]
            rcpt, basis, judged = recipient(msg)
            if rcpt is None:
                skipped["recipient not readable"] += 1
                why.append((name, basis))
                continue
            e = dict(base, kind="bounce", recipient=rcpt, permanent=st.startswith("5"),
                     status=None if re.match(r"\d\.0\.9\d\d$", st) else st, reason=reason,
                     judged=judged, source=src, expected_from=exp_from, format=fam, family=family,
                     sisimai={"status": st, "replycode": code, "reason": reason, "hardbounce": hard},
                     recipient_basis=basis)
            if judged:
                e["judged_fields"] = ["recipient"]
            blocks = dsn_blocks(msg)
            if blocks:
                e["dsn"] = [{"final_recipient": b.get("final-recipient"),
                             "original_recipient": b.get("original-recipient"),
                             "action": b.get("action"), "status": b.get("status")} for b in blocks]
        e["licence"] = "BSD-2-Clause"
        e["sha1_git"] = blob_sha(raw)
        e["line_endings"] = "CRLF" if b"\r\n" in raw else "LF"
        added.append((e, raw))
    for name in ls(SET, "maildir/not"):
        if name in have:
            continue
        raw = git(SET, "show", f"HEAD:maildir/not/{name}", binary=True)
        e = {"file": name, "kind": "other", "recipient": None, "permanent": None, "status": None,
             "reason": None, "judged": True, "judged_fields": ["kind"],
             "source": f"sisimai/set-of-emails@{set_c[:12]}:maildir/not/{name}",
             "expected_from": [f"sisimai/set-of-emails@{set_c[:12]}:maildir/not/ (the folder of mails that are not bounces)"],
             "format": "not a bounce", "family": "not",
             "licence": "BSD-2-Clause", "sha1_git": blob_sha(raw),
             "line_endings": "CRLF" if b"\r\n" in raw else "LF"}
        added.append((e, raw))
    if os.path.isdir(MMP):
        mmp_c = head(MMP)
        for name in MMP_FILES:
            local = "mailmimeparser-" + name
            if local in have:
                continue
            try:
                raw = git(MMP, "show", f"HEAD:tests/_data/emails/{name}", binary=True)
            except subprocess.CalledProcessError:
                continue  # listed but absent from the snapshot
            msg = parse(raw)
            if msg.get_content_type() == "multipart/report" or dsn_blocks(msg):
                continue
            e = {"file": local, "kind": "other", "recipient": None, "permanent": None, "status": None,
                 "reason": None, "judged": True, "judged_fields": ["kind"],
                 "source": f"zbateson/mail-mime-parser@{mmp_c[:12]}:tests/_data/emails/{name}",
                 "expected_from": [f"zbateson/mail-mime-parser@{mmp_c[:12]}:tests/_data/emails/README.md "
                                   "(sample messages written with common mail clients: ordinary mail)"],
                 "format": "ordinary mail (" + {"0": "Outlook 2000", "1": "Netscape 4.7", "2": "Eudora 4.2",
                                                "3": "Pine"}[name[1]] + ")",
                 "family": "ordinary-mail",
                 "licence": "BSD-2-Clause (repository); samples copied there with permission from hunnysoft.com",
                 "sha1_git": blob_sha(raw), "line_endings": "CRLF" if b"\r\n" in raw else "LF"}
            added.append((e, raw))
    kinds = Counter(e["kind"] for e, _ in added)
    print(f"new: {len(added)} {dict(kinds)}; judged recipients: {sum(1 for e,_ in added if e.get('judged') and e['kind']=='bounce')}")
    print("skipped:", dict(skipped))
    total = Counter(e["kind"] for e in entries) + kinds
    print("total:", dict(total))
    if "-v" in sys.argv:
        for n, w in why:
            print("  skip", n, w)
        for e, _ in added:
            if e.get("judged") and e["kind"] == "bounce":
                print("  judged", e["file"], e["recipient"])
    for e in entries:
        e.setdefault("family", family_of(e))
    if write:
        for e, raw in added:
            with open(os.path.join(CORPUS, e["file"]), "wb") as f:
                f.write(raw)
        entries += [e for e, _ in added]
        with open(exp_path, "w") as f:
            json.dump(entries, f, indent=1, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    main()
