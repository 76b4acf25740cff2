"""``check`` flags constraint and index names that do not follow the naming convention."""

from __future__ import annotations

from sqlmosaic.migrations import check, stamp, upgrade

from .helpers import create_all, make_config


async def test_a_migrated_database_has_only_conventional_names(db_url: str) -> None:
    cfg = make_config(db_url)
    await upgrade(cfg)
    assert await check(cfg) == []


async def test_names_from_an_older_history_are_reported(db_url: str) -> None:
    # The schema as SQLModel's own metadata makes it (no naming convention), then recorded as
    # migrated: Alembic's comparison alone says nothing about primary and foreign key names.
    await create_all(db_url, metadata_of="sqlmodel")
    cfg = make_config(db_url)
    await stamp(cfg, "heads")
    found = await check(cfg)
    if db_url.startswith("postgresql"):
        pk = (
            "rename_constraint: primary key (id) on user is 'user_pkey', the naming convention "
            "says 'pk_user'"
        )
        fk = (
            "rename_constraint: foreign key (project_id) -> project on task is "
            "'task_project_id_fkey', the naming convention says 'fk_task_project_id_project'"
        )
    else:
        pk = (
            "rename_constraint: primary key (id) on user is unnamed, the naming convention says "
            "'pk_user'"
        )
        fk = (
            "rename_constraint: foreign key (project_id) -> project on task is unnamed, the "
            "naming convention says 'fk_task_project_id_project'"
        )
    assert pk in found
    assert fk in found
