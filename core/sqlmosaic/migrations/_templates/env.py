"""Alembic environment of a sqlmosaic host: everything lives in sqlmosaic.migrations."""

from sqlmosaic.migrations import run_env

run_env()
