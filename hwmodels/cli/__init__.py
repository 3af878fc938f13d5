"""The engine's command line: ``train`` a network for a hardware profile, list ``profiles``.

No server is involved: ``train`` runs ``hwmodels.pipeline.run_study`` in this process,
draws its progress on stderr and prints the result (a table, or the report as JSON).
``register`` adds both commands to another program's parser (``app/cli.py`` does);
``main`` runs them alone (``python -m hwmodels``). Importing this package does not import
torch: the pipeline is imported when ``train`` runs.

One module per job: ``parser`` (arguments, one-line usage errors), ``spec`` (arguments to
a validated StudySpec), ``commands`` (what each command does), ``progress`` (the bar and
its time estimate), ``output`` (tables).

Exit codes: 0 done, 1 the study could not run (e.g. data unavailable), 2 bad input.
"""

from hwmodels.cli.commands import EXIT_FAILED, EXIT_USAGE, run_profiles, run_train
from hwmodels.cli.output import format_report, table
from hwmodels.cli.parser import OneLineParser, add_study_arguments, build_parser, main, register
from hwmodels.cli.progress import ProgressBar, format_duration
from hwmodels.cli.spec import UsageError, build_spec, parse_overrides

__all__ = [
    "EXIT_FAILED",
    "EXIT_USAGE",
    "OneLineParser",
    "ProgressBar",
    "UsageError",
    "add_study_arguments",
    "build_parser",
    "build_spec",
    "format_duration",
    "format_report",
    "main",
    "parse_overrides",
    "register",
    "run_profiles",
    "run_train",
    "table",
]
