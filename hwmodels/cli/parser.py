"""The engine commands' arguments, and a parser whose usage errors fit on one line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from hwmodels.architectures import ARCHITECTURES
from hwmodels.cli.commands import EXIT_USAGE, run_profiles, run_train
from hwmodels.datasets.catalog import DATASETS
from hwmodels.specs import COMPUTE_DTYPE_NAMES, EvaluationSettings, TrainingSettings

TRAINING_FLAGS: list[tuple[str, str, type]] = [
    ("--epochs", "epochs", int),
    ("--hw-epochs", "hw_epochs", int),
    ("--stages", "stages", int),
    ("--batch-size", "batch_size", int),
    ("--lr", "learning_rate", float),
    ("--hw-lr", "hw_learning_rate", float),
    ("--seed", "seed", int),
    ("--validation-fraction", "validation_fraction", float),
]


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, like every other input error.

    argparse prints the whole usage block before the error; a newcomer then has to find
    the one line that matters. Here it is the only line, with a pointer to ``--help``.
    Subparsers inherit the class (argparse creates them with ``type(self)``).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def register(subparsers: Any) -> None:
    """Add ``train`` and ``profiles`` to an argparse subparsers object (``func`` = handler)."""
    train = subparsers.add_parser(
        "train",
        help="train a network and score it on simulated hardware",
        description="Train an MLP in float, deploy it naively on simulated chips, train it "
        "hardware-aware, and compare accuracy over Monte Carlo chips.",
    )
    add_study_arguments(train, local=True)
    output = train.add_argument_group("output")
    output.add_argument("--out", type=Path, metavar="DIR", help="write the artifacts here")
    output.add_argument(
        "--json", action="store_true", help="print only the report as JSON on stdout"
    )
    output.add_argument("--quiet", action="store_true", help="no progress on stderr")
    train.set_defaults(func=run_train)

    profiles = subparsers.add_parser(
        "profiles",
        help="list the hardware presets",
        description="List the named hardware presets a study can start from.",
    )
    profiles.add_argument("--json", action="store_true", help="print full profiles as JSON")
    profiles.set_defaults(func=run_profiles)


def add_study_arguments(parser: argparse.ArgumentParser, *, local: bool) -> None:
    """The flags that describe a study; ``hwscore submit`` shares them (``local=False``).

    Every default is None ("not given"), so a flag only overrides what was given: the
    spec's own defaults, or a spec file's values for ``submit``.
    """
    data = parser.add_argument_group("data and network")
    data.add_argument("--dataset", help=f"one of: {', '.join(DATASETS)} (default: mnist)")
    data.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        metavar="WIDTH",
        help="hidden layer widths, e.g. --hidden 256 128 (default: 256 128)",
    )
    data.add_argument(
        "--architecture",
        choices=sorted(ARCHITECTURES),
        help="a named network instead of --hidden, e.g. lenet5 (a conv net)",
    )
    if local:
        data.add_argument(
            "--data-dir",
            type=Path,
            help="dataset folder (default: $HWSCORE_DATA_DIR, else ~/.cache/hwscore/data)",
        )
    data.add_argument(
        "--weights",
        type=Path,
        metavar="FILE",
        help="trained float weights to score instead of training in float: safetensors, or "
        "a PyTorch state dict (read with weights_only=True); names layers.<i>.weight/bias "
        "or nn.Sequential's",
    )
    data.add_argument("--train-samples", type=int, help="use only the first N training images")
    data.add_argument("--test-samples", type=int, help="use only the first N test images")

    hardware = parser.add_argument_group("hardware profile")
    choice = hardware.add_mutually_exclusive_group()
    choice.add_argument("--preset", help="named hardware preset, see `profiles` (default: ideal)")
    choice.add_argument("--profile-file", type=Path, help="a JSON hardware profile")
    hardware.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one profile field, e.g. --set noise.programming=0.05 (repeatable)",
    )
    _add_training_arguments(parser.add_argument_group("training and evaluation"))


def _add_training_arguments(group: Any) -> None:
    for flag, field, kind in TRAINING_FLAGS:
        default = TrainingSettings.model_fields[field].default
        help_text = TrainingSettings.model_fields[field].description or field.replace("_", " ")
        group.add_argument(flag, dest=field, type=kind, help=f"{help_text} (default: {default})")
    group.add_argument(
        "--strategy",
        choices=["ste", "annealed"],
        help=f"hardware-aware training (default: {TrainingSettings().strategy})",
    )
    group.add_argument(
        "--no-noise-injection",
        dest="noise_injection",
        action="store_false",
        default=None,
        help="do not draw programming noise during hardware-aware training",
    )
    evaluation = EvaluationSettings()
    group.add_argument("--chips", type=int, help=f"simulated chips (default: {evaluation.chips})")
    group.add_argument(
        "--compute-dtype",
        choices=COMPUTE_DTYPE_NAMES,
        help=f"precision of the Monte Carlo evaluation (default: {evaluation.compute_dtype})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m hwmodels",
        description="hwscore's engine without a server: train and score networks for "
        "non-ideal neuromorphic hardware.",
    )
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0), or a usage error already printed (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return code
