"""Projects and tasks (plugin ``tasks``; assignees are ``accounts`` users).

Task writes go through ``TaskService`` (it checks the project and that an assignee is an active
user, through ``accounts``' repository, in the same unit of work).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response

from mosaic_tasks import Project, ProjectRepository, Task, TaskRepository, TaskService
from mosaic_tasks.models import IDEMPOTENCY_KEY_LENGTH
from sqlmosaic.integrations.fastapi import (
    ListParams,
    MosaicDep,
    SessionDep,
    list_query,
    repository_dependency,
)

from .schemas import (
    PageOut,
    ProjectCreate,
    ProjectRead,
    ProjectUpdate,
    TaskCreate,
    TaskRead,
    TaskUpdate,
    page_of,
)

router = APIRouter()

Projects = Annotated[ProjectRepository, Depends(repository_dependency(ProjectRepository))]
Tasks = Annotated[TaskRepository, Depends(repository_dependency(TaskRepository))]
ProjectList = Annotated[ListParams, Depends(list_query(ProjectRepository))]
TaskList = Annotated[ListParams, Depends(list_query(TaskRepository))]


def _changes(
    body: ProjectUpdate | TaskUpdate, nullable: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The fields the client sent; ``null`` only counts for nullable columns."""
    values = body.model_dump(mode="json", exclude_unset=True)
    return {k: v for k, v in values.items() if v is not None or k in nullable}


# --------------------------------------------------------------------------- projects


@router.post("/projects", status_code=201, tags=["projects"])
async def create_project(
    body: ProjectCreate, session: SessionDep, mosaic: MosaicDep
) -> ProjectRead:
    async with mosaic.unit_of_work(session) as uow:
        project = await uow.repository(ProjectRepository).add(Project(**body.model_dump()))
    return ProjectRead.model_validate(project)


@router.get("/projects", tags=["projects"])
async def list_projects(projects: Projects, params: ProjectList) -> PageOut[ProjectRead]:
    return page_of(await params.fetch(projects), ProjectRead.model_validate)


@router.get("/projects/{project_id}", tags=["projects"])
async def read_project(project_id: int, projects: Projects) -> ProjectRead:
    return ProjectRead.model_validate(await projects.get(project_id))


@router.patch("/projects/{project_id}", tags=["projects"])
async def update_project(
    project_id: int, body: ProjectUpdate, session: SessionDep, mosaic: MosaicDep
) -> ProjectRead:
    values = _changes(body)
    async with mosaic.unit_of_work(session) as uow:
        projects = uow.repository(ProjectRepository)
        project = (
            await projects.update(project_id, values) if values else await projects.get(project_id)
        )
    return ProjectRead.model_validate(project)


@router.delete("/projects/{project_id}", status_code=204, tags=["projects"])
async def delete_project(project_id: int, session: SessionDep, mosaic: MosaicDep) -> Response:
    async with mosaic.unit_of_work(session) as uow:  # its tasks go too (ON DELETE CASCADE)
        await uow.repository(ProjectRepository).delete(project_id)
    return Response(status_code=204)


# --------------------------------------------------------------------------- tasks


@router.post("/tasks", status_code=201, tags=["tasks"])
async def create_task(
    body: TaskCreate,
    session: SessionDep,
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=IDEMPOTENCY_KEY_LENGTH)
    ] = None,
) -> TaskRead:
    """Create a task. Send an ``Idempotency-Key`` header (a UUID, say) to make a retry safe:
    the same key returns the task the first request created, never a second one."""
    task = await TaskService(session).create_task(
        body.project_id,
        body.title,
        assignee_id=body.assignee_id,
        priority=body.priority,
        idempotency_key=idempotency_key,
    )
    return TaskRead.model_validate(task)


@router.get("/tasks", tags=["tasks"])
async def list_tasks(tasks: Tasks, params: TaskList) -> PageOut[TaskRead]:
    return page_of(await params.fetch(tasks), TaskRead.model_validate)


@router.get("/tasks/{task_id}", tags=["tasks"])
async def read_task(task_id: int, tasks: Tasks) -> TaskRead:
    return TaskRead.model_validate(await tasks.get(task_id))


@router.patch("/tasks/{task_id}", tags=["tasks"])
async def update_task(
    task_id: int, body: TaskUpdate, session: SessionDep, mosaic: MosaicDep
) -> TaskRead:
    values = _changes(body, nullable=frozenset({"assignee_id"}))
    async with mosaic.unit_of_work(session) as uow:
        service = TaskService(uow.session)
        task: Task = await uow.repository(TaskRepository).get(task_id)  # 404 first
        assignee = values.get("assignee_id")
        if assignee is not None:
            del values["assignee_id"]
        if values:
            task = await service.tasks.update(task, values)
        if assignee is not None:
            # The service's rule: only active users get tasks (a nested unit: SAVEPOINT). If it
            # refuses, the whole request's unit of work rolls back, the update above included.
            task = await service.assign(task_id, assignee)
    return TaskRead.model_validate(task)


@router.delete("/tasks/{task_id}", status_code=204, tags=["tasks"])
async def delete_task(task_id: int, session: SessionDep, mosaic: MosaicDep) -> Response:
    async with mosaic.unit_of_work(session) as uow:
        await uow.repository(TaskRepository).delete(task_id)
    return Response(status_code=204)
