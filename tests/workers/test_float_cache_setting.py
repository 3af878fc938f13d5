"""The worker's float-training cache, driven through ``execute_job`` with the real engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.db.job_store import JobStore
from hwmodels.profile import get_preset
from tests.workers.conftest import TINY_SPEC, add_job, load_job
from workers.tasks import Outcome, execute_job


def _run(
    store: JobStore, sessions: sessionmaker[Session], settings: Settings, preset: str
) -> dict[str, Any]:
    spec = TINY_SPEC.model_copy(update={"profile": get_preset(preset)})
    job_id = add_job(sessions, spec=spec.model_dump(mode="json"))
    outcome = execute_job(job_id, store=store, worker="test@host:1", settings=settings)
    assert outcome == Outcome("succeeded")
    result = load_job(sessions, job_id).result
    assert result is not None
    return result


def test_jobs_share_the_float_network_in_the_state_folder(
    sessions: sessionmaker[Session], store: JobStore, tmp_path: Path, data_dir: Path
) -> None:
    settings = Settings(state_dir=tmp_path, data_dir=data_dir)
    first = _run(store, sessions, settings, "rram-4bit")
    second = _run(store, sessions, settings, "pcm-3bit")
    assert first["float_training"]["reused"] is False
    assert second["float_training"] == {"reused": True, "key": first["float_training"]["key"]}
    assert second["float_accuracy"] == first["float_accuracy"]
    key = first["float_training"]["key"]
    assert [p.name for p in (tmp_path / "float-cache").iterdir()] == [f"{key}.safetensors"]


def test_the_cache_can_be_turned_off(
    sessions: sessionmaker[Session], store: JobStore, tmp_path: Path, data_dir: Path
) -> None:
    settings = Settings(state_dir=tmp_path, data_dir=data_dir, float_cache=False)
    for preset in ("rram-4bit", "pcm-3bit"):
        assert _run(store, sessions, settings, preset)["float_training"]["reused"] is False
    assert not (tmp_path / "float-cache").exists()
    assert Settings(float_cache_dir=tmp_path / "x").resolved_float_cache_dir() == tmp_path / "x"
