"""job recovery: when a job's message was sent, and leases for the recovery sweeper

Revision ID: a7c3d91e5b20
Revises: e2b0f733a183
Create Date: 2026-12-01 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a7c3d91e5b20"
down_revision = "e2b0f733a183"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing queued jobs get NULL: the first sweep sends them a message, which is
    # harmless if one is already waiting (the claim lets one delivery win).
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("leases")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("dispatched_at")
