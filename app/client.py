"""A small Python client for the hwscore service: submit, follow, fetch, cancel.

    from app.client import HwscoreClient

    with HwscoreClient() as hw:  # HWSCORE_SERVER / HWSCORE_API_KEY, or arguments
        job = hw.submit({"dataset": "mnist", "profile": {"preset": "rram-4bit"}})
        job = hw.wait(job.id)  # polls until succeeded, failed or cancelled
        report = hw.result(job.id)  # a hwmodels.report.RobustnessReport
        hw.download(job.id, "report.json", out_dir="results")

It needs only httpx and the torch-free report model, so it runs anywhere Python does.
Every failure is a ``HwscoreError`` carrying the server's problem ``detail`` and HTTP
``status``; with ``retries`` set, answers 429 and 503 are retried after the server's
Retry-After (a submit carries an Idempotency-Key, so a retried submit never runs twice).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.core.vocabulary import TERMINAL_STATUSES, JobStatus
from hwmodels.report import RobustnessReport

SERVER_ENV = "HWSCORE_SERVER"
KEY_ENV = "HWSCORE_API_KEY"
DEFAULT_SERVER = "http://127.0.0.1:8000"
JOBS = "/api/v1/jobs"
SWEEPS = "/api/v1/sweeps"
MODELS = "/api/v1/models"
RETRYABLE = frozenset({429, 503})


class HwscoreError(Exception):
    """The service refused or could not be reached; ``detail`` says what to do.

    ``status`` is the HTTP status (None when no answer came), ``problem`` the server's
    problem document (its ``errors`` list points at fields on 422), ``retry_after_s``
    the server's Retry-After when it sent one.
    """

    def __init__(
        self,
        detail: str,
        status: int | None = None,
        problem: Mapping[str, Any] | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.problem = dict(problem or {})
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class JobError:
    code: str  # an app.core.vocabulary.ErrorCode value, stable for programs
    message: str  # written for people


@dataclass(frozen=True)
class Job:
    """A job as the service shows it; ``raw`` keeps the whole JSON (spec, links...)."""

    id: str
    status: JobStatus
    fraction: float
    phase: str | None
    epoch: int | None
    reused: bool
    result: dict[str, Any] | None  # the summary once succeeded; ``result()`` has it all
    error: JobError | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Job:
        progress = data.get("progress") or {}
        error = data.get("error")
        return cls(
            id=str(data["id"]),
            status=JobStatus(data["status"]),
            fraction=float(progress.get("fraction") or 0.0),
            phase=progress.get("phase"),
            epoch=progress.get("epoch"),
            reused=bool(data.get("reused")),
            result=data.get("result"),
            error=JobError(error["code"], error["message"]) if error else None,
            raw=dict(data),
        )


@dataclass(frozen=True)
class Artifact:
    name: str
    media_type: str
    size: int
    sha256: str
    url: str


class HwscoreClient:
    """The service's jobs over HTTP. Use as a context manager, or call ``close()``."""

    def __init__(
        self,
        server: str | None = None,
        key: str | None = None,
        *,
        timeout_s: float = 30.0,
        retries: int = 0,
        max_retry_wait_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``server`` and ``key`` default to $HWSCORE_SERVER and $HWSCORE_API_KEY.

        ``retries``: how many times a 429 or 503 is retried, each after the server's
        Retry-After (at most ``max_retry_wait_s``); 0 raises at once.
        """
        self.server = (server or os.environ.get(SERVER_ENV) or DEFAULT_SERVER).rstrip("/")
        key = key or os.environ.get(KEY_ENV) or None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.retries = retries
        self.max_retry_wait_s = max_retry_wait_s
        self._http = httpx.Client(
            base_url=self.server, headers=headers, timeout=timeout_s, transport=transport
        )

    def __enter__(self) -> HwscoreClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- uploaded models ----------------------------------------------------------------

    def upload_model(
        self,
        weights: str | Path | bytes,
        network: Mapping[str, Any],
        *,
        dataset: str = "mnist",
        name: str | None = None,
    ) -> dict[str, Any]:
        """Upload trained float weights (a safetensors file or its bytes) for ``network``
        (a job's "network" object); returns the model, whose ``id`` a job names as
        ``model_id``. The server refuses a pickled .pt (415): convert it first."""
        content = weights if isinstance(weights, bytes) else Path(weights).read_bytes()
        form = {"architecture": json.dumps(dict(network)), "dataset": dataset}
        if name is not None:
            form["name"] = name
        files = {"weights": ("model.safetensors", content, "application/octet-stream")}
        return self._json("POST", MODELS, data=form, files=files)

    def models(self) -> list[dict[str, Any]]:
        """Your uploaded models, newest first."""
        models: list[dict[str, Any]] = self._json("GET", MODELS)["models"]
        return models

    def model(self, model_id: str) -> dict[str, Any]:
        return self._json("GET", f"{MODELS}/{model_id}")

    def delete_model(self, model_id: str) -> None:
        self._request("DELETE", f"{MODELS}/{model_id}")

    # --- jobs -------------------------------------------------------------------------

    def submit(self, spec: Mapping[str, Any], *, idempotency_key: str | None = None) -> Job:
        """Submit a study (the JSON body of POST /api/v1/jobs); 422 says what is wrong."""
        headers = {"Idempotency-Key": idempotency_key or f"client-{uuid.uuid4()}"}
        return Job.from_json(self._json("POST", JOBS, json=dict(spec), headers=headers))

    def job(self, job_id: str) -> Job:
        """The job's status, progress, and result summary or error."""
        return Job.from_json(self._json("GET", f"{JOBS}/{job_id}"))

    def jobs(self, *, status: JobStatus | str | None = None, limit: int = 20) -> list[Job]:
        """Your newest ``limit`` jobs (optionally only those in ``status``), newest first."""
        found: list[Job] = []
        for job in self._iter_jobs(status):
            if len(found) >= limit:
                break
            found.append(job)
        return found

    def _iter_jobs(self, status: JobStatus | str | None) -> Iterator[Job]:
        params: dict[str, Any] = {"limit": 100}
        if status is not None:
            params["status"] = str(status)
        while True:
            page = self._json("GET", JOBS, params=params)
            yield from (Job.from_json(item) for item in page["items"])
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued job at once, a running one at its worker's next check."""
        return Job.from_json(self._json("POST", f"{JOBS}/{job_id}/cancel"))

    def wait(
        self,
        job_id: str,
        *,
        timeout_s: float | None = None,
        poll_s: float = 1.0,
        on_update: Callable[[Job], None] | None = None,
    ) -> Job:
        """Poll until the job is succeeded, failed or cancelled; return it as it ended.

        ``on_update`` sees every state polled (a progress bar listens there). Polls send
        the last ETag, so an unchanged job costs the server a 304 and no body.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        job, etag = self._job_with_etag(job_id, None)
        while True:
            if on_update is not None:
                on_update(job)
            if job.done:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise HwscoreError(
                    f"job {job_id} is still {job.status} after {timeout_s:g} s; "
                    "wait longer, or cancel it",
                )
            time.sleep(poll_s)
            job, etag = self._job_with_etag(job_id, etag, job)

    def _job_with_etag(
        self, job_id: str, etag: str | None, last: Job | None = None
    ) -> tuple[Job, str | None]:
        headers = {"If-None-Match": etag} if etag else {}
        response = self._request("GET", f"{JOBS}/{job_id}", headers=headers)
        if response.status_code == 304 and last is not None:
            return last, etag
        return Job.from_json(response.json()), response.headers.get("ETag")

    # --- results ----------------------------------------------------------------------

    def result(self, job_id: str) -> RobustnessReport:
        """The full robustness report of a succeeded job (409 while it is not)."""
        data = self._json("GET", f"{JOBS}/{job_id}/result")
        return RobustnessReport.model_validate(data)

    def artifacts(self, job_id: str) -> list[Artifact]:
        """The files a succeeded job produced, with sizes and SHA-256 hashes."""
        listing = self._json("GET", f"{JOBS}/{job_id}/artifacts")
        return [
            Artifact(
                name=item["name"],
                media_type=item["media_type"],
                size=int(item["size"]),
                sha256=item["sha256"],
                url=item["url"],
            )
            for item in listing["items"]
        ]

    def download(self, job_id: str, name: str, out_dir: str | Path = ".") -> Path:
        """Save one artifact into ``out_dir``, checked against its listed SHA-256."""
        by_name = {artifact.name: artifact for artifact in self.artifacts(job_id)}
        if name not in by_name:
            raise HwscoreError(
                f"job {job_id} has no artifact {name!r}; it has: {', '.join(by_name)}", 404
            )
        return self._save(by_name[name], Path(out_dir))

    def download_all(self, job_id: str, out_dir: str | Path = ".") -> list[Path]:
        """Save every artifact of a succeeded job into ``out_dir``."""
        return [self._save(artifact, Path(out_dir)) for artifact in self.artifacts(job_id)]

    def _save(self, artifact: Artifact, out_dir: Path) -> Path:
        content = self._request("GET", artifact.url).content
        digest = hashlib.sha256(content).hexdigest()
        if digest != artifact.sha256:
            raise HwscoreError(
                f"artifact {artifact.name} arrived damaged (SHA-256 {digest[:12]}…, "
                f"listed {artifact.sha256[:12]}…); download it again"
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / Path(artifact.name).name  # never a path the server chose
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(content)
        partial.replace(path)  # a complete file or none
        return path

    # --- sweeps -----------------------------------------------------------------------
    # Sweeps come back as the API's JSON (GET /api/v1/sweeps/{id}): status, progress,
    # curve (one point per value, percent), robustness (statements), jobs, links.

    def submit_sweep(
        self, body: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Submit a sweep (the JSON body of POST /api/v1/sweeps: mode, study, axes)."""
        headers = {"Idempotency-Key": idempotency_key or f"client-{uuid.uuid4()}"}
        return self._json("POST", SWEEPS, json=dict(body), headers=headers)

    def sweep(self, sweep_id: str) -> dict[str, Any]:
        return self._json("GET", f"{SWEEPS}/{sweep_id}")

    def sweeps(self, *, limit: int = 20) -> list[dict[str, Any]]:
        """Your newest ``limit`` sweeps (at most 100), newest first."""
        items: list[dict[str, Any]] = self._json("GET", SWEEPS, params={"limit": limit})["items"]
        return items

    def cancel_sweep(self, sweep_id: str) -> dict[str, Any]:
        """Cancel every unfinished job of the sweep."""
        return self._json("POST", f"{SWEEPS}/{sweep_id}/cancel")

    def sweep_csv(self, sweep_id: str) -> str:
        """The curve as CSV text (one row per point)."""
        return self._request("GET", f"{SWEEPS}/{sweep_id}/curve.csv").text

    def wait_sweep(
        self,
        sweep_id: str,
        *,
        timeout_s: float | None = None,
        poll_s: float = 2.0,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the sweep has finished (its status is terminal); return it."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            sweep = self.sweep(sweep_id)
            if on_update is not None:
                on_update(sweep)
            if sweep["status"] in TERMINAL_STATUSES:
                return sweep
            if deadline is not None and time.monotonic() >= deadline:
                raise HwscoreError(
                    f"sweep {sweep_id} is still {sweep['status']} after {timeout_s:g} s; "
                    "wait longer, or cancel it"
                )
            time.sleep(poll_s)

    # --- HTTP -------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        data: dict[str, Any] = self._request(method, path, **kwargs).json()
        return data

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send; retry 429/503 after Retry-After while retries last; raise on errors."""
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                raise HwscoreError(
                    f"cannot reach the hwscore server at {self.server} ({exc or type(exc)}); "
                    f"start one (`make serve`) or point {SERVER_ENV} / --server at it"
                ) from None
            if response.status_code < 400:
                return response
            error = _error_from(response)
            wait_s = error.retry_after_s
            if response.status_code not in RETRYABLE or wait_s is None or attempt == self.retries:
                raise error
            time.sleep(min(wait_s, self.max_retry_wait_s))
        raise AssertionError("unreachable: the loop returns or raises")


def _error_from(response: httpx.Response) -> HwscoreError:
    """The problem document's detail and status (or the start of a non-problem body)."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if isinstance(problem, dict) and isinstance(problem.get("detail"), str):
        detail = problem["detail"]
    else:
        problem = None
        text = " ".join(response.text.split())[:200] or response.reason_phrase
        detail = f"HTTP {response.status_code} from {response.request.url}: {text}"
    retry_after = response.headers.get("Retry-After")
    return HwscoreError(
        detail,
        status=response.status_code,
        problem=problem,
        retry_after_s=float(retry_after) if retry_after and retry_after.isdigit() else None,
    )
