"""``wait_for_database`` / ``mosaic db wait``: returns once the database answers, waits out only
"unreachable", gives up with the masked URL. No timing is asserted (max_wait=0: one attempt)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from sqlmosaic import DatabaseUnavailableError, MosaicError, MosaicSettings, wait_for_database
from sqlmosaic.cli import build_app


async def test_a_database_that_answers_returns_at_once(mosaic_fresh_url: str) -> None:
    waited = await wait_for_database(MosaicSettings.load(database_url=mosaic_fresh_url))
    assert waited >= 0


async def test_an_unreachable_database_gives_up_naming_it_masked(
    refused_port: Callable[[], int],
) -> None:
    url = f"postgresql+asyncpg://app:s3cret-pw@127.0.0.1:{refused_port()}/app"
    with pytest.raises(DatabaseUnavailableError) as info:
        await wait_for_database(MosaicSettings.load(database_url=url), max_wait=0)
    message = str(info.value)
    assert "postgresql+asyncpg://app:***@127.0.0.1" in message
    assert "did not answer within 0 s (1 attempt(s))" in message
    assert "s3cret" not in message


@pytest.mark.mosaic_backends("postgresql")
async def test_a_missing_database_is_not_waited_for(mosaic_fresh_url: str) -> None:
    url = make_url(mosaic_fresh_url).set(database="no_such_database_xyz")
    settings = MosaicSettings.load(database_url=url.render_as_string(hide_password=False))
    with pytest.raises(MosaicError) as info:
        # max_wait=0: an error that is waited out ends as "did not answer within 0 s"; a refusal
        # (the server answered: no such database) is raised as itself, at the first attempt.
        await wait_for_database(settings, max_wait=0)
    message = str(info.value)
    assert "SQLSTATE 3D000" in message
    assert "did not answer" not in message


def test_the_cli_command(monkeypatch: pytest.MonkeyPatch, refused_port: Callable[[], int]) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    url = f"postgresql+asyncpg://app:s3cret-pw@127.0.0.1:{refused_port()}/app"
    result = CliRunner().invoke(
        build_app(), ["db", "wait", "--timeout", "0", "--database-url", url]
    )
    assert result.exit_code == 1
    assert "did not answer within 0 s" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout
