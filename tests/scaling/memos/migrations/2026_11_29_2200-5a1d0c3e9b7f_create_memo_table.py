"""create memo table

Revision ID: 5a1d0c3e9b7f
Revises:
Create Date: 2026-11-29 22:00:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # autogenerate renders sqlmodel.sql.sqltypes.AutoString
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5a1d0c3e9b7f"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("memos",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "memo",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("author_email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memo")),
        info={"mosaic_plugin": "memos"},
    )
    with op.batch_alter_table("memo", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_memo_author_email"), ["author_email"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("memo", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_memo_author_email"))
    op.drop_table("memo")
