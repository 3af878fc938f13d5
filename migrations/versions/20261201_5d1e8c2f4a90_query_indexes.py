"""indexes for the in-flight count and the job-duration metrics

Revision ID: 5d1e8c2f4a90
Revises: a7c3d91e5b20
Create Date: 2026-12-01 13:40:00

- ix_jobs_owner_status: count_in_flight (owner_key = ? AND status IN (...)) no longer
  reads every job a key ever made.
- ix_jobs_ran: the duration histogram of /metrics reads an index of the jobs that ran
  (partial: not reused), not the wide job rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "5d1e8c2f4a90"
down_revision = "a7c3d91e5b20"
branch_labels = None
depends_on = None

_NOT_REUSED = sa.text("reused_from IS NULL")


def upgrade() -> None:
    op.create_index("ix_jobs_owner_status", "jobs", ["owner_key", "status"])
    op.create_index(
        "ix_jobs_ran",
        "jobs",
        ["status", "finished_at", "started_at"],
        postgresql_where=_NOT_REUSED,
        sqlite_where=_NOT_REUSED,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_ran", table_name="jobs")
    op.drop_index("ix_jobs_owner_status", table_name="jobs")
