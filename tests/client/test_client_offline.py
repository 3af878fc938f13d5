"""The client without a server: import weight, retries, errors, and the submit body."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.client import HwscoreClient, HwscoreError
from app.client_commands import register
from app.client_request import build_request
from hwmodels.cli import OneLineParser, UsageError
from tests.conftest import REPO_ROOT


def test_importing_the_client_and_its_commands_does_not_import_torch() -> None:
    check = (
        "import sys, app.client, app.client_commands, app.client_request;"
        "heavy = {'torch', 'fastapi', 'sqlalchemy', 'celery'} & set(sys.modules);"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", check], check=True, cwd=REPO_ROOT)


def _client(
    *responses: httpx.Response, seen: list[httpx.Request], retries: int = 0
) -> HwscoreClient:
    answers = iter(responses)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(answers)

    transport = httpx.MockTransport(handle)
    return HwscoreClient("http://hwscore.test", "hws_k", transport=transport, retries=retries)


JOB = {"id": "j1", "status": "queued", "progress": {"fraction": 0.0}, "result": None, "error": None}
BUSY = {"type": "t", "title": "Too Many Requests", "status": 429, "detail": "you already have 4"}


def test_429_is_retried_after_retry_after_with_the_same_idempotency_key() -> None:
    seen: list[httpx.Request] = []
    busy = httpx.Response(429, json=BUSY, headers={"Retry-After": "0"})
    with _client(busy, httpx.Response(202, json=JOB), seen=seen, retries=1) as client:
        job = client.submit({"profile": {"preset": "ideal"}})
    assert job.id == "j1" and job.status == "queued" and not job.done
    assert [r.headers["Idempotency-Key"] for r in seen] == [seen[0].headers["Idempotency-Key"]] * 2
    assert seen[0].headers["Authorization"] == "Bearer hws_k"


def test_without_retries_a_429_raises_with_detail_status_and_retry_after() -> None:
    seen: list[httpx.Request] = []
    busy = httpx.Response(429, json=BUSY, headers={"Retry-After": "30"})
    with _client(busy, seen=seen) as client, pytest.raises(HwscoreError) as raised:
        client.submit({"profile": {"preset": "ideal"}})
    error = raised.value
    assert (error.status, error.detail, error.retry_after_s) == (429, "you already have 4", 30.0)
    assert error.problem["title"] == "Too Many Requests" and len(seen) == 1


def test_a_body_that_is_no_problem_document_still_gives_one_line() -> None:
    seen: list[httpx.Request] = []
    gateway = httpx.Response(502, text="<html>\n bad gateway\n</html>")
    with _client(gateway, seen=seen) as client, pytest.raises(HwscoreError) as raised:
        client.job("j1")
    assert raised.value.status == 502 and "\n" not in raised.value.detail
    assert "HTTP 502" in raised.value.detail and "bad gateway" in raised.value.detail


def test_an_unreachable_server_says_how_to_point_at_one() -> None:
    client = HwscoreClient("http://127.0.0.1:9", timeout_s=2)
    with client, pytest.raises(HwscoreError) as raised:
        client.jobs()
    assert raised.value.status is None
    assert "cannot reach the hwscore server at http://127.0.0.1:9" in raised.value.detail
    assert "HWSCORE_SERVER" in raised.value.detail


def _submit_args(*argv: str) -> argparse.Namespace:
    parser = OneLineParser(prog="hwscore")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["submit", *argv])


def test_flags_override_a_yaml_spec_file_field_by_field(tmp_path: Path) -> None:
    spec = tmp_path / "study.yaml"
    spec.write_text(
        "dataset: fashion-mnist\n"
        "profile:\n  preset: pcm-4bit\n  overrides: {noise: {read: 0.02}}\n"
        "training: {epochs: 3, strategy: annealed}\n"
    )
    body = build_request(
        _submit_args(str(spec), "--epochs", "1", "--set", "noise.programming=0.05", "--fresh")
    )
    assert body == {
        "dataset": "fashion-mnist",
        "profile": {
            "preset": "pcm-4bit",
            "overrides": {"noise": {"read": 0.02, "programming": 0.05}},
        },
        "training": {"epochs": 1, "strategy": "annealed"},
        "fresh": True,
    }


def test_flags_alone_make_a_body_and_set_edits_an_inline_profile(tmp_path: Path) -> None:
    assert build_request(_submit_args("--hidden", "16")) == {
        "network": {"hidden": [16]},
        "profile": {"preset": "ideal"},
    }
    chip = tmp_path / "chip.json"
    chip.write_text('{"name": "lab", "weights": {"bits": 3}}')
    body = build_request(_submit_args("--profile-file", str(chip), "--set", "weights.bits=2"))
    assert body["profile"] == {"inline": {"name": "lab", "weights": {"bits": 2}}}


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        ("[1, 2]", "s.json", "must hold an object"),
        ("{bad", "s.json", "is not valid JSON"),
        ("a: [1\n", "s.yml", "is not valid YAML"),
    ],
)
def test_bad_spec_files_are_one_usage_error(
    tmp_path: Path, content: str, name: str, expected: str
) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(UsageError, match=expected):
        build_request(_submit_args(str(tmp_path / name)))
