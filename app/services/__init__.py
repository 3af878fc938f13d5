"""Use cases behind the HTTP API: job submission, cancellation and task dispatch."""
