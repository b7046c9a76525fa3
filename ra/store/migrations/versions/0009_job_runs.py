"""job runs and background CSV imports

Table ``job_runs``: one row per run of a scheduled job, whoever started it (the scheduler, ``shomei
ra run-job`` or "run now" in the console), with its outcome (ok, attention, failed) and a
short summary; the 連携 screen shows each job's last runs.  The ``deletion`` job drops rows older
than 90 days.

Table ``import_runs``: a CSV import of office and agent accounts that a worker (the scheduler
process) carries out in the background: the checked rows, the status (queued, running, done,
failed), the progress and the worker's lease.  Finished runs older than 90 days are dropped by the
``deletion`` job too.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", _enum("job_outcome", "ok", "attention", "failed"), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("summary_ja", sa.Text(), nullable=False),
        sa.Column("trigger", _enum("job_trigger", "scheduler", "cli", "console"), nullable=False),
        sa.Column("ran_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    op.create_index("ix_job_runs_job_started", "job_runs", ["job", "started_at", "id"])
    op.create_index("ix_job_runs_started_at", "job_runs", ["started_at"])
    op.create_table(
        "import_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            _enum("import_status", "queued", "running", "done", "failed"),
            nullable=False,
        ),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("started_by", sa.Integer(), nullable=False),
        sa.Column("source_address", sa.String(length=64), nullable=True),
        sa.Column("rows", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_ja", sa.Text(), nullable=True),
        sa.Column("letters_token", sa.String(length=32), nullable=True),
        sa.CheckConstraint(
            "done >= 0 AND done <= total", name=op.f("ck_import_runs_done_in_range")
        ),
        sa.ForeignKeyConstraint(
            ["started_by"], ["accounts.id"], name=op.f("fk_import_runs_started_by_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_runs")),
    )
    op.create_index("ix_import_runs_status", "import_runs", ["status", "id"])


def downgrade() -> None:
    op.drop_index("ix_import_runs_status", table_name="import_runs")
    op.drop_table("import_runs")
    op.drop_index("ix_job_runs_started_at", table_name="job_runs")
    op.drop_index("ix_job_runs_job_started", table_name="job_runs")
    op.drop_table("job_runs")
