"""The Starlette example host: same lifespan and error mapping, no dependency injection."""

from __future__ import annotations

import httpx
from hosts_support import assert_async_connection, client_for
from starlette.applications import Starlette

from sqlmosaic import Mosaic


async def test_starlette_users_and_tasks(starlette_app: Starlette, mosaic_host: Mosaic) -> None:
    await assert_async_connection(mosaic_host)
    async with client_for(starlette_app) as api:
        await _exercise(api)


async def _exercise(api: httpx.AsyncClient) -> None:
    ada = await api.post("/users", json={"email": "Ada@example.com", "name": "Ada"})
    assert ada.status_code == 201, ada.text
    assert set(ada.json()) == {"id", "email", "name", "is_active", "created_at"}
    grace = await api.post("/users", json={"email": "grace@example.com", "name": "Grace"})
    assert grace.status_code == 201
    user_id = ada.json()["id"]

    read = await api.get(f"/users/{user_id}")
    assert read.json() == ada.json()
    listed = await api.get("/users", params={"sort": "-name", "limit": 1, "total": "true"})
    page = listed.json()
    assert [u["name"] for u in page["items"]] == ["Grace"]
    assert page["total"] == 2
    rest = await api.get(
        "/users", params={"sort": "-name", "limit": 1, "after": page["next_cursor"]}
    )
    assert [u["name"] for u in rest.json()["items"]] == ["Ada"]
    assert rest.json()["next_cursor"] is None
    assert [
        u["name"] for u in (await api.get("/users", params={"name": "Ada"})).json()["items"]
    ] == ["Ada"]

    duplicate = await api.post("/users", json={"email": "ada@example.com", "name": "Again"})
    assert duplicate.status_code == 409
    assert duplicate.json()["kind"] == "unique"
    missing = await api.get("/users/999999")
    assert missing.status_code == 404
    assert missing.json()["model"] == "User"
    unknown = await api.get("/users", params={"sort": "shoe_size"})
    assert unknown.status_code == 400
    assert unknown.json()["field"] == "shoe_size"
    hidden = await api.get("/users", params={"password_hash": "x"})
    assert (hidden.status_code, hidden.json()["field"]) == (400, "password_hash")
    invalid = await api.post("/users", json={"email": "not an email", "name": ""})
    assert invalid.status_code == 422
    assert {e["loc"][0] for e in invalid.json()["detail"]} == {"email", "name"}

    project = await api.post("/projects", json={"name": "Compiler"})
    assert project.status_code == 201
    project_id = project.json()["id"]
    for i, priority in enumerate([1, 3, 2]):
        task = await api.post(
            "/tasks",
            json={
                "project_id": project_id,
                "title": f"step {i}",
                "priority": priority,
                "assignee_id": user_id,
            },
        )
        assert task.status_code == 201, task.text
    task_id = task.json()["id"]
    assert (await api.get(f"/tasks/{task_id}")).json()["title"] == "step 2"
    tasks = await api.get("/tasks", params={"sort": "-priority", "assignee_id": str(user_id)})
    assert [t["priority"] for t in tasks.json()["items"]] == [3, 2, 1]
    no_project = await api.post("/tasks", json={"project_id": 999999, "title": "x"})
    assert no_project.status_code == 404
    assert (await api.get("/tasks/999999")).status_code == 404
    bad = await api.get("/tasks", params={"priority__gt": "lots"})
    assert (bad.status_code, bad.json()["field"]) == (400, "priority")
