"""Every hook in ``sqlmosaic.hookspecs`` has a test and a section in docs/plugins.md.

Like Datasette's ``test_plugin_hooks_have_tests``: adding a hookspec without a test named after
it, or without documenting it (with its parameters) in the hook reference, fails here.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from sqlmosaic import hookspecs

TESTS = Path(__file__).parent
DOCS = Path(__file__).parents[2] / "docs" / "plugins.md"


def hook_names() -> list[str]:
    return sorted(
        name
        for name, obj in vars(hookspecs).items()
        if callable(obj) and hasattr(obj, f"{hookspecs.PROJECT_NAME}_spec")
    )


def collected_test_names() -> list[str]:
    names: list[str] = []
    for path in sorted(TESTS.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_"
            ):
                names.append(node.name)
    return names


def doc_section(hook: str) -> str:
    text = DOCS.read_text()
    match = re.search(rf"^###\s+`?{hook}\b.*?(?=^##|\Z)", text, flags=re.MULTILINE | re.DOTALL)
    return match.group(0) if match else ""


def test_the_hookspecs_are_the_documented_six() -> None:
    # Guards the helpers below: a typo in the marker name would make every check vacuous.
    assert hook_names() == [
        "mosaic_migrations",
        "mosaic_models",
        "mosaic_repositories",
        "mosaic_requires",
        "mosaic_shutdown",
        "mosaic_startup",
    ]


@pytest.mark.parametrize("hook", hook_names())
def test_plugin_hook_has_a_test(hook: str) -> None:
    tests = [name for name in collected_test_names() if hook in name]
    assert tests, f"no test function in tests/plugins/ has {hook!r} in its name"


@pytest.mark.parametrize("hook", hook_names())
def test_plugin_hook_is_documented_with_its_parameters(hook: str) -> None:
    section = doc_section(hook)
    assert section, f"docs/plugins.md has no '### {hook}' section"
    for parameter in inspect.signature(getattr(hookspecs, hook)).parameters:
        assert f"`{parameter}`" in section, f"{hook}: parameter {parameter!r} is not documented"
    assert "Return" in section or "return" in section, f"{hook}: the return value is not described"
