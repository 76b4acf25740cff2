"""Hook implementations of the ``accounts`` plugin (the entry point names this module)."""

from __future__ import annotations

from typing import Any

from sqlmosaic import Repository, hookimpl

from .models import Membership, Team, User
from .repositories import MembershipRepository, TeamRepository, UserRepository


@hookimpl
def mosaic_models() -> list[type[Any]]:
    return [User, Team, Membership]


@hookimpl
def mosaic_repositories() -> list[type[Repository[Any]]]:
    return [UserRepository, TeamRepository, MembershipRepository]


@hookimpl
def mosaic_requires() -> list[str]:
    return []
