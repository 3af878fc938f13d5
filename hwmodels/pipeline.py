"""CONTRACT, to be implemented by the engine work.

run_study(spec: StudySpec, *, data_dir: Path | None = None,
          on_progress: ProgressCallback = no_progress,
          should_cancel: CancelCheck = never_cancel) -> StudyResult

StudyResult(report: RobustnessReport, artifacts: dict[str, bytes])  # keys: report.ARTIFACTS
Raises JobCancelled when should_cancel() answers True (checked between batches),
DatasetUnavailableError (hwmodels.datasets) when files are missing and cannot be fetched.
"""
