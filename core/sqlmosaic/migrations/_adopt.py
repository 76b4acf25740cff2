"""``adopt``: bring a database under sqlmosaic's migrations without running them.

Two starting points:

- created outside Alembic (``create_all``, by hand): no ``alembic_version`` row;
- under ANOTHER Alembic history (``foreign=True``): the application's own revisions in
  ``alembic_version``, none of which the loaded histories (the host's and the enabled plugins')
  know.

Either way the schema must already match the models of the enabled plugins exactly, constraint
and index names included (what ``mosaic db check`` would report); then ``alembic_version`` is
rewritten to the final heads, in one transaction with the comparison. Any difference refuses
the adoption with the list and writes nothing. Tables no enabled plugin owns (the foreign
application's others) are orphans: reported, never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection

from .._exceptions import MigrationError, SchemaDriftError
from .._metadata import table_owner
from ._branches import script_directory
from ._commands import _run
from ._diffs import describe_diffs
from ._naming import naming_problems
from ._setup import comparison_options, enabled_plugins, resolve_metadata

__all__ = ["Adoption", "adopt", "adopt_foreign"]


@dataclass(frozen=True)
class Adoption:
    """What :func:`adopt_foreign` did: the foreign revisions replaced, the revisions stamped."""

    replaced: tuple[str, ...]
    stamped: tuple[str, ...]


async def adopt(config: Config) -> tuple[str, ...]:
    """Stamp an unmanaged database at the heads if its schema matches the models.

    :returns: the revisions stamped.
    :raises MigrationError: already under Alembic, or none of the model tables exist.
    :raises SchemaDriftError: the schema differs from the models (``.diffs`` lists how).
    """
    return (await _adopt(config, foreign=False)).stamped


async def adopt_foreign(config: Config) -> Adoption:
    """Take over a database that another Alembic history manages: if its schema matches the
    models, replace its ``alembic_version`` rows by sqlmosaic's final heads (one transaction).

    :raises MigrationError: no ``alembic_version`` rows (use :func:`adopt`), or some recorded
        revision belongs to the loaded histories (use ``upgrade``), or none of the model tables
        exist.
    :raises SchemaDriftError: the schema differs from the models (``.diffs`` lists how); the
        foreign revisions stay as they were.
    """
    return await _adopt(config, foreign=True)


def _known(scripts: ScriptDirectory, revisions: tuple[str, ...]) -> list[str]:
    known: list[str] = []
    for rev in revisions:
        try:
            scripts.get_revision(rev)
        except CommandError:
            continue
        known.append(rev)
    return known


def _refuse_state(scripts: ScriptDirectory, at: tuple[str, ...], foreign: bool) -> None:
    if not foreign and at:
        hint = "use 'mosaic db upgrade' instead of adopt"
        if not _known(scripts, at):
            hint = (
                "none of them is in the loaded histories: if another Alembic history manages "
                "this database, adopt it with 'mosaic db adopt --from-foreign-history'"
            )
        raise MigrationError(f"the database is already under Alembic (at {', '.join(at)}): {hint}")
    if foreign and not at:
        raise MigrationError(
            "the database records no Alembic revision: nothing foreign to replace; use "
            "'mosaic db adopt' without --from-foreign-history"
        )
    known = _known(scripts, at) if foreign else []
    if known:
        raise MigrationError(
            f"the database records {', '.join(known)}, which the loaded histories contain: it is "
            "already under sqlmosaic's migrations; use 'mosaic db upgrade'"
        )


async def _adopt(config: Config, *, foreign: bool) -> Adoption:
    def call(sync: Connection) -> Adoption:
        # Plugin loading and script reading are synchronous: done here, off the caller's loop.
        metadata = resolve_metadata(config)
        enabled = enabled_plugins(config)
        options = comparison_options(metadata, enabled)
        scripts = script_directory(config)
        ours = not sync.in_transaction()
        try:
            ctx = MigrationContext.configure(sync, opts=options)
            at = ctx.get_current_heads()
            _refuse_state(scripts, at, foreign)
            found = describe_diffs(compare_metadata(ctx, metadata))
            missing = [line for line in found if line.startswith("add_table:")]
            if found and len(missing) == len(metadata.tables):
                raise MigrationError(
                    "the database has none of the models' tables: nothing to adopt; create the "
                    "schema with 'mosaic db upgrade'"
                )
            owned = [
                key
                for key, table in metadata.tables.items()
                if enabled is None or table_owner(table) in enabled
            ]
            found += naming_problems(sync, metadata, owned)
            if found:
                listing = "\n".join(f"  - {line}" for line in found)
                kept = f" (alembic_version still says {', '.join(at)})" if at else ""
                raise SchemaDriftError(
                    f"refusing to adopt: the database differs from the models in "
                    f"{len(found)} way(s){kept}; fix the schema (or the models) first:\n{listing}",
                    diffs=found,
                )
            command.stamp(config, "heads", purge=foreign)
            stamped = MigrationContext.configure(sync, opts=options).get_current_heads()
        except BaseException:
            if ours and sync.in_transaction():
                sync.rollback()
            raise
        if ours and sync.in_transaction():
            sync.commit()
        return Adoption(replaced=at, stamped=stamped)

    return await _run(config, call)
