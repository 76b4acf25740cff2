"""``POST /tasks`` with an ``Idempotency-Key``: a retried create returns the first task.

The recipe of docs/reliability.md in the example hosts: after ``commit_outcome_unknown`` (or a
dropped response) the client sends the same request with the same key, and exactly one task
exists. On both hosts and both backends.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from hosts_support import client_for
from starlette.applications import Starlette

from mosaic_tasks import TaskRepository
from sqlmosaic import CommitOutcomeUnknownError, Mosaic
from sqlmosaic.integrations._errors import error_response


@pytest.fixture(params=["fastapi", "starlette"])
def app(request: pytest.FixtureRequest) -> FastAPI | Starlette:
    return request.getfixturevalue(f"{request.param}_app")  # type: ignore[no-any-return]


async def _count_key(mosaic: Mosaic, key: str) -> int:
    async with mosaic.session_factory() as session:
        repo = TaskRepository(session)
        return len([t for t in (await repo.list(limit=1000)).items if t.idempotency_key == key])


async def test_a_retried_create_with_the_same_key_is_exactly_once(
    app: FastAPI | Starlette, mosaic_host: Mosaic
) -> None:
    async with client_for(app) as api:
        project = (await api.post("/projects", json={"name": "idem"})).json()
        body = {"project_id": project["id"], "title": "write once"}
        headers = {"Idempotency-Key": "3f1c9a52-0d4e-4c1b-9a5e-7b2f7c1d0e11"}
        first = await api.post("/tasks", json=body, headers=headers)
        again = [await api.post("/tasks", json=body, headers=headers) for _ in range(3)]
        other = await api.post("/tasks", json=body, headers={"Idempotency-Key": "another"})
        plain = await api.post("/tasks", json=body)  # no key: a new task each time
    assert first.status_code == 201, first.text
    assert {r.json()["id"] for r in again} == {first.json()["id"]}
    assert other.json()["id"] != first.json()["id"]
    assert plain.json()["id"] not in {first.json()["id"], other.json()["id"]}
    assert await _count_key(mosaic_host, headers["Idempotency-Key"]) == 1


async def test_an_oversized_key_is_a_client_error(app: FastAPI | Starlette) -> None:
    async with client_for(app) as api:
        project = (await api.post("/projects", json={"name": "idem2"})).json()
        response = await api.post(
            "/tasks",
            json={"project_id": project["id"], "title": "t"},
            headers={"Idempotency-Key": "k" * 201},
        )
    assert response.status_code in (400, 422), response.text


def test_outcome_unknown_is_not_a_503_with_retry_after() -> None:
    response = error_response(CommitOutcomeUnknownError("lost during COMMIT"))
    assert response.status == 500
    assert response.body["error"] == "commit_outcome_unknown"
    assert "Retry-After" not in response.headers
    assert "Idempotency-Key" in response.body["detail"]
