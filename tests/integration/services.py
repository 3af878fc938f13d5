"""Real services for the tests: a fresh PostgreSQL database, a Redis database, processes.

Each helper gives a test its own, empty piece of a real service and removes it
afterwards; a missing service is a skip locally and a failure under CI=true.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import REPO_ROOT, skip_or_fail

ADMIN_POSTGRES_URL = os.environ.get(
    "HWSCORE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TEST_REDIS_URL = os.environ.get("HWSCORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@contextmanager
def fresh_postgres_database(prefix: str = "hwscore_it") -> Iterator[str]:
    """CREATE DATABASE <prefix>_<random>, yield its URL, DROP it at the end."""
    admin = create_engine(ADMIN_POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{secrets.token_hex(4)}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        skip_or_fail(f"PostgreSQL at {ADMIN_POSTGRES_URL} is not usable: {exc}")
    try:
        url = make_url(ADMIN_POSTGRES_URL).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def flushed_redis(url: str = TEST_REDIS_URL) -> str:
    """Empty the Redis database at ``url`` (a dedicated db number) and return the URL."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.flushdb()
        client.close()
    except Exception as exc:
        skip_or_fail(f"Redis at {url} is not reachable: {exc}")
    return url


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(**settings: str | Path) -> dict[str, str]:
    """This environment, less any HWSCORE_* of the caller, plus ``settings`` as HWSCORE_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HWSCORE_")}
    env.update({f"HWSCORE_{key.upper()}": str(value) for key, value in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextmanager
def running_process(
    argv: list[str], env: dict[str, str], log_path: Path, *, stop_timeout_s: float = 20.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv`` in the repository root (output to ``log_path``); stop it at the end."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            stop_process(process, stop_timeout_s)


def stop_process(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM, then SIGKILL of its whole process group if it does not exit in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for(condition, timeout_s: float, what: str, interval_s: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def child_pids(pid: int) -> list[int]:
    """The direct children of process ``pid`` (Linux), whichever of its threads forked them."""
    children: list[int] = []
    for thread in Path(f"/proc/{pid}/task").iterdir():
        with suppress(FileNotFoundError):  # the thread ended meanwhile
            children += [int(c) for c in (thread / "children").read_text().split()]
    return sorted(children)


def tail(path: Path, lines: int = 40) -> str:
    """The end of a log file, for assertion messages."""
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- private instances, for tests that stop a service --------------------------------
# Never stop the shared PostgreSQL or Redis: other tests (and people) use them. A test
# that needs an outage starts its own instance on a free port in a temporary folder.


def _postgres_bin(tool: str) -> str:
    found = shutil.which(tool) or next(iter(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}")), None)
    if found is None:
        skip_or_fail(f"{tool} not found (PostgreSQL server binaries are needed)")
    return str(found)


def _as_postgres_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; run its tools as the postgres user then."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("runuser") is None:
        skip_or_fail("running as root without runuser: cannot start a private PostgreSQL")
    return ["runuser", "-u", "postgres", "--", *argv]


@dataclass
class PrivatePostgres:
    """A PostgreSQL server of one test's own, which the test may stop and start."""

    data_dir: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        argv = [_postgres_bin("pg_ctl"), "-D", str(self.data_dir), "-w", "-t", "60", *args]
        subprocess.run(_as_postgres_user(argv), check=True, capture_output=True, timeout=90)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir} -c fsync=off"
        self._pg_ctl("-l", str(self.log), "-o", options, "start")

    def stop(self) -> None:
        """Stop now: open connections are cut, as when a database server goes away."""
        self._pg_ctl("-m", "fast", "stop")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """initdb in a temporary folder and start it on a free port; removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="hwscore-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = PrivatePostgres(data_dir=root / "data", port=free_port(), log=root / "server.log")
    initdb = [_postgres_bin("initdb"), "-D", str(server.data_dir), "-U", "postgres"]
    subprocess.run(
        _as_postgres_user([*initdb, "-A", "trust", "--no-sync"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        server.start()
        yield server
    finally:
        with suppress(Exception):
            server._pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def private_redis(workdir: Path) -> Iterator[PrivateRedis]:
    """A Redis server of this test's own (no persistence, like the default install)."""
    server = PrivateRedis(workdir, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


class PrivateRedis:
    """A redis-server the test may stop and start; its data dies with it."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
        ]
        try:
            self._process = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
            )
        except FileNotFoundError:
            skip_or_fail("redis-server is not installed")
        wait_for(self._answers, 10, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()  # an outage, not a shutdown: nothing is saved
            self._process.wait()

    def _answers(self) -> bool:
        import redis

        try:
            client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
            with closing(client):
                return bool(client.ping())
        except redis.exceptions.ConnectionError:
            return False
