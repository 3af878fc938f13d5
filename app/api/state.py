"""What one application instance holds: settings, database, broker, metrics.

Everything that connects is created on first use, so building the application (and
importing ``app.main``) opens no connection.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.metrics import ApiMetrics
from app.db.session import make_engine
from app.reports.cache import FigureCache
from app.services.dispatch import CeleryDispatcher
from app.services.recovery import RecoverySweeper


class Database:
    """A lazily created engine and session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._sessionmaker: sessionmaker[Session] | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = make_engine(self.url)
                self._sessionmaker = sessionmaker(bind=self._engine, expire_on_commit=False)
            return self._engine

    @property
    def sessionmaker(self) -> sessionmaker[Session]:
        self.engine  # noqa: B018 - creates the session factory on first use
        assert self._sessionmaker is not None
        return self._sessionmaker

    def session(self) -> Session:
        return self.sessionmaker()

    def dispose(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = None
            self._sessionmaker = None


@dataclass
class AppState:
    settings: Settings
    database: Database = field(init=False)
    dispatcher: CeleryDispatcher = field(init=False)
    metrics: ApiMetrics = field(init=False)
    figures: FigureCache = field(init=False, default_factory=FigureCache)
    _stop_sweep: threading.Event | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.database = Database(self.settings.resolved_database_url())
        self.dispatcher = CeleryDispatcher(self.settings)
        self.metrics = ApiMetrics(self.database.session, self.settings.metrics_cache_s)

    def start_recovery_sweep(self) -> None:
        """Take part in the recovery sweep (one process per database sweeps at a time)."""
        if self.settings.recovery_sweep and self._stop_sweep is None:
            sweeper = RecoverySweeper(self.settings, self.database.sessionmaker, self.dispatcher)
            self._stop_sweep = sweeper.run_in_background()

    def close(self) -> None:
        if self._stop_sweep is not None:
            self._stop_sweep.set()
            self._stop_sweep = None
        self.dispatcher.close()
        self.database.dispose()
