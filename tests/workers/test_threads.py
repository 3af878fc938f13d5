"""Torch threads per worker pool process: a share of the cores, unless configured."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

from app.core.config import Settings
from workers.celery_app import celery_app
from workers.tasks import configure_torch_threads


@pytest.fixture
def restore_threads() -> Iterator[None]:
    threads, concurrency = torch.get_num_threads(), celery_app.conf.worker_concurrency
    yield
    torch.set_num_threads(threads)
    celery_app.conf.worker_concurrency = concurrency


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@pytest.mark.parametrize("concurrency", [1, 2, 3, 64])
def test_pool_processes_share_the_cores(restore_threads: None, concurrency: int) -> None:
    celery_app.conf.worker_concurrency = concurrency
    expected = max(1, _cores() // concurrency)
    assert configure_torch_threads(Settings(torch_threads=None)) == expected
    assert torch.get_num_threads() == expected


def test_configured_threads_override_the_share(restore_threads: None) -> None:
    celery_app.conf.worker_concurrency = 4
    assert configure_torch_threads(Settings(torch_threads=3)) == 3
    assert torch.get_num_threads() == 3
