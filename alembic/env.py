"""Alembic environment of the reference host: everything lives in sqlmosaic.migrations."""

from sqlmosaic.migrations import run_env

run_env()
