"""sqlmosaic plugin ``accounts``: users, teams and memberships."""

from .models import Membership, Team, User
from .repositories import MembershipRepository, TeamRepository, UserRepository
from .services import AccountsService

__version__ = "0.1.0"

__all__ = [
    "AccountsService",
    "Membership",
    "MembershipRepository",
    "Team",
    "TeamRepository",
    "User",
    "UserRepository",
]
