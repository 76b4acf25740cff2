"""Testing helpers for sqlmosaic."""
