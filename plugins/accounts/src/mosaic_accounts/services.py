"""Services of the ``accounts`` plugin: they own the unit of work; repositories never commit."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from sqlmosaic import transactional

from .models import Membership, Team, User
from .repositories import MembershipRepository, TeamRepository, UserRepository


class AccountsService:
    """Account operations on one session (inject it per request or per job)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.users = UserRepository(session)
        self.teams = TeamRepository(session)
        self.memberships = MembershipRepository(session)

    @transactional
    async def register(self, email: str, name: str) -> User:
        """Create a user; a duplicate email raises ConflictError and leaves nothing behind."""
        return await self.users.add(User(email=email.lower(), name=name))

    @transactional
    async def create_team(self, team_name: str, owner_id: int) -> Team:
        """Create a team and make ``owner_id`` its owner: two repositories, one unit of work."""
        owner = await self.users.get(owner_id)  # NotFoundError before anything is written
        team = await self.teams.add(Team(name=team_name))
        assert team.id is not None
        assert owner.id is not None
        await self.memberships.add(Membership(team_id=team.id, user_id=owner.id, role="owner"))
        return team

    @transactional
    async def add_member(self, team_id: int, user_id: int, role: str = "member") -> Membership:
        await self.teams.get(team_id)
        await self.users.get(user_id)
        return await self.memberships.add(Membership(team_id=team_id, user_id=user_id, role=role))
