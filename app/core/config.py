"""All service settings in one place, read from HWSCORE_* environment variables.

The defaults are the embedded single-machine setup: a SQLite file and kombu's
SQLAlchemy transport on another SQLite file, so nothing but the package is needed.
Scaled out, set HWSCORE_DATABASE_URL to PostgreSQL and HWSCORE_BROKER_URL to Redis.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    task_max_retries: int = Field(default=3, ge=0)
    torch_threads: int | None = Field(
        default=None, description="Torch threads per worker. Empty: all cores of the machine."
    )

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.state_dir / 'hwscore.sqlite3').resolve()}"

    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{(self.state_dir / 'broker.sqlite3').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
