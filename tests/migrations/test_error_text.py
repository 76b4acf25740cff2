"""MigrationError text never carries bound values (issue 12, item 5).

The runtime used to copy the driver's first line, which for a data error names the value
("invalid input syntax for type integer: \\"...\\"", asyncpg's "invalid input for query argument
$1: '...'"). A data error is now described by its SQLSTATE only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlmosaic import MigrationError
from sqlmosaic.migrations import upgrade

from .helpers import HEAD, add_revision, make_config

SECRET = "zz-migration-" + "secret-4242"

_REVISION = '''
"""cast a bound value"""
import sqlalchemy as sa
from alembic import op

revision = "r2badvalue"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.get_bind().execute(sa.text("{sql}"), {{"v": "{secret}"}})


def downgrade() -> None:
    pass
'''


@pytest.mark.parametrize(
    ("sql", "sqlstate"),
    [
        # asyncpg refuses the str for an int parameter client-side: DataError, SQLSTATE 22000,
        # text "invalid input for query argument $1: '<the value>'"
        ("SELECT CAST(:v AS integer)", "SQLSTATE 22"),
        # the value travels as text and the server's cast rejects it: 22P02,
        # text 'invalid input syntax for type integer: "<the value>"'
        ("SELECT CAST(CAST(:v AS text) AS integer)", "SQLSTATE 22P02"),
    ],
    ids=["client-side", "server-side"],
)
async def test_a_data_error_in_a_migration_names_no_value(
    pg_url: str, scripts: Path, sql: str, sqlstate: str
) -> None:
    add_revision(scripts, "r2_badvalue", _REVISION.format(head=HEAD, sql=sql, secret=SECRET))
    cfg = make_config(pg_url, scripts)
    with pytest.raises(MigrationError) as caught:
        await upgrade(cfg)
    message = str(caught.value)
    assert caught.value.revision == "r2badvalue"
    assert sqlstate in message
    assert SECRET not in message
