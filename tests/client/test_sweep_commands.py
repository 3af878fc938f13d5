"""``hwscore sweep``'s own parsing and printing (the server does the validation)."""

from __future__ import annotations

import pytest

from app.client_sweep_commands import format_sweep, parse_axis
from hwmodels.cli import UsageError


def test_axis_flags_become_axes_with_typed_values() -> None:
    assert parse_axis("weight_bits=2,4,8") == {"parameter": "weight_bits", "values": [2, 4, 8]}
    assert parse_axis("programming_noise=0,0.05") == {
        "parameter": "programming_noise",
        "values": [0.0, 0.05],
    }
    with pytest.raises(UsageError, match="PARAMETER one of weight_bits"):
        parse_axis("bits=2,4")
    with pytest.raises(UsageError, match="whole numbers"):
        parse_axis("weight_bits=2,4.5")


def test_a_sweep_prints_as_a_table_then_its_statements() -> None:
    point = {
        "values": {"weight_bits": 4},
        "float_pct": 97.5,
        "naive_pct": 90.25,
        "naive_std_pp": 1.0,
        "hardware_aware_pct": None,
        "hardware_aware_std_pp": None,
        "status": "running",
    }
    sweep = {
        "id": "s1",
        "mode": "retrain",
        "status": "running",
        "axes": [{"parameter": "weight_bits", "values": [4]}],
        "curve": [point],
        "robustness": [{"statement": "The naive model stays within 1 pp."}],
    }
    lines = format_sweep(sweep).splitlines()
    assert lines[0] == "sweep s1: retrain, running"
    assert lines[2].split() == ["4", "97.50", "90.25", "1.00", "—", "—", "running"]
    assert lines[-1] == "The naive model stays within 1 pp."
