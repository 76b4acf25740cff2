"""sqlmosaic plugin ``comments``: comments on ``tasks``' tasks, written by ``accounts`` users.

The template of a plugin that OWNS its tables' history: its revisions live in
``mosaic_comments/migrations/`` (shipped in the wheel) and form the Alembic branch ``comments``,
which depends on the history that creates the ``task`` and ``user`` tables.
"""

from .models import Comment
from .repositories import CommentRepository

__version__ = "0.1.0"

__all__ = ["Comment", "CommentRepository"]
