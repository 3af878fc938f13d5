"""uploaded models: trained float weights a caller uploaded, scored by jobs naming them

Revision ID: 8b6d0e4f2a17
Revises: c4f1a2b9d7e3
Create Date: 2026-12-02 10:00:00

- models: the owner, the network and dataset the weights were checked against, and the
  weights in hwscore's canonical safetensors form with their SHA-256. A job refers to
  one through its spec (start_from.model_id), so the jobs table is unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "8b6d0e4f2a17"
down_revision = "c4f1a2b9d7e3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner_key", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("dataset", sa.String(length=40), nullable=False),
        sa.Column("network", sa.JSON(), nullable=False),
        sa.Column("parameters", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_models_owner_created", "models", ["owner_key", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_models_owner_created", table_name="models")
    op.drop_table("models")
