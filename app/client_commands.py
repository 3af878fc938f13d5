"""``hwscore submit | status | wait | result | download | jobs | cancel``: the service's client.

(``sweep``, ``sweeps``, ``sweep-result``, ``sweep-cancel``: app.client_sweep_commands.)

Each command is a thin layer over ``app.client.HwscoreClient``: parse, call, print.
Results go to stdout (``submit`` prints only the job id, so ``id=$(hwscore submit ...)``
works), progress and notes to stderr. Imports that cost time (httpx) happen when a
command runs, so ``hwscore --help`` stays fast; none of them pulls in torch.

Exit codes: 0 done; 1 the job failed or was cancelled, or the server could not be
reached or failed; 2 bad input (the server's 4xx answers included: 404, 409, 422).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.vocabulary import JobStatus
from hwmodels.cli import ProgressBar, UsageError, add_study_arguments, format_report, table

if TYPE_CHECKING:
    from app.client import HwscoreClient, Job

EXIT_FAILED = 1
EXIT_USAGE = 2
_USAGE_STATUSES = frozenset({400, 404, 409, 413, 422})


def register(subparsers: Any) -> None:
    """Add the client commands to an argparse subparsers object (``func`` = handler)."""
    connection = argparse.ArgumentParser(add_help=False)
    group = connection.add_argument_group("server")
    group.add_argument("--server", help="service URL (default: $HWSCORE_SERVER, else :8000)")
    group.add_argument("--key", help="API key (default: $HWSCORE_API_KEY; none on loopback)")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = subparsers.add_parser(
            name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".",
            parents=[connection],
        )  # fmt: skip
        return parser

    submit = command("submit", "submit a study to the service (flags and/or a spec file)")
    submit.add_argument("file", nargs="?", type=Path, help="spec file, JSON or YAML (optional)")
    add_study_arguments(submit, local=False)
    submit.add_argument("--fresh", action="store_true", help="run even if done before")
    _add_wait_flags(submit.add_argument_group("waiting"), flag=True)
    submit.set_defaults(func=_submit)

    status = command("status", "show a job's status and progress")
    status.add_argument("id")
    status.add_argument("--json", action="store_true", help="print the job as JSON")
    status.set_defaults(func=_status)

    wait = command("wait", "follow a job until it ends, then print its result table")
    wait.add_argument("id")
    _add_wait_flags(wait, flag=False)
    wait.set_defaults(func=_wait)

    result = command("result", "print a succeeded job's result table")
    result.add_argument("id")
    result.add_argument("--json", action="store_true", help="print the full report as JSON")
    result.set_defaults(func=_result)

    download = command("download", "save a succeeded job's artifacts (all, or NAME)")
    download.add_argument("id")
    download.add_argument("name", nargs="?", help="one artifact, e.g. report.json")
    download.add_argument("--out", type=Path, default=Path("."), metavar="DIR", help="folder")
    download.set_defaults(func=_download)

    jobs = command("jobs", "list your jobs, newest first")
    jobs.add_argument("--status", choices=[s.value for s in JobStatus], help="only these")
    jobs.add_argument("--limit", type=int, default=20, help="at most this many (default: 20)")
    jobs.add_argument("--json", action="store_true", help="print the jobs as JSON")
    jobs.set_defaults(func=_jobs)

    cancel = command("cancel", "cancel a queued or running job")
    cancel.add_argument("id")
    cancel.set_defaults(func=_cancel)

    from app.client_sweep_commands import register as register_sweeps  # imports this module

    register_sweeps(command)


def _add_wait_flags(group: Any, *, flag: bool) -> None:
    if flag:
        group.add_argument("--wait", action="store_true", help="follow it to the end, as `wait`")
    group.add_argument("--timeout", type=float, metavar="S", help="give up waiting after S s")
    group.add_argument("--json", action="store_true", help="print the report as JSON at the end")
    group.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _connect(args: argparse.Namespace) -> HwscoreClient:
    from app.client import HwscoreClient

    return HwscoreClient(args.server, args.key, retries=2)


def _runs(handler: Any) -> Any:
    """Turn HwscoreError and UsageError into one line on stderr and an exit code."""

    def run(args: argparse.Namespace) -> int:
        from app.client import HwscoreError

        try:
            with _connect(args) as client:
                code: int = handler(client, args)
                return code
        except UsageError as exc:
            return _fail(args, str(exc), EXIT_USAGE)
        except HwscoreError as exc:
            code = EXIT_USAGE if exc.status in _USAGE_STATUSES else EXIT_FAILED
            return _fail(args, exc.detail, code)

    return run


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    print(f"hwscore {args.command}: error: {' '.join(message.split())}", file=sys.stderr)
    return code


@_runs
def _submit(client: HwscoreClient, args: argparse.Namespace) -> int:
    from app.client_request import build_request

    body = build_request(args)
    if args.weights is not None:
        body = _with_uploaded_weights(client, body, args.weights)
    job = client.submit(body)
    print(job.id)
    if job.reused:
        _note(f"job {job.id}: the same study already ran on this server; its result is reused")
    if not args.wait:
        _note(f"job {job.id} is {job.status}; follow it with: hwscore wait {job.id}")
        return 0
    return _follow(client, job.id, args)


def _with_uploaded_weights(
    client: HwscoreClient, body: dict[str, Any], path: Path
) -> dict[str, Any]:
    """Upload the weights for the body's network and dataset; the body then names the
    model instead (a .pt state dict is read here with weights_only=True and sent as
    safetensors: the server takes no pickles)."""
    from hwmodels.specs import NetworkSpec
    from hwmodels.weights_file import WeightsError, read_safetensors, write_safetensors

    try:
        content = path.read_bytes()
        if content[8:9] != b"{":  # not safetensors: a PyTorch state dict, read safely
            from hwmodels.weights_load import read_weights_file  # imports torch

            content = write_safetensors(read_weights_file(path))
        read_safetensors(content)  # a damaged file is reported here, not by the server
    except (OSError, WeightsError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise UsageError(f"--weights {path}: {reason}") from None
    network = body.pop("network", None) or NetworkSpec().model_dump(mode="json")
    dataset = body.pop("dataset", "mnist")
    model = client.upload_model(content, network, dataset=dataset, name=path.name)
    _note(f"uploaded {path} as model {model['id']} ({model['parameters']:,} parameters)")
    return {**body, "model_id": model["id"]}


@_runs
def _wait(client: HwscoreClient, args: argparse.Namespace) -> int:
    return _follow(client, args.id, args)


def _follow(client: HwscoreClient, job_id: str, args: argparse.Namespace) -> int:
    """Draw the job's progress until it ends; then its result table, or why it did not."""
    bar = ProgressBar(sys.stderr, enabled=not args.quiet)
    seen: list[tuple[str, str | None, int | None]] = []

    def update(job: Job) -> None:
        state = (job.status.value, job.phase, job.epoch)
        bar.show(job.fraction, describe_job(job), milestone=not seen or seen[-1] != state)
        seen.append(state)

    try:
        job = client.wait(job_id, timeout_s=args.timeout, on_update=update)
    finally:
        bar.close()
    if job.status == JobStatus.SUCCEEDED:
        return _print_result(client, job.id, as_json=args.json)
    return _ended_badly(job)


