#!/usr/bin/env python
"""Write tests/file_seconds.json: each test file's seconds (setup, call and teardown of its
tests summed), read from the report of a run with ``--durations=0``.

conftest.py runs the longest files first, so that the two xdist workers end together
(see its "order of test files"). Regenerate after adding or changing heavy tests:

    python -m pytest -q -n 2 --dist loadfile --durations=0 > /tmp/durations.txt
    python tests/file_seconds.py /tmp/durations.txt

The figures only order the files: a stale or missing entry changes no result.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from seqtasks.versions import cpu_model  # noqa: E402

# "12.34s call     tests/tasks/test_x.py::test_y[z]"
LINE = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s+(setup|call|teardown)\s+(\S+?\.py)(?:::.*)?$")


def file_seconds(lines) -> dict[str, float]:
    """Seconds per test file in the ``--durations`` lines of a pytest report."""
    totals: dict[str, float] = collections.defaultdict(float)
    for line in lines:
        match = LINE.match(line)
        if match:
            totals[match.group(3)] += float(match.group(1))
    return dict(totals)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", help="pytest output of a run with --durations=0")
    parser.add_argument("--output", default=os.path.join(HERE, "file_seconds.json"))
    args = parser.parse_args(argv)
    with open(args.report, encoding="utf-8") as f:
        seconds = file_seconds(f)
    if not seconds:
        print(f"error: {args.report}: no --durations lines found", file=sys.stderr)
        return 2
    record = {
        "measured": datetime.date.today().isoformat(),
        "machine": f"{os.cpu_count()} CPUs, {cpu_model()}",
        "seconds": {k: round(v, 1) for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])},
    }
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    os.replace(tmp, args.output)
    print(f"{len(seconds)} files, {sum(seconds.values()):.0f} s in all -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
