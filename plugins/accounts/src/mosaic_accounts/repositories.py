"""Repositories of the ``accounts`` plugin: the generic methods plus a few custom queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select

from sqlmosaic import Repository

from .models import Membership, Team, User


class UserRepository(Repository[User]):
    model = User
    name = "users"

    async def get_by_email(self, email: str) -> User | None:
        """The user with ``email`` (case-insensitive), or ``None``."""
        stmt = select(User).where(col(User.email) == email.lower())
        return (await self.session.exec(stmt)).one_or_none()


class TeamRepository(Repository[Team]):
    model = Team
    name = "teams"

    async def members(self, team_id: int) -> Sequence[User]:
        """The team's members, ordered by name (one SELECT with a join)."""
        stmt = (
            select(User)
            .join(Membership, col(Membership.user_id) == col(User.id))
            .where(col(Membership.team_id) == team_id)
            .order_by(col(User.name), col(User.id))
        )
        return (await self.session.exec(stmt)).all()


class MembershipRepository(Repository[Membership]):
    model = Membership
    name = "memberships"
