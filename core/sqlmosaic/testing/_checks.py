"""Migration checks a project can run in its own test suite.

Each takes the host's Alembic ``Config`` (``sqlmosaic.migrations.alembic_config(ini, url=...)``)
pointed at a database (an EMPTY one where stated: fixture ``mosaic_empty_url``), runs in a worker
thread on its own event loop (call them from sync tests) and raises
:class:`~sqlmosaic.MigrationError` (or :class:`~sqlmosaic.SchemaDriftError`) naming the culprit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from .._exceptions import MigrationError
from ._template import run_in_thread

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import Script
    from sqlalchemy.engine import Connection

    from ..migrations import AppliedRevision

__all__ = [
    "MigrationData",
    "check_models_match",
    "check_single_head",
    "check_stairway",
    "check_upgrade_from_empty",
]

#: Data for one revision: ``{table: [row, ...]}`` or ``callable(sync_connection)``.
MigrationData: TypeAlias = (
    "Mapping[str, Sequence[Mapping[str, Any]]] | Callable[[Connection], None]"
)


def _label(script: Script) -> str:
    doc = (script.doc or "").strip().splitlines()
    return f"{script.revision}{f' ({doc[0]!r})' if doc else ''}"


def check_single_head(config: Config) -> tuple[str, ...]:
    """Every branch has exactly one head (no database needed); returns the heads.

    Heads are grouped by their branch labels (inherited from the labelled ancestor); two heads
    in one group mean two unmerged lines of development: ``alembic merge`` them.
    """
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(config)
    heads = tuple(scripts.get_heads())
    if not heads:
        raise MigrationError(f"no migration scripts in {scripts.dir}")
    by_branch: dict[frozenset[str], list[str]] = {}
    for head in heads:
        script = scripts.get_revision(head)
        assert script is not None
        by_branch.setdefault(frozenset(script.branch_labels), []).append(head)
    problems = [
        f"branch {', '.join(sorted(labels)) or '(unlabelled)'} has {len(revs)} heads: "
        f"{', '.join(sorted(revs))}"
        for labels, revs in sorted(by_branch.items(), key=lambda kv: sorted(kv[0]))
        if len(revs) > 1
    ]
    if problems:
        raise MigrationError(
            "multiple heads: " + "; ".join(problems) + " (merge them with `alembic merge`)",
            revision=by_branch[next(k for k, v in by_branch.items() if len(v) > 1)][0],
        )
    return heads


def check_upgrade_from_empty(config: Config) -> list[AppliedRevision]:
    """An empty database upgrades to the heads in one run; returns the revisions applied."""
    from ..migrations import current, final_heads_of, upgrade

    async def run() -> list[AppliedRevision]:
        if at := await current(config):
            raise MigrationError(f"upgrade-from-empty needs an empty database; it is at {at}")
        applied = await upgrade(config, "heads")
        # a head another revision depends on is applied but not recorded (plugin branches)
        now, expected = await current(config), final_heads_of(config)
        if set(now) != set(expected):
            raise MigrationError(
                f"after `upgrade heads` the database is at {', '.join(now) or 'base'}, "
                f"not at the heads {', '.join(expected)}"
            )
        return applied

    return run_in_thread(run)


def check_models_match(config: Config) -> None:
    """After upgrading to the heads, the schema equals the enabled plugins' models.

    :raises SchemaDriftError: listing every difference (a model changed without a migration,
        or a migration that does not produce the model).
    """
    from ..migrations import check, current, drift_error, final_heads_of, upgrade

    async def run() -> None:
        if set(await current(config)) != set(final_heads_of(config)):
            await upgrade(config, "heads")
        found = await check(config)
        if found:
            raise drift_error(found)

    run_in_thread(run)


def check_stairway(config: Config, data: Mapping[str, MigrationData] | None = None) -> list[str]:
    """Walk every revision from an EMPTY database: upgrade to it, insert ``data[revision]``
    (if any), downgrade one step (``<revision>@-1``), upgrade again; finally downgrade to base,
    which must leave no table but ``alembic_version``. Returns the revisions, in order.

    Catches downgrades that do not undo their upgrade (the second upgrade fails), downgrades
    that fail with rows present, and upgrades that only work on empty tables.
    """
    from alembic.script import ScriptDirectory

    from ..migrations import current, downgrade, upgrade
    from ..migrations._setup import VERSION_TABLE, create_migration_engine, resolve_settings

    scripts = ScriptDirectory.from_config(config)
    order = list(reversed(list(scripts.walk_revisions("base", "heads"))))
    rows = dict(data or {})
    unknown = sorted(set(rows) - {s.revision for s in order})
    if unknown:
        raise MigrationError(f"migration data for unknown revision(s): {', '.join(unknown)}")

    async def run() -> list[str]:
        from sqlalchemy import inspect

        if at := await current(config):
            raise MigrationError(f"the stairway check needs an empty database; it is at {at}")
        engine = create_migration_engine(resolve_settings(config))
        try:
            for script in order:
                rev, step = script.revision, "upgrade"
                try:
                    await upgrade(config, rev)
                    if rev in rows:
                        step = "inserting the test data after the upgrade"
                        async with engine.begin() as conn:
                            await conn.run_sync(_insert, rows[rev])
                    step = "downgrade (with the data present)"
                    await downgrade(config, f"{rev}@-1")
                    step = "second upgrade (after the downgrade)"
                    await upgrade(config, rev)
                except Exception as exc:
                    raise MigrationError(
                        f"stairway: {step} of revision {_label(script)} failed: "
                        f"{type(exc).__name__}: {exc}",
                        revision=rev,
                    ) from exc
            await downgrade(config, "base")
            async with engine.connect() as conn:
                left = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
            left = sorted(set(left) - {VERSION_TABLE})
            if left:
                raise MigrationError(f"downgrade to base leaves table(s) {', '.join(left)}")
        finally:
            await engine.dispose()
        return [s.revision for s in order]

    return run_in_thread(run)


def _insert(sync: Connection, data: MigrationData) -> None:
    if callable(data):
        data(sync)
        return
    from sqlalchemy import MetaData, Table

    metadata = MetaData()
    for table_name, table_rows in data.items():
        if table_rows:
            table = Table(table_name, metadata, autoload_with=sync)
            sync.execute(table.insert(), [dict(row) for row in table_rows])
