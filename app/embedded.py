"""``hwscore serve``: the whole service on one machine, from one command.

The database is upgraded, then the API (uvicorn) and one Celery worker (N pool
processes) start as child processes with the same settings, and this process watches
them: when one dies the others are stopped, and Ctrl-C or SIGTERM stops them all.
Jobs a stopped worker was running go back to the queue, so they run again at the next
start instead of staying "running" forever; after a crash (SIGKILL, power loss) the
recovery sweep takes them back once their heartbeat is stale.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from types import FrameType

from app.core.config import Settings

READY_TIMEOUT_S = 90.0
# How long a worker may take to hand back its jobs and exit before it is killed.
WORKER_STOP_GRACE_S = 20.0
API_STOP_GRACE_S = 10.0
POLL_S = 0.2


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: list[str]
    grace_s: float
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    stopping: bool = False

    def start(self, env: dict[str, str]) -> None:
        # A session of its own: Ctrl-C reaches only the supervisor, which stops the
        # children in order (API first, then the worker once its jobs are handed back).
        # If the supervisor itself is killed, the children die with it (no orphan keeps
        # the port), and the next start's recovery sweep takes back what they ran.
        self.process = subprocess.Popen(
            self.argv, env=env, start_new_session=True, preexec_fn=_die_with_parent
        )

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def ask_to_stop(self) -> None:
        """SIGTERM: uvicorn finishes its requests, a Celery worker takes no new job."""
        if self.process is not None and self.process.poll() is None and not self.stopping:
            self.stopping = True
            self.process.terminate()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period."""
        if self.process is None or self.process.poll() is not None:
            return
        self.ask_to_stop()
        try:
            self.process.wait(timeout=self.grace_s)
        except subprocess.TimeoutExpired:
            print(f"hwscore: {self.name} did not stop in {self.grace_s:.0f} s; killing it")
            self.process.kill()
            self.process.wait()


def _die_with_parent() -> None:
    """In the child before exec: ask Linux for SIGKILL when the supervisor dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


_PR_SET_PDEATHSIG = 1


class _StopFlag:
    """Set by SIGINT, SIGTERM or SIGHUP; the supervisor loops check it."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name

    @property
    def is_set(self) -> bool:
        return self.signal_name is not None


def serve(settings: Settings, *, host: str, port: int, workers: int) -> int:
    """Run the API and workers until interrupted; the exit code says how it ended."""
    from app.db.session import upgrade_database

    node = f"serve-{os.getpid()}@%h"
    env = child_environment(settings, host=host, port=port)
    # The embedded broker (and the default database) live here, whatever else is set.
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    print(f"hwscore: database {_describe(settings.resolved_database_url())}, upgrading")
    upgrade_database(settings.resolved_database_url())

    api = Child(
        "api",
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", host, "--port", str(port)],
        API_STOP_GRACE_S,
    )
    worker = Child(
        "worker",
        [sys.executable, "-m", "app.cli", "worker", f"--concurrency={workers}", f"--name={node}"],
        WORKER_STOP_GRACE_S,
    )
    stop = _StopFlag()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    try:
        worker.start(env)
        api.start(env)
        if _wait_until_ready(host, port, [api, worker], stop):
            print(f"hwscore: ready ({workers} worker process(es)); docs: {docs_url(host, port)}")
            print("hwscore: press Ctrl-C to stop", flush=True)
        dead = _watch([api, worker], stop)
        if dead is None:
            print(f"hwscore: {stop.signal_name} received, stopping", flush=True)
            return 0
        print(f"hwscore: {dead.name} exited with code {dead.exit_code()}; stopping", flush=True)
        return 1
    finally:
        api.stop()
        # The worker first stops taking messages, then its running jobs are handed back
        # (its engine stops at the next cancel check); the recovery sweep of the next
        # start sends them again.
        worker.ask_to_stop()
        released = _release_jobs(node)
        worker.stop()
        if released:
            print(f"hwscore: {len(released)} interrupted job(s) will run again at the next start")


def child_environment(settings: Settings, *, host: str, port: int) -> dict[str, str]:
    """The children read the same settings as this process, with host and port fixed."""
    env = dict(os.environ)
    env["HWSCORE_HOST"] = host
    env["HWSCORE_PORT"] = str(port)
    env["HWSCORE_STATE_DIR"] = str(settings.state_dir.resolve())
    env["HWSCORE_DATABASE_URL"] = settings.resolved_database_url()
    env["HWSCORE_BROKER_URL"] = settings.resolved_broker_url()
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def docs_url(host: str, port: int) -> str:
    return f"http://{_reachable(host)}:{port}/docs"


def _reachable(host: str) -> str:
    """An address a browser on this machine can use for ``host``."""
    if host in {"0.0.0.0", ""}:
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _wait_until_ready(host: str, port: int, children: list[Child], stop: _StopFlag) -> bool:
    """True once the API answers /healthz; False if a child died or a stop came first."""
    url = f"http://{_reachable(host)}:{port}/healthz"
    # Straight to our own port: an HTTP(S)_PROXY set for downloads must not be used here.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if stop.is_set or any(child.exit_code() is not None for child in children):
            return False
        try:
            with opener.open(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(POLL_S)
    print(f"hwscore: the API has not answered {url} in {READY_TIMEOUT_S:.0f} s", file=sys.stderr)
    return False


def _watch(children: list[Child], stop: _StopFlag) -> Child | None:
    """Block until a child exits (returned) or a stop is requested (None)."""
    while not stop.is_set:
        for child in children:
            if child.exit_code() is not None:
                return child
        time.sleep(POLL_S)
    return None


def _release_jobs(node: str) -> list[str]:
    """Put the jobs our worker is running back in the queue (the worker then drops them)."""
    from app.db.job_store import release_jobs_of_worker
    from app.db.session import get_sessionmaker

    try:
        return release_jobs_of_worker(get_sessionmaker(), node.split("@", 1)[0] + "@")
    except Exception as exc:  # stopping must go on; say what is left behind
        print(f"hwscore: could not put running jobs back in the queue: {exc}", file=sys.stderr)
        return []


def _describe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
