"""Clues from outside the monitoring data (alerts.clues), a township user's area, and the
evidence attached to cases and clues (alerts.evidence).

Revision ID: 0014_clues_evidence
Revises: 0013_kept_values
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_clues_evidence"
down_revision = "0013_kept_values"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "clues",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("external_ref", sa.String(100), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enterprise_id", sa.String(64), nullable=True, index=True),
        sa.Column("located", sa.String(12), nullable=False),
        sa.Column("longitude", sa.Float, nullable=True),
        sa.Column("latitude", sa.Float, nullable=True),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("area", sa.String(64), nullable=True, index=True),
        sa.Column("factor", sa.String(16), nullable=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("submitted_by", sa.String(64), nullable=False),
        sa.Column("submitter_role", sa.String(16), nullable=False),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id"), nullable=True, index=True),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("match", sa.Text, nullable=False),
        sa.Column("surroundings", sa.Text, nullable=False),
    )
    op.create_index("ux_clues_source_ref", "clues", ["source", "external_ref"], unique=True)
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("area", sa.String(64), nullable=True))
    op.create_table(
        "evidence_blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "evidence_chunks",
        sa.Column(
            "sha256", sa.String(64), sa.ForeignKey("evidence_blobs.sha256"), primary_key=True
        ),
        sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "attachments",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id"), nullable=True, index=True),
        sa.Column("clue_id", ID, sa.ForeignKey("clues.id"), nullable=True, index=True),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("evidence_blobs.sha256"), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("uploaded_by", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("attachments")
    op.drop_table("evidence_chunks")
    op.drop_table("evidence_blobs")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("area")
    op.drop_index("ux_clues_source_ref", table_name="clues")
    op.drop_table("clues")
