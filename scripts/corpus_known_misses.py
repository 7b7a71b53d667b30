#!/usr/bin/env python3
"""Record the bounce corpus test's verdicts as `known_miss` in expected.json.

    cargo test --test bounce_corpus -- --nocapture 2>&1 | scripts/corpus_known_misses.py

Every `REGRESSION <file> [family]: <what>` line sets that entry's known_miss to
<what>; every `NOW PASSING <file> ...` line removes it. Run it only after
reading the list: a regression is to be fixed, not recorded.
"""
import json, os, re, sys

path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "tests/corpus/bounces/expected.json")
entries = json.load(open(path))
by_file = {e["file"]: e for e in entries}
changed = 0
for line in sys.stdin:
    m = re.match(r"REGRESSION (\S+) \[[^\]]*\]: (.*?)(?:; got: .*)?$", line.rstrip("\n"))
    if m:
        by_file[m.group(1)]["known_miss"] = m.group(2)
        changed += 1
        continue
    m = re.match(r"NOW PASSING (\S+) ", line)
    if m:
        by_file[m.group(1)].pop("known_miss", None)
        changed += 1
with open(path, "w") as f:
    json.dump(entries, f, indent=1, ensure_ascii=False)
    f.write("\n")
print(f"{changed} entries changed; {sum(1 for e in entries if 'known_miss' in e)} known misses")
