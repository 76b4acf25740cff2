"""``adopt``: bring a database created outside Alembic (e.g. ``create_all``) under migrations.

The database must have no ``alembic_version`` row and must already match the models of the
enabled plugins exactly; then it is stamped at the script heads, in one transaction with the
comparison. Any difference refuses the adoption with the list (nothing is written).
"""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from .._exceptions import MigrationError, SchemaDriftError
from ._commands import _run, heads
from ._diffs import describe_diffs
from ._setup import comparison_options, enabled_plugins, resolve_metadata

__all__ = ["adopt"]


async def adopt(config: Config) -> tuple[str, ...]:
    """Stamp an unmanaged database at the heads if its schema matches the models.

    :returns: the revisions stamped.
    :raises MigrationError: already under Alembic, or none of the model tables exist.
    :raises SchemaDriftError: the schema differs from the models (``.diffs`` lists how).
    """

    def call(sync: Connection) -> tuple[str, ...]:
        # Plugin loading and script reading are synchronous: done here, off the caller's loop.
        metadata = resolve_metadata(config)
        options = comparison_options(metadata, enabled_plugins(config))
        targets = heads(config)
        ours = not sync.in_transaction()
        try:
            ctx = MigrationContext.configure(sync, opts=options)
            at = ctx.get_current_heads()
            if at:
                raise MigrationError(
                    f"the database is already under Alembic (at {', '.join(at)}): use "
                    "'mosaic db upgrade' instead of adopt"
                )
            found = describe_diffs(compare_metadata(ctx, metadata))
            missing = [line for line in found if line.startswith("add_table:")]
            if found and len(missing) == len(metadata.tables):
                raise MigrationError(
                    "the database has none of the models' tables: nothing to adopt; create the "
                    "schema with 'mosaic db upgrade'"
                )
            if found:
                listing = "\n".join(f"  - {line}" for line in found)
                raise SchemaDriftError(
                    f"refusing to adopt: the database differs from the models in "
                    f"{len(found)} way(s); fix the schema (or the models) first:\n{listing}",
                    diffs=found,
                )
            command.stamp(config, "heads")
        except BaseException:
            if ours and sync.in_transaction():
                sync.rollback()
            raise
        if ours and sync.in_transaction():
            sync.commit()
        return targets

    return await _run(config, call)
