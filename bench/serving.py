"""Latency and throughput of `cli.py serve` against calling the SavedModel in-process.

For each model (default: sentiment and translation under MODELS_ROOT), at each
concurrency (default 1, 8, 64), on loopback only:

- server: that many client threads, each with one keep-alive HTTP connection, send
  ``{"instances": [<one text>]}`` to ``/v1/models/<name>:predict`` (texts from SST-2
  dev, or Multi30k test for a model named ``translation*``, in turn) until
  ``--requests`` requests or ``--seconds`` seconds; every answer is checked (status
  200, one prediction).
- in-process: the same number of threads call the same SavedModel's
  ``serving_default`` with the same one-text batches in this process.

Reported: requests per second, p50/p99 latency, and server / in-process ratios.
``--soak-seconds 300`` then runs concurrency 64 against the first model for that long
and counts statuses, 5xx and lost requests (no answer). Client and server share the
machine's cores; the figures include the client's own cost.

    python bench/serving.py /tmp/serve_models --soak-seconds 300
"""

from __future__ import annotations

import argparse
import collections
import gzip
import http.client
import itertools
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.path.dirname(REPO), "shared", "data")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: str, extra=(), log_path: str = "/tmp/seqtasks-bench-serve.log"):
    """``python cli.py serve ROOT`` on a free loopback port; returns (process, base URL)."""
    port = free_port()
    command = [sys.executable, "cli.py", "serve", root, "--port", str(port), "--poll-seconds", "0"]
    log = open(log_path, "w")
    process = subprocess.Popen([*command, *extra], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 600
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/openapi.json")
            if connection.getresponse().status == 200:
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            pass
        if process.poll() is not None or time.time() > deadline:
            raise SystemExit(f"the server did not start; see {log_path}")
        time.sleep(0.5)


def texts_for(model: str, n: int = 500) -> list[str]:
    """Multi30k test sources for a model named ``translation*``, else SST-2 dev texts."""
    if model.startswith("translation"):
        with gzip.open(os.path.join(DATA, "multi30k", "test_2016_flickr.en.gz"), "rt") as f:
            return [line.strip() for line in itertools.islice(f, n)]
    with open(os.path.join(DATA, "sst2", "dev.tsv"), encoding="utf-8") as f:
        next(f)
        return [line.split("\t")[0] for line in itertools.islice(f, n)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def drive(call, concurrency: int, max_requests: int, seconds: float) -> dict:
    """Run ``call(i)`` (returns an outcome string, "ok" if fine) from ``concurrency`` threads."""
    counter = itertools.count()
    latencies: list[float] = []
    outcomes: collections.Counter = collections.Counter()
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker():
        state: dict = {}
        while True:
            i = next(counter)
            if i >= max_requests or time.perf_counter() > deadline:
                return
            start = time.perf_counter()
            outcome = call(i, state)
            elapsed = time.perf_counter() - start
            with lock:
                outcomes[outcome] += 1
                if outcome == "ok":
                    latencies.append(elapsed)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    done = sum(outcomes.values())
    return {
        "concurrency": concurrency,
        "requests": done,
        "ok": outcomes["ok"],
        "outcomes": dict(outcomes),
        "seconds": round(wall, 2),
        "requests_per_second": round(outcomes["ok"] / wall, 1),
        "p50_ms": round(1000 * percentile(latencies, 50), 2) if latencies else None,
        "p99_ms": round(1000 * percentile(latencies, 99), 2) if latencies else None,
    }


def http_call(base: str, model: str, texts: list[str]):
    host, port = base.removeprefix("http://").split(":")
    path = f"/v1/models/{model}:predict"
    bodies = [json.dumps({"instances": [t]}).encode() for t in texts]
    headers = {"Content-Type": "application/json"}

    def call(i: int, state: dict) -> str:
        connection = state.get("connection")
        if connection is None:
            connection = state["connection"] = http.client.HTTPConnection(host, int(port), 120)
        try:
            connection.request("POST", path, bodies[i % len(bodies)], headers)
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as e:
            connection.close()
            state.pop("connection")
            return f"lost: {type(e).__name__}"
        if response.status != 200:
            return f"status {response.status}"
        if len(json.loads(body).get("predictions", [])) != 1:
            return "wrong answer"
        return "ok"

    return call


def in_process_call(version_dir: str, texts: list[str]):
    import tensorflow as tf

    if os.path.basename(os.path.dirname(version_dir)).startswith("translation"):
        import tensorflow_text  # noqa: F401  (WordPiece ops)

    loaded = tf.saved_model.load(version_dir)
    fn = loaded.signatures["serving_default"]

    def call(i: int, state: dict) -> str:
        outputs = fn(text=tf.constant([texts[i % len(texts)]]))
        state["loaded"] = loaded  # keep the trackable (tables, variables) alive
        return "ok" if all(v.shape[0] == 1 for v in outputs.values()) else "wrong answer"

    return call


def newest(root: str, model: str) -> str:
    versions = [int(v) for v in os.listdir(os.path.join(root, model)) if v.isdigit()]
    return os.path.join(root, model, str(max(versions)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="folder of <name>/<version>/ exports")
    parser.add_argument("--models", nargs="+", default=["sentiment", "translation"])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--requests", type=int, default=2000, help="most requests per run")
    parser.add_argument("--seconds", type=float, default=30, help="most seconds per run")
    parser.add_argument("--soak-seconds", type=float, default=0, help="c=64 soak (0: none)")
    parser.add_argument("--server-args", default="", help="extra `serve` options, quoted")
    parser.add_argument("--output", default="bench/results/serving.json")
    args = parser.parse_args()

    import tensorflow as tf

    server, base = start_server(args.root, extra=args.server_args.split())
    result = {
        "command": " ".join(["python", *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
        },
        "server": f"cli.py serve defaults (--max-batch-size 64 --batch-timeout-ms 0) "
        f"{args.server_args}".strip(),
        "models": {},
    }
    try:
        for model in args.models:
            texts = texts_for(model)
            version_dir = newest(args.root, model)
            http = http_call(base, model, texts)
            local = in_process_call(version_dir, texts)
            drive(http, 4, 40, 30)  # warm-up: traces, connections
            drive(local, 4, 40, 30)
            rows = []
            for concurrency in args.concurrency:
                served = drive(http, concurrency, args.requests, args.seconds)
                direct = drive(local, concurrency, args.requests, args.seconds)
                row = {
                    "concurrency": concurrency,
                    "server": served,
                    "in_process": direct,
                    "throughput_ratio": round(
                        served["requests_per_second"] / direct["requests_per_second"], 3
                    ),
                    "p50_ratio": round(served["p50_ms"] / direct["p50_ms"], 3),
                    "p99_ratio": round(served["p99_ms"] / direct["p99_ms"], 3),
                }
                rows.append(row)
                print(json.dumps({"model": model, **row}), flush=True)
            result["models"][model] = {"version_dir": version_dir, "runs": rows}
        if args.soak_seconds > 0:
            model = args.models[0]
            soak = drive(http_call(base, model, texts_for(model)), 64, 10**9, args.soak_seconds)
            soak["model"] = model
            soak["server_5xx"] = sum(
                n for k, n in soak["outcomes"].items() if k.startswith("status 5")
            )
            soak["lost"] = sum(n for k, n in soak["outcomes"].items() if k.startswith("lost"))
            result["soak"] = soak
            print(json.dumps({"soak": soak}), flush=True)
    finally:
        server.terminate()
        server.wait(30)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
