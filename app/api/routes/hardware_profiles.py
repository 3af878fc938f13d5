"""Hardware profile presets: what each one models and where its numbers come from."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.errors import ApiProblem
from app.schemas import API_PREFIX, HardwarePresetOut, Problem
from hwmodels.profile import PRESETS, UnknownPresetError, get_preset

router = APIRouter(prefix=f"{API_PREFIX}/hardware-profiles", tags=["hardware-profiles"])


@router.get("", response_model=list[HardwarePresetOut])
def list_hardware_profiles() -> list[HardwarePresetOut]:
    """All presets, with description, source and parameters."""
    return [HardwarePresetOut.from_profile(profile) for profile in PRESETS.values()]


@router.get(
    "/{name}",
    response_model=HardwarePresetOut,
    responses={404: {"model": Problem, "content": {"application/problem+json": {}}}},
)
def get_hardware_profile(name: str) -> HardwarePresetOut:
    """One preset by name."""
    try:
        return HardwarePresetOut.from_profile(get_preset(name))
    except UnknownPresetError as exc:
        raise ApiProblem(404, str(exc)) from None
