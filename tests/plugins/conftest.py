"""Fixtures for the plugin-system tests: REAL installed distributions of test-only plugins.

Each project under ``fixtures/`` (a ``pyproject.toml`` plus ``src/<package>``) is built into a
wheel (a zip with a ``.dist-info``, written here: no build backend or index needed) and installed
with ``pip install --no-deps --no-index --target DIR``, one directory per distribution, once per
session. The ``installed`` fixture puts chosen directories on ``sys.path`` so that
``importlib.metadata`` discovers their ``sqlmosaic`` entry points exactly as it discovers the
editable first-party plugins, and restores everything afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
TEST_PACKAGE_PREFIX = "mosaic_test_"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(project: Path, out: Path) -> Path:
    """Build a pure-Python wheel of ``project`` (hatch layout) into ``out``."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    meta = pyproject["project"]
    name, version = meta["name"], meta["version"]
    dist = re.sub(r"[-_.]+", "_", name).lower()
    info = f"{dist}-{version}.dist-info"
    files: dict[str, bytes] = {}
    for package in pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]:
        root = project / package
        for source in sorted(root.rglob("*.py")):
            files[f"{root.name}/{source.relative_to(root).as_posix()}"] = source.read_bytes()
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {req}" for req in meta.get("dependencies", [])]
    files[f"{info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: sqlmosaic-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    groups = meta.get("entry-points", {})
    entry_points = "".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
        for group, eps in groups.items()
    )
    files[f"{info}/entry_points.txt"] = entry_points.encode()
    record = [_record_line(path, data) for path, data in files.items()]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    wheel = out / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


@pytest.fixture(scope="session")
def wheel_builder() -> Callable[[Path, Path], Path]:
    """:func:`build_wheel`, for tests that package a plugin project of their own."""
    return build_wheel


@pytest.fixture(scope="session")
def plugin_dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every fixture project built and pip-installed into its own directory: {project: dir}."""
    base = tmp_path_factory.mktemp("plugin-dists")
    wheels = base / "wheels"
    wheels.mkdir()
    procs: dict[str, tuple[Path, subprocess.Popen[bytes]]] = {}
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    for project in sorted(p for p in FIXTURES.iterdir() if (p / "pyproject.toml").is_file()):
        wheel = build_wheel(project, wheels)
        target = base / project.name
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet"]
        cmd += ["--no-compile", "--target", str(target), str(wheel)]
        procs[project.name] = (
            target,
            subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT),
        )
    result: dict[str, Path] = {}
    for name, (target, proc) in procs.items():
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"pip install of {name} failed:\n{output.decode()}"
        assert list(target.glob("*.dist-info/entry_points.txt")), f"{name}: no dist-info"
        result[name] = target
    return result


def _purge_test_modules() -> None:
    for module in [m for m in sys.modules if m.startswith(TEST_PACKAGE_PREFIX)]:
        del sys.modules[module]


@pytest.fixture
def installed(plugin_dists: dict[str, Path]) -> Iterator[Callable[..., list[Path]]]:
    """``installed("notes", "audit")``: make those test distributions installed (on sys.path).

    Teardown removes the directories from ``sys.path``, invalidates the import and metadata
    caches and forgets the test packages' modules, so each test imports them afresh.
    """
    added: list[str] = []

    def install(*projects: str) -> list[Path]:
        dirs = [plugin_dists[p] for p in projects]
        for directory in dirs:
            sys.path.insert(0, str(directory))
            added.append(str(directory))
        importlib.invalidate_caches()
        return dirs

    _purge_test_modules()
    yield install
    for directory in added:
        sys.path.remove(directory)
    importlib.invalidate_caches()
    _purge_test_modules()


@pytest.fixture(autouse=True)
def no_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clear the environment settings that select plugins or a database."""
    for var in ("MOSAIC_PLUGINS", "MOSAIC_BLOCKED_PLUGINS", "DATABASE_URL", "MOSAIC_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
