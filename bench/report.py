#!/usr/bin/env python3
"""Turns bench/run's raw.tsv (and criterion's output) into Markdown tables:
medians over runs, ratios to smtp-source with as many sessions as utskick
has connections (the most sessions measured), and the targets of issue 17."""
import re, statistics, sys
from collections import OrderedDict

raw = sys.argv[1]
micro = sys.argv[2] if len(sys.argv) > 2 else None
rows = OrderedDict()
for line in open(raw, encoding="utf-8"):
    parts = line.rstrip("\n").split("\t")
    if len(parts) < 4:
        continue
    section, name, n = parts[0], parts[1], int(parts[2])
    kv = dict(p.split("=", 1) for p in parts[4:])
    rows.setdefault((section, name, n), []).append(kv)

def med(runs, key):
    vals = [float(r[key]) for r in runs if key in r and r[key] not in ("", "nan")]
    return statistics.median(vals) if vals else float("nan")

def micro_times():
    """criterion: name, then `time:   [low mid high]` (same or next line)."""
    if not micro:
        return {}
    try:
        text = open(micro, encoding="utf-8").read()
    except OSError:
        return {}
    found, name = OrderedDict(), None
    units = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    for line in text.splitlines():
        m = re.match(r"^(\S.*?)\s+time:\s+\[(\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\]", line)
        if m:
            name = m.group(1).strip()
        else:
            m2 = re.match(r"^\s+time:\s+\[(\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\]", line)
            if m2 and name:
                m = m2
            elif line and not line.startswith(" ") and "time:" not in line:
                name = line.strip()
                continue
            else:
                continue
        g = m.groups()[-6:]
        found[name] = (float(g[2]) * units[g[3]], f"{g[2]} {g[3]}")
    return found

out = []
targets = []
ob = [(k, v) for k, v in rows.items() if k[0] == "outbound"]
if ob:
    sources = sorted({int(re.search(r"\((\d+) sessions?\)", k[1]).group(1))
                      for k, _ in ob if k[1].startswith("smtp-source")})
    ref_sess = sources[-1] if sources else 0
    refs = {k[2]: k[2] / med(v, "secs") for k, v in ob if k[1] == f"smtp-source ({ref_sess} sessions)"}
    size = [k[2] for k in rows if k[0] == "outbound-size"]
    out.append(f"### Outbound: one message of {size[0] if size else '~10,000'} bytes to each of N recipients, into smtp-sink\n")
    out.append(f"| sender | N | runs | msg/s (median) | ratio to smtp-source ({ref_sess}) | CPU s | CPU µs per message | peak RSS MB |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for (s, name, n), v in ob:
        rate = n / med(v, "secs")
        ratio = rate / refs.get(n, float("nan"))
        us = med(v, "cpu") / n * 1e6
        out.append(f"| {name} | {n:,} | {len(v)} | {rate:,.0f} | {ratio:.2f} | {med(v, 'cpu'):.2f} | {us:.0f} | {med(v, 'rss'):.1f} |")
        if name.startswith("utskick") and "DKIM" not in name:
            targets.append(f"| rate ≥ 0.5 of smtp-source ({ref_sess} sessions), N = {n:,} | {ratio:.2f} | {'yes' if ratio >= 0.5 else '**no**'} |")
            targets.append(f"| daemon CPU ≤ 80 µs per message without DKIM, N = {n:,} | {us:.0f} µs | {'yes' if us <= 80 else '**no**'} |")
            if n >= 100_000:
                rss = med(v, "rss")
                targets.append(f"| peak RSS ≤ 64 MB over a daemon's life sending to {n:,} | {rss:.1f} MB | {'yes' if rss <= 64 else '**no**'} |")
    out.append("")

mt = micro_times()
ib = [(k, v) for k, v in rows.items() if k[0] == "inbound"]
if ib:
    sled = mt.get("sled insert+flush (200 B)")
    out.append("### Inbound: subscribe requests over SMTP, each 250 after the store's flush and fdatasync\n")
    out.append("| sessions | requests per run | runs | durable req/s (median) | daemon CPU s | peak RSS MB "
               "| requests per commit | µs per commit: flush + fdatasyncs |"
               + (" vs sled insert+flush alone |" if sled else ""))
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if sled else ""))
    for (s, name, n), v in ib:
        rate = statistics.median([float(r["sent"]) and int(n) / float(r["secs"]) for r in v])
        extra = f" {rate * sled[0]:.2f} × {1 / sled[0]:,.0f}/s |" if sled else ""
        shared = [int(n) / float(r["commits"]) for r in v if float(r.get("commits", 0)) > 0]
        commit = (f" {statistics.median(shared):.2f} | {med(v, 'flush_us'):.0f} + {med(v, 'fsync_us'):.0f} |"
                  if shared else " | |")
        out.append(f"| {name} | {n:,} | {len(v)} | {rate:,.0f} | {med(v, 'cpu'):.2f} | {med(v, 'rss'):.1f} |{commit}{extra}")
    out.append("")

