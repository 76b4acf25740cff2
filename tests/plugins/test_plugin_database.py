"""Plugins against a real database (PostgreSQL and SQLite via the shipped sqlmosaic fixtures).

First-party plugins use ``mosaic_host``: the schema comes from the Alembic migrations (applied
once into a template) and each test runs inside a rolled-back outer transaction. The test-only
``notes`` plugin has no migrations: its test creates the merged schema in a new empty database.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mosaic_accounts import User, UserRepository
from mosaic_tasks import Project, ProjectRepository, Task, TaskRepository, TaskService
from sqlmosaic import ConfigurationError, ConflictError, InvalidQueryError, Mosaic, MosaicSettings

Install = Callable[..., list[Path]]


async def test_mosaic_repositories_are_found_by_class_and_by_key(mosaic_host: Mosaic) -> None:
    async with mosaic_host.unit_of_work() as uow:
        by_class = uow.repository(UserRepository)
        by_key = uow.repository("accounts.users")
        tasks = uow.repository("tasks.tasks")

        assert type(by_class) is UserRepository
        assert type(by_key) is UserRepository
        assert type(tasks) is TaskRepository
        assert by_class.session is by_key.session is tasks.session is uow.session
        assert type(mosaic_host.repository("tasks.projects", uow.session)) is ProjectRepository

        with pytest.raises(ConfigurationError, match=r"no repository 'tasks.nope'; registered: "):
            uow.repository("tasks.nope")

        class Unregistered(UserRepository):
            pass

        with pytest.raises(ConfigurationError, match=r"Unregistered is not registered"):
            uow.repository(Unregistered)


async def count(mosaic: Mosaic) -> tuple[int, int]:
    async with mosaic.unit_of_work(read_only=True) as uow:
        return (
            await uow.repository(UserRepository).count(),
            await uow.repository(TaskRepository).count(),
        )


async def test_tasks_service_uses_accounts_repository_in_one_unit_of_work(
    mosaic_host: Mosaic,
) -> None:
    before = await count(mosaic_host)

    async with mosaic_host.unit_of_work() as uow:
        user = await uow.repository("accounts.users").add(User(email="ada@example.com", name="Ada"))
        project = await uow.repository(ProjectRepository).add(Project(name="engine"))
        assert user.id is not None
        assert project.id is not None
        # TaskService reads the user through accounts' UserRepository on the SAME session:
        # the uncommitted user is visible to it.
        task = await TaskService(uow.session).create_task(
            project.id, "analytical engine", assignee_id=user.id, priority=3
        )
        page = await uow.repository(TaskRepository).open_for_user(user.id)

    assert [t.id for t in page.items] == [task.id]
    assert await count(mosaic_host) == (before[0] + 1, before[1] + 1)


async def test_one_unit_of_work_across_plugins_rolls_back_together(mosaic_host: Mosaic) -> None:
    before = await count(mosaic_host)

    async def doomed() -> None:
        async with mosaic_host.unit_of_work() as uow:
            user = await uow.repository(UserRepository).add(User(email="b@example.com", name="B"))
            project = await uow.repository(ProjectRepository).add(Project(name="doomed"))
            assert user.id is not None
            assert project.id is not None
            await TaskService(uow.session).create_task(project.id, "t", assignee_id=user.id)
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        await doomed()

    assert await count(mosaic_host) == before  # neither accounts' nor tasks' rows remain


async def test_inactive_user_rule_spans_both_plugins(mosaic_host: Mosaic) -> None:
    async with mosaic_host.unit_of_work() as uow:
        user = await uow.repository(UserRepository).add(
            User(email="gone@example.com", name="Gone", is_active=False)
        )
        project = await uow.repository(ProjectRepository).add(Project(name="p-inactive"))
        assert user.id is not None
        assert project.id is not None
        with pytest.raises(InvalidQueryError) as err:
            await TaskService(uow.session).create_task(project.id, "t", assignee_id=user.id)
        assert err.value.field == "assignee_id"
        # The failed nested unit (a SAVEPOINT) is undone; the outer one carries on.
        ok = await TaskService(uow.session).create_task(project.id, "unassigned")
        assert ok.assignee_id is None


async def test_own_registry_plugin_works_against_a_database(
    installed: Install, mosaic_empty_url: str
) -> None:
    installed("notes")
    from mosaic_test_notes import Note, NoteRepository

    settings = MosaicSettings(database_url=mosaic_empty_url, plugins=["accounts", "notes"])
    async with Mosaic(settings) as mosaic:
        async with mosaic.engine.begin() as conn:
            await conn.run_sync(mosaic.metadata.create_all)

        async with mosaic.unit_of_work() as uow:
            user = await uow.repository(UserRepository).add(User(email="n@example.com", name="N"))
            assert user.id is not None
            note = await uow.repository(NoteRepository).add(Note(author_id=user.id, slug="first"))
            assert note.id is not None
            assert [n.id for n in await uow.repository(NoteRepository).by_author(user.id)] == [
                note.id
            ]

        # The merged DDL carries the plugin's constraints under deterministic names.
        with pytest.raises(ConflictError) as err:
            async with mosaic.unit_of_work() as uow:
                await uow.repository("notes.notes").add(Note(author_id=user.id + 1000, slug="x"))
        assert err.value.kind == "foreign_key"
        with pytest.raises(ConflictError) as dup:
            async with mosaic.unit_of_work() as uow:
                await uow.repository(NoteRepository).add(Note(author_id=user.id, slug="first"))
        assert dup.value.kind == "unique"
        if mosaic.settings.backend == "postgresql":  # SQLite does not report constraint names
            assert err.value.constraint == "fk_note_author_id_user"
            assert dup.value.constraint == "uq_note_slug"

        # ON DELETE CASCADE from the cross-plugin foreign key.
        async with mosaic.unit_of_work() as uow:
            await uow.repository(UserRepository).delete(user.id)
        async with mosaic.unit_of_work() as uow:
            assert await uow.repository(NoteRepository).count() == 0


async def test_a_task_needs_an_existing_project(mosaic_host: Mosaic) -> None:
    async with mosaic_host.unit_of_work() as uow:
        with pytest.raises(ConflictError) as err:
            async with mosaic_host.unit_of_work(uow.session):
                await uow.repository(TaskRepository).add(Task(project_id=987654, title="orphan"))
        assert err.value.kind == "foreign_key"
