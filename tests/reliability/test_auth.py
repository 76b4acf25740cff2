"""A wrong database password (SQLSTATE 28P01): a typed 503, logged once, the password nowhere.

The shared test server trusts every local connection (any password is accepted), so these tests
start a private server whose ``pg_hba.conf`` asks TCP clients other than the superuser for a
SCRAM password, and create a role with a real password on it. The client then connects with a
wrong one: the server refuses (28P01), as it would in production.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlmodel.ext.asyncio.session import AsyncSession

from examples.fastapi_app import create_app as create_fastapi_app
from sqlmosaic import Database, DatabaseUnavailableError, Mosaic, MosaicSettings
from sqlmosaic._translate import sqlstate_of
from sqlmosaic.testing._pgserver import PostgresServer, start_postgres

pytestmark = pytest.mark.mosaic_backends("postgresql")

ROLE = "mosaic_app"
RIGHT = "right-Secret-4711"
#: the wrong password: it must never appear in a log record, an error or a response
WRONG = "wrong-Secret-0815"
_HBA = f"""\
local all all trust
host all postgres 127.0.0.1/32 trust
host all {ROLE} 127.0.0.1/32 scram-sha-256
"""


def _start_scram_server() -> tuple[PostgresServer, Path]:
    config_dir = Path(tempfile.mkdtemp(prefix="sqlmosaic-hba-"))
    config_dir.chmod(0o755)  # the server runs as the postgres OS user when we are root
    hba = config_dir / "pg_hba.conf"
    hba.write_text(_HBA)
    hba.chmod(0o644)
    try:
        return start_postgres(extra_options=("-c", f"hba_file={hba}")), config_dir
    except BaseException:
        shutil.rmtree(config_dir, ignore_errors=True)
        raise


@pytest.fixture(scope="module")
async def scram_server() -> AsyncIterator[PostgresServer]:
    server, config_dir = await asyncio.to_thread(_start_scram_server)
    try:
        admin = await asyncpg.connect(server.url(driver=""))
        try:
            await admin.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{RIGHT}'")
        finally:
            await admin.close()
        yield server
    finally:
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(shutil.rmtree, config_dir, True)


def _url(server: PostgresServer, password: str) -> str:
    url = URL.create(
        "postgresql+asyncpg",
        username=ROLE,
        password=password,
        host=server.host,
        port=server.port,
        database="postgres",
    )
    return url.render_as_string(hide_password=False)


async def _select_one(session: AsyncSession) -> None:
    await session.exec(text("SELECT 1"))  # type: ignore[call-overload]


def _refusal_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name.startswith("sqlmosaic") and r.levelno >= logging.WARNING
    ]


def _assert_no_secret(caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    for record in caplog.records:
        assert WRONG not in record.getMessage(), record.getMessage()
        assert WRONG not in str(record.args), record.args
    for text_ in texts:
        assert WRONG not in text_


async def test_the_right_password_works(scram_server: PostgresServer) -> None:
    """The control: the server really checks passwords for this role."""
    settings = MosaicSettings.load(database_url=_url(scram_server, RIGHT))
    async with Database(settings) as db, db.session() as session:
        user = await session.scalar(text("SELECT current_user"))
    assert user == ROLE


async def test_a_wrong_password_is_unavailable_and_logged_once_with_the_masked_url(
    scram_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = MosaicSettings.load(database_url=_url(scram_server, WRONG))
    caplog.set_level(logging.DEBUG, logger="sqlmosaic")

    errors: list[DatabaseUnavailableError] = []
    async with Database(settings) as db:
        for _ in range(3):
            with pytest.raises(DatabaseUnavailableError) as caught:
                await db.run(_select_one)
            errors.append(caught.value)
    for error in errors:
        assert sqlstate_of(error.__cause__) == "28P01"  # type: ignore[arg-type]
        assert "28P01" in str(error)
    records = _refusal_records(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]  # once, not per attempt
    message = records[0].getMessage()
    assert settings.masked_url in message
    assert "***" in message
    assert "28P01" in message
    _assert_no_secret(caplog, *(str(e) for e in errors), *(repr(e) for e in errors))


async def test_the_refusal_is_logged_again_after_a_success(
    scram_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Once per streak of refusals: a refusal after a working connection is news again."""
    caplog.set_level(logging.DEBUG, logger="sqlmosaic")
    settings = MosaicSettings.load(database_url=_url(scram_server, WRONG))
    async with Database(settings) as db:
        for expected in (1, 1, 2):
            if expected == 2:  # the right password now works once (a rotated secret)
                admin = await asyncpg.connect(scram_server.url(driver=""))
                try:
                    await admin.execute(f"ALTER ROLE {ROLE} PASSWORD '{WRONG}'")
                    async with db.session() as session:
                        await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
                    await db.engine.dispose()  # the next attempt connects afresh
                    await admin.execute(f"ALTER ROLE {ROLE} PASSWORD '{RIGHT}'")
                finally:
                    await admin.close()
            with pytest.raises(DatabaseUnavailableError):
                await db.run(_select_one)
            assert len(_refusal_records(caplog)) == expected
    _assert_no_secret(caplog)


async def test_the_fastapi_host_answers_503_and_logs_the_refusal_once(
    scram_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = MosaicSettings.load(database_url=_url(scram_server, WRONG))
    host = Mosaic(settings)
    app = create_fastapi_app(host)
    caplog.set_level(logging.DEBUG, logger="sqlmosaic")
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", trust_env=False
        ) as client,
    ):
        responses = [await client.get("/users") for _ in range(3)]
    for response in responses:
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"]
        assert response.json()["error"] == "database_unavailable"
    records = _refusal_records(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    assert settings.masked_url in records[0].getMessage()
    _assert_no_secret(caplog, *(r.text for r in responses))
