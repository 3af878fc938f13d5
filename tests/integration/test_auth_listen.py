"""auth=auto follows the address a connection arrived on, with a plain uvicorn.

``uvicorn app.main:app --host 0.0.0.0`` never sets HWSCORE_HOST, so the settings still
say 127.0.0.1; the API must nonetheless ask a key of a client that came in on an
outside address, and none of one that came in over loopback.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import httpx

from app.db.session import upgrade_database
from tests.conftest import skip_or_fail
from tests.integration.services import (
    child_env,
    free_port,
    fresh_postgres_database,
    private_redis,
    running_process,
    tail,
    wait_for,
)


def _outside_address() -> str:
    """This machine's address on its default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            address = str(probe.getsockname()[0])
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        skip_or_fail("this machine has no non-loopback IPv4 address to connect to")
    return address


def test_plain_uvicorn_on_all_interfaces_needs_keys_from_outside(tmp_path: Path) -> None:
    outside = _outside_address()
    with fresh_postgres_database("hwscore_auth") as database_url, private_redis(tmp_path) as broker:
        upgrade_database(database_url)
        env = child_env(database_url=database_url, broker_url=broker.url, state_dir=tmp_path)
        env.pop("HWSCORE_HOST", None)
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "0.0.0.0"]
        log = tmp_path / "api.log"
        with running_process([*argv, "--port", str(port)], env, log):

            def up() -> bool:
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(up, 60, "uvicorn to answer")
            remote = httpx.get(f"http://{outside}:{port}/api/v1/jobs")
            assert remote.status_code == 401, (remote.text, tail(log))
            assert "needs an API key" in remote.json()["detail"]
            local = httpx.get(f"http://127.0.0.1:{port}/api/v1/jobs")
            assert local.status_code == 200, local.text
            proxied = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/jobs", headers={"X-Forwarded-For": "198.51.100.7"}
            )
            assert proxied.status_code == 401