def _ended_badly(job: Job) -> int:
    if job.error is not None:
        print(f"job {job.id} failed ({job.error.code}): {job.error.message}", file=sys.stderr)
    else:
        print(f"job {job.id} is {job.status}", file=sys.stderr)
    return EXIT_FAILED


@_runs
def _status(client: HwscoreClient, args: argparse.Namespace) -> int:
    job = client.job(args.id)
    if args.json:
        print(json.dumps(job.raw, indent=2))
        return 0
    print(f"{job.id}  {job.status}  {job.fraction:.0%}  {describe_job(job)}")
    if job.result is not None:
        print(summary_line(job.result))
    if job.error is not None:
        print(f"error {job.error.code}: {job.error.message}")
    return 0


@_runs
def _result(client: HwscoreClient, args: argparse.Namespace) -> int:
    return _print_result(client, args.id, as_json=args.json)


def _print_result(client: HwscoreClient, job_id: str, *, as_json: bool) -> int:
    report = client.result(job_id)
    print(report.model_dump_json(indent=2) if as_json else format_report(report))
    return 0


@_runs
def _download(client: HwscoreClient, args: argparse.Namespace) -> int:
    if args.name is not None:
        paths = [client.download(args.id, args.name, args.out)]
    else:
        paths = client.download_all(args.id, args.out)
    for path in paths:
        print(path)
    return 0


@_runs
def _jobs(client: HwscoreClient, args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be 1 or more")
    found = client.jobs(status=args.status, limit=args.limit)
    if args.json:
        print(json.dumps([job.raw for job in found], indent=2))
    elif not found:
        print("no jobs yet; submit one with: hwscore submit --preset rram-4bit", file=sys.stderr)
    else:
        header = ("id", "status", "progress", "dataset", "profile", "float", "hw-aware", "created")
        print(table([header, *(_job_row(job) for job in found)]))
    return 0


@_runs
def _cancel(client: HwscoreClient, args: argparse.Namespace) -> int:
    job = client.cancel(args.id)
    print(f"job {job.id} is {job.status}")
    return 0


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def describe_job(job: Job) -> str:
    """Status, phase and epoch in words, for the progress line."""
    parts = [str(job.status)]
    if job.phase and not job.done:
        parts.append(job.phase.replace("_", " "))
    if job.epoch is not None and not job.done:
        parts.append(f"epoch {job.epoch}")
    return "  ".join(parts)


def summary_line(summary: dict[str, Any]) -> str:
    """The job summary's one-line verdict (float / naive / hardware-aware, in percent)."""
    verdict = summary.get("verdict")
    if verdict:
        return str(verdict)
    naive = (summary.get("naive_pct") or {}).get("mean")
    aware = (summary.get("hardware_aware_pct") or {}).get("mean")
    return (
        f"float {_pct(summary.get('float_accuracy_pct'))}  naive {_pct(naive)}  "
        f"hardware-aware {_pct(aware)}"
    )


def _job_row(job: Job) -> tuple[str, ...]:
    spec = job.raw.get("spec") or {}
    summary = job.result or {}
    return (
        job.id,
        str(job.status),
        f"{job.fraction:.0%}",
        str(spec.get("dataset", "")),
        str((spec.get("profile") or {}).get("name", "")),
        _pct(summary.get("float_accuracy_pct")),
        _pct((summary.get("hardware_aware_pct") or {}).get("mean")),
        str(job.raw.get("created_at", ""))[:16].replace("T", " "),
    )


def _pct(value: Any) -> str:
    """A summary value, already in percent, for a table cell."""
    return f"{value:.2f}%" if isinstance(value, int | float) else "-"
