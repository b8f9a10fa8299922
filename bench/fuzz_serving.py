"""Fuzz `cli.py serve` from its own OpenAPI description with Schemathesis (run by hand).

Starts the server on a free loopback port over MODELS_ROOT (with a version label per
model, so that the /labels/ routes are reached), runs ``schemathesis run`` against
/openapi.json with every check except ``positive_data_acceptance`` (the predict body
schema is the same for every model, so a schema-valid body can still be wrong for a
given signature, which the server answers with 400 as designed), and writes a summary
JSON with the failures Schemathesis reported. Needs ``pip install schemathesis``
(not a project dependency).

    python bench/fuzz_serving.py /tmp/serve_models --max-time 300
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from serving import start_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="folder of <name>/<version>/ exports")
    parser.add_argument("--max-time", type=int, default=300, help="seconds for Schemathesis")
    parser.add_argument("--max-examples", type=int, default=50, help="examples per operation")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", default="bench/results/fuzz_serving.json")
    args = parser.parse_args()

    labels = [f"{name}:stable=1" for name in sorted(os.listdir(args.root)) if name.isidentifier()]
    server, base = start_server(
        args.root, extra=[a for label in labels for a in ("--label", label)]
    )
    started = time.time()
    try:
        command = [
            "schemathesis", "run", f"{base}/openapi.json",
            "--checks", "all", "--exclude-checks", "positive_data_acceptance",
            "--max-examples", str(args.max_examples), "--max-time", str(args.max_time),
            "--seed", str(args.seed), "--workers", "1", "--no-shrink",
        ]  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True)
        alive = server.poll() is None
    finally:
        server.terminate()
        server.wait(30)
    text = run.stdout + run.stderr
    print(text[-6000:])
    failures = sorted(set(re.findall(r"- (ST\d+ [^\n]+)", text)))
    cases = re.search(r"(\d+) generated, (\d+) found", text) or re.search(r"(\d+) generated", text)
    result = {
        "command": " ".join(["python", *sys.argv]),
        "schemathesis": " ".join(command[:2] + command[3:]),
        "seconds": round(time.time() - started, 1),
        "exit_status": run.returncode,
        "test_cases": int(cases.group(1)) if cases else None,
        "failures": failures,
        "server_alive_after": alive,
        "summary": text[text.rfind("SUMMARY") :][-2500:] if "SUMMARY" in text else text[-2500:],
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(json.dumps({k: v for k, v in result.items() if k != "summary"}, indent=2))


if __name__ == "__main__":
    main()
