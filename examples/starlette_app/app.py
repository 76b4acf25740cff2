"""A Starlette host: no dependency injection, so handlers ask the request for the host.

The lifespan and the error mapping are the same as the FastAPI example's
(``sqlmosaic.integrations.starlette``); request bodies are validated with pydantic here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mosaic_accounts import AccountsService, UserRepository
from mosaic_tasks import Project, ProjectRepository, TaskRepository, TaskService
from sqlmosaic import Mosaic, Page
from sqlmosaic.integrations.starlette import (
    check_database,
    exception_handlers,
    get_mosaic,
    list_params,
    mosaic_lifespan,
)

BodyT = TypeVar("BodyT", bound=BaseModel)


class UserIn(BaseModel):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field(min_length=1, max_length=200)


class ProjectIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)


class TaskIn(BaseModel):
    project_id: int
    title: str = Field(min_length=1, max_length=300)
    priority: int = 0
    assignee_id: int | None = None


class Out(BaseModel):
    """Response base: read from ORM objects, timestamps in UTC (SQLite reads them back naive)."""

    model_config = ConfigDict(from_attributes=True)

    @field_validator("*", mode="after")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class UserOut(Out):  # no password_hash: response fields are listed, never copied wholesale
    id: int
    email: str
    name: str
    is_active: bool
    created_at: datetime


class ProjectOut(Out):
    id: int
    name: str
    description: str
    created_at: datetime


class TaskOut(Out):
    id: int
    project_id: int
    title: str
    status: str
    priority: int
    assignee_id: int | None
    created_at: datetime


async def _body(request: Request, schema: type[BodyT]) -> BodyT:
    return schema.model_validate_json(await request.body())


def _json(model: BaseModel, status_code: int = 200) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), status_code=status_code)


def _page(page: Page[Any], schema: type[Out]) -> JSONResponse:
    return JSONResponse(
        {
            "items": [schema.model_validate(item).model_dump(mode="json") for item in page.items],
            "limit": page.limit,
            "next_cursor": page.next_cursor,
            "total": page.total,
            "sort": list(page.sort),
        }
    )


def _path_id(request: Request, name: str) -> int:
    value = request.path_params[name]
    assert isinstance(value, int)  # the route converter ({name:int}) guarantees it
    return value


# --------------------------------------------------------------------------- users


async def create_user(request: Request) -> Response:
    body = await _body(request, UserIn)
    async with get_mosaic(request).session_factory() as session:
        user = await AccountsService(session).register(body.email, body.name)  # its own unit
    return _json(UserOut.model_validate(user), 201)


async def read_user(request: Request) -> Response:
    mosaic = get_mosaic(request)
    async with mosaic.session_factory() as session:
        user = await mosaic.repository(UserRepository, session).get(_path_id(request, "user_id"))
    return _json(UserOut.model_validate(user))


async def list_users(request: Request) -> Response:
    params = list_params(request, UserRepository)  # 400 naming the field, before any SQL
    mosaic = get_mosaic(request)
    async with mosaic.session_factory() as session:
        page = await params.fetch(mosaic.repository(UserRepository, session))
    return _page(page, UserOut)


# --------------------------------------------------------------------------- projects and tasks


async def create_project(request: Request) -> Response:
    body = await _body(request, ProjectIn)
    async with get_mosaic(request).unit_of_work() as uow:
        project = await uow.repository(ProjectRepository).add(Project(**body.model_dump()))
    return _json(ProjectOut.model_validate(project), 201)


async def create_task(request: Request) -> Response:
    body = await _body(request, TaskIn)
    # a retry with the same Idempotency-Key returns the first request's task (exactly-once)
    key = request.headers.get("idempotency-key")
    async with get_mosaic(request).session_factory() as session:
        task = await TaskService(session).create_task(
            body.project_id,
            body.title,
            assignee_id=body.assignee_id,
            priority=body.priority,
            idempotency_key=key,
        )
    return _json(TaskOut.model_validate(task), 201)


async def read_task(request: Request) -> Response:
    mosaic = get_mosaic(request)
    async with mosaic.session_factory() as session:
        task = await mosaic.repository(TaskRepository, session).get(_path_id(request, "task_id"))
    return _json(TaskOut.model_validate(task))


async def list_tasks(request: Request) -> Response:
    params = list_params(request, TaskRepository)
    mosaic = get_mosaic(request)
    async with mosaic.session_factory() as session:
        page = await params.fetch(mosaic.repository(TaskRepository, session))
    return _page(page, TaskOut)


async def health(request: Request) -> Response:
    await check_database(get_mosaic(request))  # database down: 503 with the typed body
    return JSONResponse({"status": "ok"})


async def validation_error(request: Request, exc: Exception) -> Response:
    """422 for a request body that does not match its schema."""
    assert isinstance(exc, ValidationError)
    errors = json.loads(exc.json(include_url=False, include_input=False))
    return JSONResponse({"error": "invalid_body", "detail": errors}, status_code=422)


def create_app(mosaic: Mosaic | None = None) -> Starlette:
    """A Starlette app over ``mosaic`` (default: one built from the environment)."""
    host = mosaic if mosaic is not None else Mosaic()
    return Starlette(
        routes=[
            Route("/users", create_user, methods=["POST"]),
            Route("/users", list_users, methods=["GET"]),
            Route("/users/{user_id:int}", read_user, methods=["GET"]),
            Route("/projects", create_project, methods=["POST"]),
            Route("/tasks", create_task, methods=["POST"]),
            Route("/tasks", list_tasks, methods=["GET"]),
            Route("/tasks/{task_id:int}", read_task, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=mosaic_lifespan(host),
        exception_handlers={**exception_handlers(), ValidationError: validation_error},
    )
