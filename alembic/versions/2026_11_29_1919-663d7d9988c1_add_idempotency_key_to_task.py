"""add idempotency key to task

``task.idempotency_key`` (nullable, unique): the example hosts' ``POST /tasks`` stores the
client's ``Idempotency-Key`` there and creates with ``INSERT ... ON CONFLICT DO NOTHING``, so a
create retried after an unknown commit outcome finds its row instead of adding a second one.

Revision ID: 663d7d9988c1
Revises: eab1d300f7dd
Create Date: 2026-11-29 19:19:33.390400+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # autogenerate renders sqlmodel.sql.sqltypes.AutoString
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "663d7d9988c1"
down_revision: str | Sequence[str] | None = "eab1d300f7dd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a unique INDEX, not a constraint: SQLite adds it without rebuilding the table (no batch
    # mode, so ``mosaic db sql`` renders it offline too); ON CONFLICT uses either
    op.add_column(
        "task",
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    )
    op.create_index(op.f("ix_task_idempotency_key"), "task", ["idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_task_idempotency_key"), table_name="task")
    op.drop_column("task", "idempotency_key")
