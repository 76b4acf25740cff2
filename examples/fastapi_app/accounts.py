"""Users and teams (plugin ``accounts``).

Reads use a repository dependency; writes run in one unit of work on the request's session,
through ``AccountsService`` where the plugin has a service for it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from mosaic_accounts import (
    AccountsService,
    MembershipRepository,
    Team,
    TeamRepository,
    UserRepository,
)
from sqlmosaic.integrations.fastapi import (
    ListParams,
    MosaicDep,
    SessionDep,
    list_query,
    repository_dependency,
)

from .schemas import (
    MemberCreate,
    MembershipRead,
    PageOut,
    TeamCreate,
    TeamRead,
    TeamUpdate,
    UserCreate,
    UserRead,
    UserUpdate,
    page_of,
)

router = APIRouter()

Users = Annotated[UserRepository, Depends(repository_dependency(UserRepository))]
Teams = Annotated[TeamRepository, Depends(repository_dependency(TeamRepository))]
UserList = Annotated[ListParams, Depends(list_query(UserRepository))]
TeamList = Annotated[ListParams, Depends(list_query(TeamRepository))]


def hash_password(password: str) -> str:
    """scrypt (stdlib). CPU-bound: call it through ``asyncio.to_thread``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    encode = base64.urlsafe_b64encode
    return f"scrypt$16384$8$1${encode(salt).decode()}${encode(digest).decode()}"


# --------------------------------------------------------------------------- users


@router.post("/users", status_code=201, tags=["users"])
async def create_user(body: UserCreate, session: SessionDep, mosaic: MosaicDep) -> UserRead:
    # Hash before the unit of work starts: no transaction stays open while the CPU works.
    password_hash = await asyncio.to_thread(hash_password, body.password) if body.password else None
    async with mosaic.unit_of_work(session) as uow:
        user = await AccountsService(uow.session).register(body.email, body.name)  # 409 if taken
        if password_hash is not None:
            await uow.repository(UserRepository).update(user, {"password_hash": password_hash})
    return UserRead.model_validate(user)


@router.get("/users", tags=["users"])
async def list_users(users: Users, params: UserList) -> PageOut[UserRead]:
    return page_of(await params.fetch(users), UserRead.model_validate)


@router.get("/users/{user_id}", tags=["users"])
async def read_user(user_id: int, users: Users) -> UserRead:
    return UserRead.model_validate(await users.get(user_id))


@router.patch("/users/{user_id}", tags=["users"])
async def update_user(
    user_id: int, body: UserUpdate, session: SessionDep, mosaic: MosaicDep
) -> UserRead:
    values = body.model_dump(exclude_unset=True, exclude_none=True)
    if "email" in values:
        values["email"] = values["email"].lower()
    async with mosaic.unit_of_work(session) as uow:
        users = uow.repository(UserRepository)
        user = await users.update(user_id, values) if values else await users.get(user_id)
    return UserRead.model_validate(user)


@router.delete("/users/{user_id}", status_code=204, tags=["users"])
async def delete_user(user_id: int, session: SessionDep, mosaic: MosaicDep) -> Response:
    async with mosaic.unit_of_work(session) as uow:
        await uow.repository(UserRepository).delete(user_id)
    return Response(status_code=204)


# --------------------------------------------------------------------------- teams


@router.post("/teams", status_code=201, tags=["teams"])
async def create_team(body: TeamCreate, session: SessionDep) -> TeamRead:
    # The service is @transactional: team + owner membership in one unit of work.
    team = await AccountsService(session).create_team(body.name, body.owner_id)
    return TeamRead.model_validate(team)


@router.get("/teams", tags=["teams"])
async def list_teams(teams: Teams, params: TeamList) -> PageOut[TeamRead]:
    return page_of(await params.fetch(teams), TeamRead.model_validate)


@router.get("/teams/{team_id}", tags=["teams"])
async def read_team(team_id: int, teams: Teams) -> TeamRead:
    return TeamRead.model_validate(await teams.get(team_id))


@router.patch("/teams/{team_id}", tags=["teams"])
async def update_team(
    team_id: int, body: TeamUpdate, session: SessionDep, mosaic: MosaicDep
) -> TeamRead:
    values = body.model_dump(exclude_unset=True, exclude_none=True)
    async with mosaic.unit_of_work(session) as uow:
        teams = uow.repository(TeamRepository)
        team: Team = await teams.update(team_id, values) if values else await teams.get(team_id)
    return TeamRead.model_validate(team)


@router.delete("/teams/{team_id}", status_code=204, tags=["teams"])
async def delete_team(team_id: int, session: SessionDep, mosaic: MosaicDep) -> Response:
    async with mosaic.unit_of_work(session) as uow:
        await uow.repository(TeamRepository).delete(team_id)
    return Response(status_code=204)


@router.post("/teams/{team_id}/members", status_code=201, tags=["teams"])
async def add_member(team_id: int, body: MemberCreate, session: SessionDep) -> MembershipRead:
    membership = await AccountsService(session).add_member(team_id, body.user_id, body.role)
    return MembershipRead.model_validate(membership)


@router.get("/teams/{team_id}/members", tags=["teams"])
async def list_members(team_id: int, teams: Teams) -> list[UserRead]:
    await teams.get(team_id)  # 404 for an unknown team rather than an empty list
    return [UserRead.model_validate(user) for user in await teams.members(team_id)]


@router.delete("/teams/{team_id}/members/{user_id}", status_code=204, tags=["teams"])
async def remove_member(
    team_id: int, user_id: int, session: SessionDep, mosaic: MosaicDep
) -> Response:
    async with mosaic.unit_of_work(session) as uow:
        await uow.repository(MembershipRepository).delete((team_id, user_id))
    return Response(status_code=204)
