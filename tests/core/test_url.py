from __future__ import annotations

from sqlalchemy.engine import make_url

from sqlmosaic import mask_password, mask_url


def test_mask_url_string_and_url_object() -> None:
    raw = "postgresql+asyncpg://app:s3cr%25t@db:5432/app"
    assert mask_url(raw) == "postgresql+asyncpg://app:***@db:5432/app"
    assert mask_url(make_url(raw)) == "postgresql+asyncpg://app:***@db:5432/app"


def test_mask_url_without_password_is_unchanged() -> None:
    assert mask_url("sqlite+aiosqlite:///./mosaic.db") == "sqlite+aiosqlite:///./mosaic.db"


def test_mask_password_in_free_text() -> None:
    text = "could not reach postgresql://app:topsecret@db/app (and redis://:pw@cache)"
    masked = mask_password(text)
    assert "topsecret" not in masked
    assert ":pw@" not in masked
    assert "postgresql://app:***@db/app" in masked


def test_mask_url_of_unparseable_text_still_masks() -> None:
    assert "hunter2" not in mask_url("postgresql://app:hunter2@")
