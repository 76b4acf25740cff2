"""End-to-end CRUD through the FastAPI example's HTTP endpoints (in-process, httpx.ASGITransport),
on every backend (``mosaic_backend``: PostgreSQL through asyncpg, SQLite through aiosqlite)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from hosts_support import assert_async_connection, assert_async_engine

from mosaic_accounts import UserRepository
from mosaic_tasks import TaskRepository
from sqlmosaic import Mosaic


async def _user(api: httpx.AsyncClient, email: str, name: str = "Someone", **extra: Any) -> Any:
    response = await api.post("/users", json={"email": email, "name": name, **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def _project(api: httpx.AsyncClient, name: str = "Engine") -> Any:
    response = await api.post("/projects", json={"name": name, "description": "d"})
    assert response.status_code == 201, response.text
    return response.json()


async def test_the_host_uses_an_async_driver(api: httpx.AsyncClient, mosaic_host: Mosaic) -> None:
    assert_async_engine(mosaic_host)
    await assert_async_connection(mosaic_host)
    response = await api.get("/health")
    assert response.status_code == 200
    assert response.json()["plugins"] == {
        "accounts": "0.1.0",
        "comments": "0.1.0",
        "tasks": "0.1.0",
    }


async def test_user_crud(api: httpx.AsyncClient, mosaic_host: Mosaic) -> None:
    created = await _user(api, "Ada@Example.com", "Ada", password="correct horse")
    assert created["email"] == "ada@example.com"  # AccountsService.register lower-cases
    assert set(created) == {"id", "email", "name", "is_active", "created_at"}
    assert created["created_at"].endswith(("Z", "+00:00"))
    user_id = created["id"]

    # The password was hashed and stored, and is in no response.
    async with mosaic_host.session_factory() as session:
        stored = await UserRepository(session).get(user_id)
        assert stored.password_hash is not None
        assert stored.password_hash.startswith("scrypt$")
    read = await api.get(f"/users/{user_id}")
    assert read.status_code == 200
    assert read.json() == created
    listed = await api.get("/users", params={"email": "ada@example.com"})
    assert [u["id"] for u in listed.json()["items"]] == [user_id]
    for response in (created, read.text, listed.text):
        assert "password" not in json.dumps(response)
        assert "scrypt" not in json.dumps(response)

    updated = await api.patch(f"/users/{user_id}", json={"name": "Ada King", "is_active": False})
    assert updated.status_code == 200
    assert updated.json()["name"] == "Ada King"
    assert updated.json()["is_active"] is False
    assert (await api.get(f"/users/{user_id}")).json()["name"] == "Ada King"
    inactive = await api.get("/users", params={"is_active": "false"})
    assert [u["id"] for u in inactive.json()["items"]] == [user_id]

    deleted = await api.delete(f"/users/{user_id}")
    assert deleted.status_code == 204
    missing = await api.get(f"/users/{user_id}")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "not_found",
        "detail": f"User {user_id} not found",
        "model": "User",
    }


async def test_duplicate_email_is_409(api: httpx.AsyncClient) -> None:
    await _user(api, "dup@example.com")
    again = await api.post("/users", json={"email": "DUP@example.com", "name": "Other"})
    assert again.status_code == 409
    body = again.json()
    assert body["error"] == "conflict"
    assert body["kind"] == "unique"
    assert "email" in (body["constraint"] or "") + " ".join(body["columns"])
    assert "dup@example.com" not in again.text  # the value is never echoed by the database
    # The failed unit of work left nothing behind: still exactly one user with that email.
    listed = await api.get("/users", params={"email": "dup@example.com", "total": "true"})
    assert listed.json()["total"] == 1

    # The same conflict through an update.
    other = await _user(api, "other@example.com")
    clash = await api.patch(f"/users/{other['id']}", json={"email": "dup@example.com"})
    assert clash.status_code == 409
    assert (await api.get(f"/users/{other['id']}")).json()["email"] == "other@example.com"


async def test_task_list_filter_sort_and_keyset_pagination(api: httpx.AsyncClient) -> None:
    owner = await _user(api, "owner@example.com")
    project = await _project(api)
    created = []
    for i in range(7):
        response = await api.post(
            "/tasks",
            json={
                "project_id": project["id"],
                "title": f"task {i}",
                "priority": i % 3,
                "assignee_id": owner["id"],
            },
        )
        assert response.status_code == 201, response.text
        created.append(response.json())
    done = await api.patch(f"/tasks/{created[0]['id']}", json={"status": "done"})
    assert done.status_code == 200
    assert done.json()["status"] == "done"

    open_tasks = [t for t in created[1:]]
    expected = [t["id"] for t in sorted(open_tasks, key=lambda t: (-t["priority"], t["id"]))]
    seen: list[int] = []
    params: dict[str, Any] = {"sort": "-priority", "status": "open", "limit": 4, "total": "true"}
    pages = 0
    while True:
        response = await api.get("/tasks", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert page["total"] == 6
        assert page["sort"] == ["-priority", "id"]
        assert all(item["status"] == "open" for item in page["items"])
        seen.extend(item["id"] for item in page["items"])
        if page["next_cursor"] is None:
            break
        params["after"] = page["next_cursor"]
    assert seen == expected
    assert pages == 2

    high = await api.get("/tasks", params={"priority__ge": "2", "sort": "title"})
    assert [t["title"] for t in high.json()["items"]] == ["task 2", "task 5"]
    some = await api.get("/tasks", params={"priority__in": "0,1", "status__ne": "done"})
    assert {t["title"] for t in some.json()["items"]} == {"task 1", "task 3", "task 4", "task 6"}
    titled = await api.get("/tasks", params={"title__like": "task 1"})
    assert [t["title"] for t in titled.json()["items"]] == ["task 1"]
    unassigned = await api.get("/tasks", params={"assignee_id__is_null": "true"})
    assert unassigned.json()["items"] == []


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/tasks", {"sort": "-nonexistent"}, "nonexistent"),
        ("/tasks", {"sort": "priority,bogus"}, "bogus"),
        ("/tasks", {"colour": "red"}, "colour"),
        ("/tasks", {"priority__between": "1"}, "priority"),
        ("/tasks", {"priority": "high"}, "priority"),
        ("/tasks", {"limit": "0"}, "limit"),
        ("/tasks", {"limit": "ten"}, "limit"),
        ("/tasks", {"after": "not-a-cursor"}, "after"),
        ("/tasks", {"status": "open", "status__eq": "open", "total": "maybe"}, "total"),
        ("/users", {"password_hash__is_null": "false"}, "password_hash"),
        ("/users", {"sort": "password_hash"}, "password_hash"),
        ("/users", {"created_at__gt": "yesterday"}, "created_at"),
    ],
)
async def test_bad_list_parameters_are_400_naming_the_field(
    api: httpx.AsyncClient, path: str, params: dict[str, str], field: str
) -> None:
    response = await api.get(path, params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_query"
    assert body["field"] == field
    assert body["detail"]


async def test_a_cursor_for_another_sort_is_400(api: httpx.AsyncClient) -> None:
    project = await _project(api)
    for i in range(3):
        await api.post("/tasks", json={"project_id": project["id"], "title": f"t{i}"})
    first = (await api.get("/tasks", params={"sort": "title", "limit": 1})).json()
    assert first["next_cursor"]
    mixed = await api.get("/tasks", params={"sort": "-title", "after": first["next_cursor"]})
    assert mixed.status_code == 400
    assert mixed.json()["field"] == "after"
    forged = base64.urlsafe_b64encode(b'{"s":["title","id"],"v":[1]}').decode()
    assert (await api.get("/tasks", params={"sort": "title", "after": forged})).status_code == 400


async def test_not_found(api: httpx.AsyncClient) -> None:
    for method, path, body in [
        ("GET", "/users/999999", None),
        ("PATCH", "/users/999999", {"name": "x"}),
        ("DELETE", "/users/999999", None),
        ("GET", "/teams/999999", None),
        ("GET", "/teams/999999/members", None),
        ("GET", "/projects/999999", None),
        ("DELETE", "/projects/999999", None),
        ("GET", "/tasks/999999", None),
        ("PATCH", "/tasks/999999", {"title": "x"}),
        ("DELETE", "/tasks/999999", None),
        ("POST", "/tasks", {"project_id": 999999, "title": "orphan"}),
    ]:
        response = await api.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"] == "not_found"


async def test_teams_and_members(api: httpx.AsyncClient) -> None:
    owner = await _user(api, "lead@example.com", "Lead")
    member = await _user(api, "member@example.com", "Member")
    team = await api.post("/teams", json={"name": "Core", "owner_id": owner["id"]})
    assert team.status_code == 201
    team_id = team.json()["id"]
    added = await api.post(f"/teams/{team_id}/members", json={"user_id": member["id"]})
    assert added.status_code == 201
    assert added.json() == {"team_id": team_id, "user_id": member["id"], "role": "member"}
    again = await api.post(f"/teams/{team_id}/members", json={"user_id": member["id"]})
    assert again.status_code == 409
    members = await api.get(f"/teams/{team_id}/members")
    assert [u["name"] for u in members.json()] == ["Lead", "Member"]

    renamed = await api.patch(f"/teams/{team_id}", json={"name": "Platform"})
    assert renamed.json()["name"] == "Platform"
    listed = await api.get("/teams", params={"name__ilike": "plat"})
    assert [t["id"] for t in listed.json()["items"]] == [team_id]

    removed = await api.delete(f"/teams/{team_id}/members/{member['id']}")
    assert removed.status_code == 204
    assert [u["name"] for u in (await api.get(f"/teams/{team_id}/members")).json()] == ["Lead"]
    assert (await api.delete(f"/teams/{team_id}")).status_code == 204
    assert (await api.get(f"/teams/{team_id}")).status_code == 404

    # A team whose owner does not exist: 404, and the unit of work wrote nothing.
    orphan = await api.post("/teams", json={"name": "Ghosts", "owner_id": 999999})
    assert orphan.status_code == 404
    assert (await api.get("/teams", params={"name": "Ghosts"})).json()["items"] == []


async def test_task_update_is_one_unit_of_work(api: httpx.AsyncClient, mosaic_host: Mosaic) -> None:
    active = await _user(api, "active@example.com")
    retired = await _user(api, "retired@example.com")
    await api.patch(f"/users/{retired['id']}", json={"is_active": False})
    project = await _project(api)
    task = (await api.post("/tasks", json={"project_id": project["id"], "title": "a"})).json()

    assigned = await api.patch(
        f"/tasks/{task['id']}", json={"assignee_id": active["id"], "priority": 3}
    )
    assert assigned.status_code == 200
    assert (assigned.json()["assignee_id"], assigned.json()["priority"]) == (active["id"], 3)

    # TaskService.assign refuses an inactive user: 400 naming the field, and the title change
    # made earlier in the same request is rolled back with it.
    refused = await api.patch(
        f"/tasks/{task['id']}", json={"title": "renamed", "assignee_id": retired["id"]}
    )
    assert refused.status_code == 400
    assert refused.json()["field"] == "assignee_id"
    async with mosaic_host.session_factory() as session:
        stored = await TaskRepository(session).get(task["id"])
        assert (stored.title, stored.assignee_id) == ("a", active["id"])

    unassigned = await api.patch(f"/tasks/{task['id']}", json={"assignee_id": None})
    assert unassigned.json()["assignee_id"] is None
    invalid = await api.patch(f"/tasks/{task['id']}", json={"status": "someday"})
    assert invalid.status_code == 422  # FastAPI's body validation: not a TaskStatus

    # Deleting a project deletes its tasks (ON DELETE CASCADE in the migrations).
    assert (await api.delete(f"/projects/{project['id']}")).status_code == 204
    assert (await api.get(f"/tasks/{task['id']}")).status_code == 404


async def test_project_crud(api: httpx.AsyncClient) -> None:
    project = await _project(api, "Babbage")
    same = await api.post("/projects", json={"name": "Babbage"})
    assert same.status_code == 409
    updated = await api.patch(f"/projects/{project['id']}", json={"description": "engines"})
    assert updated.json()["description"] == "engines"
    assert updated.json()["name"] == "Babbage"
    unchanged = await api.patch(f"/projects/{project['id']}", json={})
    assert unchanged.json() == updated.json()
    listed = await api.get("/projects", params={"sort": "-created_at", "limit": 10})
    assert [p["name"] for p in listed.json()["items"]] == ["Babbage"]
