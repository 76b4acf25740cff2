"""Hypothesis settings of the differential tests: bounded and deterministic.

``derandomize=True``: the same examples on every run and machine (CI is reproducible); a
small ``max_examples`` keeps the whole zoo well under a minute. ``deadline=None``: no
wall-clock limits on a loaded machine. Each example runs in a SAVEPOINT that is rolled back,
so the function-scoped session fixture is safe to share between examples.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "differential",
    max_examples=12,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
