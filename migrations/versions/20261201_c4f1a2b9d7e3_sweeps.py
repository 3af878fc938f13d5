"""robustness sweeps: the sweeps table, and the job columns that tie a job to one

Revision ID: c4f1a2b9d7e3
Revises: 5d1e8c2f4a90
Create Date: 2026-12-01 14:00:00

- sweeps: what the caller asked for (mode, axes, base study); status and progress are
  derived from its jobs.
- jobs.kind: "study" (every existing job) or "sweep-evaluate"; jobs.sweep_id: the sweep
  a job belongs to; jobs.sweep_points: the grid an evaluate-mode job scores.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c4f1a2b9d7e3"
down_revision = "5d1e8c2f4a90"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner_key", sa.String(length=36), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("axes", sa.JSON(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_key", "idempotency_key", name="uq_sweeps_owner_idempotency"),
    )
    op.create_index("ix_sweeps_owner_created", "sweeps", ["owner_key", "created_at", "id"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=20), nullable=False, server_default="study")
        )
        batch.add_column(sa.Column("sweep_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("sweep_points", sa.JSON(), nullable=True))
        batch.create_foreign_key(
            "fk_jobs_sweep_id_sweeps", "sweeps", ["sweep_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_jobs_sweep_id", ["sweep_id"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_sweep_id")
        batch.drop_constraint("fk_jobs_sweep_id_sweeps", type_="foreignkey")
        batch.drop_column("sweep_points")
        batch.drop_column("sweep_id")
        batch.drop_column("kind")
    op.drop_index("ix_sweeps_owner_created", table_name="sweeps")
    op.drop_table("sweeps")
