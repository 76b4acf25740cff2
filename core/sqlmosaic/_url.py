"""Database URL helpers: parsing with typed errors, and password masking for anything printed."""

from __future__ import annotations

import re

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ._exceptions import ConfigurationError

__all__ = ["mask_password", "mask_url", "parse_url"]

_SCHEME_PASSWORD = re.compile(r"(?P<prefix>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)@")


def parse_url(value: str | URL, *, setting: str = "DATABASE_URL") -> URL:
    """Parse ``value`` as a URL; raise :class:`ConfigurationError` naming ``setting``."""
    if isinstance(value, URL):
        return value
    try:
        return make_url(value)
    except (ArgumentError, ValueError):
        raise ConfigurationError(
            f"{setting} is not a valid database URL (expected dialect+driver://user:password@host/db)",
            setting=setting,
        ) from None


def mask_url(url: str | URL) -> str:
    """Render ``url`` with its password masked (safe for logs, errors and CLI output)."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return mask_password(url)


def mask_password(text: str) -> str:
    """Mask every ``scheme://user:password@`` password found in free text."""
    return _SCHEME_PASSWORD.sub(lambda m: f"{m.group('prefix')}***@", text)