sc = [(k, v) for k, v in rows.items() if k[0] == "scale"]
if sc:
    imp = {k[2]: med(v, "secs") for k, v in rows.items() if k[0] == "import"}
    out.append("### Scale: one list with N confirmed subscribers (3 daemon starts each, medians)\n")
    out.append("| subscribers | import s | import rows/s | store on disk MB | start-up s | RSS after start MB | peak RSS after `subscribers` MB | `lists` s | `subscribers --format csv` s |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (s, name, n), v in sc:
        rps = n / imp.get(n, float("nan"))
        if n >= 1_000_000:
            targets.append(f"| import ≥ 20,000 rows/s, {n:,} rows | {rps:,.0f} | {'yes' if rps >= 20_000 else '**no**'} |")
        out.append(f"| {n:,} | {imp.get(n, float('nan')):.1f} | {rps:,.0f} | {med(v, 'mb'):.1f} | {med(v, 'start'):.3f} | "
                   f"{med(v, 'rss'):.1f} | {med(v, 'hwm'):.1f} | {med(v, 'lists'):.3f} | {med(v, 'subscribers'):.3f} |")
    out.append("")

pe = [(k, v) for k, v in rows.items() if k[0] == "peers"]
if pe:
    rate = {}
    for (s, name, n), v in pe:
        who, sess = name.split("/")
        # msg/s per run from the messages accepted, then the median over runs
        rate[(who, int(sess))] = (statistics.median(
            [float(r["ok"]) / float(r["secs"]) for r in v if float(r.get("secs", 0)) > 0] or [float("nan")]),
            n, len(v), min(int(float(r.get("ok", 0))) for r in v))
    out.append("### Peers: Postfix smtpd (discard transport, fsync per queue file) against utskick "
               "(250 after fdatasync), small subscribe-like messages\n")
    out.append("| sessions | messages per run | runs | Postfix msg/s (median) | utskick msg/s (median) | ratio utskick/Postfix |")
    out.append("|---:|---:|---:|---:|---:|---:|")
    for sess in sorted({k[1] for k in rate}):
        p, u = rate.get(("postfix", sess)), rate.get(("utskick", sess))
        if not p or not u:
            continue
        out.append(f"| {sess} | {p[1]:,} | {p[2]} | {p[0]:,.0f} | {u[0]:,.0f} | {u[0] / p[0]:.2f} |")
    short = [f"{who} at {sess} sessions: {v[3]}" for (who, sess), v in rate.items() if v[3] < v[1]]
    if short:
        out.append("\nFewer accepted than sent in some run (lowest): " + "; ".join(short))
    out.append("")

if targets:
    out.append("### Targets (issue 17)\n")
    out.append("| target | measured | met? |")
    out.append("|---|---:|---|")
    out.extend(targets)
    out.append("")

if mt:
    out.append("### Micro (criterion, 2 s per bench; median estimate)\n")
    out.append("| bench | time per iteration |")
    out.append("|---|---:|")
    for name, (secs, text) in mt.items():
        out.append(f"| {name} | {text} |")
    out.append("")

print("\n".join(out))
