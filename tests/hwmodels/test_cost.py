"""The cost estimate: the documented formula, and the budget a time limit allows."""

from __future__ import annotations

from hwmodels.cost import PASSES_PER_SECOND, budget_for, estimate_cost, over_budget
from hwmodels.specs import StudySpec

THREE_HOURS = 3 * 3600


def test_the_estimate_is_the_documented_formula() -> None:
    spec = StudySpec.model_validate(
        {
            "dataset": "fashion-mnist",
            "network": {"hidden": [100]},
            "training": {"epochs": 3, "hw_epochs": 2, "train_samples": 5000},
            "evaluation": {"chips": 7},
        }
    )
    parameters = 784 * 100 + 100 + 100 * 10 + 10
    cost = estimate_cost(spec)
    assert [part.passes for part in cost.parts] == [
        5000 * 3 * parameters,
        5000 * 2 * parameters,
        7 * 10_000 * parameters,  # test_samples null: the whole test split
    ]
    assert cost.total == 5000 * (3 + 2) * parameters + 7 * 10_000 * parameters
    assert cost.largest.name == "chip evaluation"


def test_the_default_study_fits_the_default_budget_with_room() -> None:
    cost = estimate_cost(StudySpec()).total
    assert budget_for(THREE_HOURS) == THREE_HOURS * PASSES_PER_SECOND
    assert cost * 10 < budget_for(THREE_HOURS)
    assert over_budget(estimate_cost(StudySpec()), budget_for(THREE_HOURS)) is None


def test_over_budget_names_the_largest_part_and_its_knobs() -> None:
    spec = StudySpec.model_validate(
        {"network": {"hidden": [1000]}, "training": {"epochs": 2, "hw_epochs": 40}}
    )
    message = over_budget(estimate_cost(spec), budget_for(60))
    assert message is not None
    assert "over this server's budget of 1 min" in message
    assert "the largest part is hardware-aware training (60,000 training samples x 40 " in message
    assert "lower training.hw_epochs or training.train_samples" in message
