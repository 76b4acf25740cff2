"""Fuzz the example hosts' HTTP APIs from the FastAPI host's OpenAPI schema (schemathesis).

Every generated request (path ids, query filters and sorts, bodies, headers) goes to the app
in-process (httpx's ASGITransport on the test's loop: asyncpg connections stay on their loop)
over both backends; no response may be a 5xx, and the FastAPI host's responses must match its
schema. The Starlette host serves the same paths (it has no schema of its own): no 5xx.
Bounded and derandomized (Hypothesis) so it fits CI.
"""

from __future__ import annotations

from typing import Any

import httpx
import schemathesis
from fastapi import FastAPI
from hosts_support import client_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from starlette.applications import Starlette

from examples.fastapi_app import create_app as create_fastapi_app
from sqlmosaic import Mosaic, MosaicSettings

FUZZ = settings(
    max_examples=120,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
#: The operations the Starlette example serves (same paths and bodies as the FastAPI one).
STARLETTE_ROUTES = {
    ("POST", "/users"),
    ("GET", "/users"),
    ("GET", "/users/{user_id}"),
    ("POST", "/projects"),
    ("POST", "/tasks"),
    ("GET", "/tasks"),
    ("GET", "/tasks/{task_id}"),
}


def _openapi() -> dict[str, Any]:
    # the schema only: the host is never started (nothing connects)
    host = Mosaic(MosaicSettings(database_url="sqlite+aiosqlite://"))
    return create_fastapi_app(host).openapi()


SCHEMA = schemathesis.openapi.from_dict(_openapi())


def _cases(routes: set[tuple[str, str]] | None) -> st.SearchStrategy[Any]:
    strategies = []
    for result in SCHEMA.get_all_operations():
        operation = result.ok()
        if routes is None or (operation.method.upper(), operation.path) in routes:
            strategies.append(operation.as_strategy())
    return st.one_of(*strategies)


async def _send(api: httpx.AsyncClient, case: Any) -> httpx.Response:
    kwargs = case.as_transport_kwargs(base_url=str(api.base_url))
    method, url = kwargs.pop("method"), kwargs.pop("url")
    allowed = {"params", "headers", "json", "content", "data", "files"}  # no cookies: unused
    return await api.request(method, url, **{k: v for k, v in kwargs.items() if k in allowed})


@FUZZ
@given(case=_cases(None))
async def test_fastapi_host_never_answers_5xx_and_matches_its_schema(
    fastapi_app: FastAPI, mosaic_host: Mosaic, case: Any
) -> None:
    async with client_for(fastapi_app) as api:
        response = await _send(api, case)
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])


@FUZZ
@given(case=_cases(STARLETTE_ROUTES))
async def test_starlette_host_never_answers_5xx(
    starlette_app: Starlette, mosaic_host: Mosaic, case: Any
) -> None:
    async with client_for(starlette_app) as api:
        response = await _send(api, case)
    assert response.status_code < 500, (case.method, case.path, response.text)
