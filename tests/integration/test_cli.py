"""``hwscore migrate`` and ``hwscore keys`` against a real database file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.integration.services import child_env


def hwscore(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=REPO_ROOT,
        env=child_env(state_dir=state_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_migrate_then_create_list_and_revoke_a_key(tmp_path: Path) -> None:
    migrated = hwscore("migrate", state_dir=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert "hwscore.sqlite3" in migrated.stdout

    created = hwscore("keys", "create", "ci", state_dir=tmp_path)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.split("secret (shown once, keep it safe): ")[1].split()[0]
    key_id = created.stdout.split()[2]
    assert secret.startswith("hws_")

    listed = hwscore("keys", "list", state_dir=tmp_path)
    assert key_id in listed.stdout and "active" in listed.stdout
    assert secret not in listed.stdout

    assert hwscore("keys", "revoke", key_id, state_dir=tmp_path).returncode == 0
    assert "revoked" in hwscore("keys", "list", state_dir=tmp_path).stdout
    again = hwscore("keys", "revoke", key_id, state_dir=tmp_path)
    assert again.returncode == 1 and "no active key" in again.stderr


def test_help_is_fast_and_lists_every_command() -> None:
    shown = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "app.cli", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0
    for command in ("serve", "worker", "migrate", "keys", "train", "profiles"):
        assert command in shown.stdout
    imported = {line.split("|")[-1].strip() for line in shown.stderr.splitlines()}
    assert not {"torch", "fastapi", "celery", "sqlalchemy"} & imported
