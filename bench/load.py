"""A bounded burst of job submissions and polls against a running API (not a test).

    .venv/bin/python bench/load.py --base-url http://127.0.0.1:8000 [--jobs 200]
        [--clients 16] [--polls 3] [--api-key hws_...]
    .venv/bin/python bench/load.py --start --database-url postgresql+psycopg://... \\
        --broker-url redis://127.0.0.1:6379/12

It submits ``--jobs`` small studies (fresh=true, distinct seeds) from ``--clients``
threads, each with its own keep-alive httpx client, and polls GET /jobs/{id} of each
accepted job ``--polls`` times. It prints the accepted count, refusals by status,
p50/p99 latency of POST /jobs and GET /jobs/{id}, requests per second, and checks that
every accepted job is readable and listed. Nothing runs the jobs: with ``--start`` it
starts uvicorn on the given database and broker with no worker (the messages wait in
the broker; use a Redis database of your own) and lifts the in-flight cap and the
submission rate limit, which would otherwise refuse most of a burst from one key.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
JOBS = "/api/v1/jobs"


def study(seed: int) -> dict[str, object]:
    return {
        "network": {"hidden": [32]},
        "profile": {"preset": "rram-4bit"},
        "training": {"epochs": 1, "hw_epochs": 1, "seed": seed},
        "evaluation": {"chips": 3},
        "fresh": True,
    }


@dataclass
class Results:
    post_s: list[float] = field(default_factory=list)
    get_s: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    accepted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def one_client(
    base_url: str, headers: dict[str, str], seeds: list[int], polls: int, out: Results
) -> None:
    """Submit each seed's study, then poll every job it got accepted."""
    mine: list[str] = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        for seed in seeds:
            started = time.perf_counter()
            try:
                response = client.post(JOBS, json=study(seed))
            except httpx.HTTPError as exc:
                with out.lock:
                    out.errors.append(f"POST: {type(exc).__name__}")
                continue
            elapsed = time.perf_counter() - started
            with out.lock:
                out.post_s.append(elapsed)
                out.statuses[f"POST {response.status_code}"] += 1
                if response.status_code == 202:
                    out.accepted.append(response.json()["id"])
            if response.status_code == 202:
                mine.append(response.json()["id"])
        for _ in range(polls):
            for job_id in mine:
                started = time.perf_counter()
                try:
                    response = client.get(f"{JOBS}/{job_id}")
                except httpx.HTTPError as exc:
                    with out.lock:
                        out.errors.append(f"GET: {type(exc).__name__}")
                    continue
                with out.lock:
                    out.get_s.append(time.perf_counter() - started)
                    out.statuses[f"GET {response.status_code}"] += 1


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def listed_ids(client: httpx.Client) -> set[str]:
    """Every job id of this key, paging GET /jobs to the end."""
    ids: set[str] = set()
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = client.get(JOBS, params=params).json()
        ids.update(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


def account_for(base_url: str, headers: dict[str, str], accepted: list[str]) -> list[str]:
    """Problems with the accepted jobs: any not readable or not listed."""
    problems = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        for job_id in accepted:
            response = client.get(f"{JOBS}/{job_id}")
            if response.status_code != 200:
                problems.append(f"{job_id}: GET answered {response.status_code}")
        missing = set(accepted) - listed_ids(client)
        problems += [f"{job_id}: not in GET /jobs" for job_id in sorted(missing)]
    return problems


@contextmanager
def started_api(database_url: str, broker_url: str, port: int) -> Iterator[str]:
    """uvicorn on loopback, no worker, limits lifted; migrates the database first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HWSCORE_")}
    env.update(
        HWSCORE_DATABASE_URL=database_url,
        HWSCORE_BROKER_URL=broker_url,
        HWSCORE_MAX_JOBS_IN_FLIGHT_PER_KEY="1000000",
        HWSCORE_SUBMIT_RATE_PER_MINUTE="0",
    )
    subprocess.run([sys.executable, "-m", "app.cli", "migrate"], cwd=REPO_ROOT, env=env, check=True)
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(argv, cwd=REPO_ROOT, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the API did not become ready")
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=20)


def run(base_url: str, args: argparse.Namespace) -> int:
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    first = secrets.randbelow(2**30)
    seeds = [first + i for i in range(args.jobs)]
    shares = [seeds[i :: args.clients] for i in range(args.clients)]
    out = Results()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.clients) as pool:
        for share in shares:
            pool.submit(one_client, base_url, headers, share, args.polls, out)
    wall_s = time.perf_counter() - started
    problems = account_for(base_url, headers, out.accepted)
    requests = len(out.post_s) + len(out.get_s)
    ms = 1000.0
    print(
        f"target {base_url}: {args.jobs} submissions from {args.clients} clients, "
        f"{args.polls} polls per job"
    )
    print(f"accepted (202): {len(out.accepted)} of {args.jobs}")
    print("answers: " + ", ".join(f"{key}: {n}" for key, n in sorted(out.statuses.items())))
    print(
        f"POST /jobs      p50 {percentile(out.post_s, 0.5) * ms:7.1f} ms   "
        f"p99 {percentile(out.post_s, 0.99) * ms:7.1f} ms   (n={len(out.post_s)})"
    )
    print(
        f"GET /jobs/{{id}}  p50 {percentile(out.get_s, 0.5) * ms:7.1f} ms   "
        f"p99 {percentile(out.get_s, 0.99) * ms:7.1f} ms   (n={len(out.get_s)})"
    )
    print(f"throughput: {requests / wall_s:.1f} req/s over {wall_s:.2f} s ({requests} requests)")
    print(f"transport errors: {len(out.errors)}")
    print(
        f"accounted for: {len(out.accepted) - len(problems)} of {len(out.accepted)} "
        "accepted jobs readable and listed"
    )
    for problem in problems[:20]:
        print(f"  PROBLEM {problem}")
    return 1 if problems or out.errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--jobs", type=int, default=200, help="submissions in the burst")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--polls", type=int, default=3, help="GET /jobs/{id} per accepted job")
    parser.add_argument("--api-key", default=os.environ.get("HWSCORE_API_KEY"))
    parser.add_argument("--start", action="store_true", help="start an API (no worker) first")
    parser.add_argument("--database-url", help="with --start: PostgreSQL URL")
    parser.add_argument("--broker-url", help="with --start: Redis URL (a db of your own)")
    parser.add_argument("--port", type=int, default=8765, help="with --start")
    args = parser.parse_args()
    if args.jobs < 1 or args.clients < 1 or args.polls < 0:
        parser.error("--jobs and --clients must be at least 1, --polls at least 0")
    if not args.start:
        return run(args.base_url, args)
    if not (args.database_url and args.broker_url):
        parser.error("--start needs --database-url and --broker-url")
    with started_api(args.database_url, args.broker_url, args.port) as base_url:
        return run(base_url, args)


if __name__ == "__main__":
    sys.exit(main())
