"""All service settings in one place, read from HWSCORE_* environment variables.

The defaults are the embedded single-machine setup: a SQLite file and kombu's
SQLAlchemy transport on another SQLite file, so nothing but the package is needed.
Scaled out, set HWSCORE_DATABASE_URL to PostgreSQL and HWSCORE_BROKER_URL to Redis.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hwmodels.cost import PASSES_PER_SECOND, budget_for

DEFAULT_STATE_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HWSCORE_", env_file=".env", extra="ignore")

    state_dir: Path = Field(
        default=DEFAULT_STATE_DIR, description="Where the embedded default keeps its files."
    )
    database_url: str = Field(
        default="", description="SQLAlchemy URL. Empty: SQLite file in state_dir."
    )
    broker_url: str = Field(
        default="", description="Celery broker URL. Empty: SQLite-backed broker in state_dir."
    )
    data_dir: Path | None = Field(
        default=None, description="Dataset folder (HWSCORE_DATA_DIR). Empty: ~/.cache/hwscore/data."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    auth: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="auto: an API key is required on every connection that did not arrive "
        "on a loopback address (decided per request, whatever address the server was told "
        "to listen on); behind a reverse proxy on the same machine use 'on'.",
    )
    max_jobs_in_flight_per_key: int = Field(default=4, ge=1)
    max_request_bytes: int = Field(default=1_000_000, ge=1000)
    max_model_bytes: int = Field(
        default=64_000_000,
        ge=1000,
        description="Largest weights file POST /api/v1/models accepts (that route alone; "
        "max_request_bytes stays the limit of every other request). 64 MB holds a network "
        "at the 5 M parameter limit in float64.",
    )
    submit_rate_per_minute: float = Field(
        default=30.0,
        ge=0,
        description="Jobs one API key (or the local user) may create per minute, averaged "
        "over submit_burst jobs; 0 turns the limit off.",
    )
    submit_burst: int = Field(
        default=10, ge=1, description="Jobs one API key may create back to back."
    )
    metrics_cache_s: float = Field(
        default=15.0,
        ge=0,
        description="How long /metrics reuses the job figures it read from the database.",
    )

    task_soft_time_limit_s: int = Field(default=3 * 3600, ge=10)
    task_time_limit_s: int = Field(default=3 * 3600 + 300, ge=20)
    heartbeat_interval_s: float = Field(
        default=10.0, gt=0, description="How often a worker stamps the job it runs as alive."
    )
    stale_after_s: float = Field(
        default=60.0,
        gt=0,
        description="A running job whose heartbeat is older than this is taken back from its "
        "worker (presumed dead) and queued again.",
    )
    sweep_interval_s: float = Field(
        default=20.0, gt=0, description="How often the recovery sweep looks for lost jobs."
    )
    recovery_sweep: bool = Field(
        default=True,
        description="Take part in the recovery sweep from this process (API or worker).",
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        description="Runs a job may start; a job whose worker is lost on its last one fails "
        "with worker_lost instead of being queued again.",
    )
    torch_threads: int | None = Field(
        default=None,
        description="Torch threads per worker pool process. Empty: the machine's cores "
        "divided by the worker's concurrency.",
    )
    max_job_cost: int | None = Field(
        default=None,
        ge=1,
        description="Largest estimated study cost accepted at submit, in parameter-sample "
        "passes (hwmodels.cost). Empty: what fits the soft time limit, "
        f"task_soft_time_limit_s x {PASSES_PER_SECOND:.0e}.",
    )
    download_datasets: bool = Field(
        default=False,
        description="Whether workers may fetch a missing dataset from its public mirrors. "
        "Off by default: a server fails such a job at once with where to put the files. "
        "(The same variable governs the hwscore train command, where the default is on.)",
    )

    float_cache: bool = Field(
        default=True,
        description="Workers reuse one trained float network for every job with the same "
        "dataset, network, float-training settings, activation function and engine "
        "(hwmodels.float_cache); false: every job trains its own.",
    )
    float_cache_dir: Path | None = Field(
        default=None,
        description="Where workers keep trained float networks. Empty: "
        "state_dir/float-cache. Point the workers of several machines at one shared "
        "folder to share them.",
    )

    @model_validator(mode="after")
    def _recovery_timing(self) -> Settings:
        """A live worker must never look dead, and a dead one must be noticed in time."""
        if self.stale_after_s < 3 * self.heartbeat_interval_s:
            raise ValueError(
                "HWSCORE_STALE_AFTER_S must be at least 3 x HWSCORE_HEARTBEAT_INTERVAL_S, "
                "or a live worker's job could be taken from it"
            )
        if self.stale_after_s >= self.task_time_limit_s:
            raise ValueError("HWSCORE_STALE_AFTER_S must be below HWSCORE_TASK_TIME_LIMIT_S")
        return self

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.state_dir / 'hwscore.sqlite3').resolve()}"

    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{(self.state_dir / 'broker.sqlite3').resolve()}"

    def resolved_float_cache_dir(self) -> Path | None:
        """The float-training cache folder, or None when the cache is off."""
        if not self.float_cache:
            return None
        return self.float_cache_dir or self.state_dir / "float-cache"

    def resolved_max_job_cost(self) -> int:
        """The cost budget: as set, else derived from the soft time limit."""
        return self.max_job_cost or budget_for(self.task_soft_time_limit_s)


@lru_cache
def get_settings() -> Settings:
    return Settings()
