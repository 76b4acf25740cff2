"""Generate many sqlmosaic plugins as importable modules (for the startup and check benchmarks).

``generate(root, n_plugins)`` writes, under ``root``:

* a package ``mosaic_gen`` with one module per plugin, ``mosaic_gen.gp0000`` ... Each module
  defines ``tables`` SQLModel table classes (plain ``SQLModel``: the global metadata, as the
  first-party plugins do), one ``Repository`` per table, and the three contribution hooks.
* ``mosaic_gen_bench-0.0.0.dist-info`` with an ``entry_points.txt`` registering every plugin in
  the ``sqlmosaic`` group, so putting ``root`` on ``sys.path`` makes them *installed* plugins.

Plugin ``i`` requires plugin ``i - 1`` and plugin ``i // 2`` (so every plugin but the first
requires earlier ones, and the dependency graph is deep: a chain through all of them). Its
first table has a foreign key to the first table of each plugin it requires (cross-plugin
foreign keys); its other tables refer to its own first table, and the last one also to the
second table of plugin ``i - 1``. Tables have indexes, unique and check constraints, so the
merged metadata, Alembic's rendering and the schema comparison have real work to do.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "mosaic_gen"
DIST = "mosaic_gen_bench"
TABLES_PER_PLUGIN = 5


@dataclass(frozen=True)
class Generated:
    root: Path
    names: tuple[str, ...]  # plugin names, in dependency order
    modules: tuple[str, ...]  # importable module names
    tables: int

    @property
    def allow(self) -> str:
        """The ``MOSAIC_PLUGINS`` allowlist naming exactly these plugins."""
        return ",".join(self.names)


def plugin_name(i: int) -> str:
    return f"gp{i:04d}"


def requires_of(i: int) -> list[int]:
    deps = [] if i == 0 else [i - 1]
    if i >= 2 and i // 2 not in deps:
        deps.append(i // 2)
    return deps


def _module_source(i: int, tables: int) -> str:
    name = plugin_name(i)
    deps = requires_of(i)
    lines = [
        f'"""Generated benchmark plugin {name} ({tables} tables)."""',
        "",
        "from __future__ import annotations",
        "",
        "from datetime import datetime",
        "from typing import Any",
        "",
        "from sqlalchemy import CheckConstraint, UniqueConstraint",
        "from sqlmodel import Field, SQLModel",
        "",
        "from sqlmosaic import Repository, hookimpl",
        "",
        "",
    ]
    classes: list[str] = []
    for k in range(tables):
        cls = f"{name.capitalize()}T{k}"
        classes.append(cls)
        table = f"{name}_t{k}"
        body = [f"class {cls}(SQLModel, table=True):", f'    __tablename__ = "{table}"']
        if k == 0:
            body.append('    __table_args__ = (UniqueConstraint("code", "kind"),)')
        elif k == 2:
            body.append('    __table_args__ = (CheckConstraint("amount >= 0", name="amount"),)')
        body += [
            "",
            "    id: int | None = Field(default=None, primary_key=True)",
            "    name: str = Field(max_length=100, index=True)",
        ]
        if k == 0:
            body += [
                "    code: str = Field(max_length=40)",
                "    kind: int = 0",
            ]
            for d in deps:
                ref = f"{plugin_name(d)}_t0"
                body.append(
                    f"    {ref}_id: int | None = Field("
                    f'default=None, foreign_key="{ref}.id", index=True, ondelete="SET NULL")'
                )
        else:
            body += [
                f'    t0_id: int = Field(foreign_key="{name}_t0.id", index=True, '
                'ondelete="CASCADE")',
                "    amount: float = 0.0",
                "    flag: bool = False",
                "    note: str | None = Field(default=None, max_length=400)",
            ]
            if k == tables - 1 and i > 0 and tables > 1:
                ref = f"{plugin_name(i - 1)}_t1"
                body.append(
                    f'    prev_id: int | None = Field(default=None, foreign_key="{ref}.id")'
                )
        body.append("    created_at: datetime = Field(default_factory=datetime.now)")
        lines += [*body, "", ""]
        lines += [f"class {cls}Repository(Repository[{cls}]):", "    pass", "", ""]
    models = ", ".join(classes)
    repos = ", ".join(f"{c}Repository" for c in classes)
    reqs = ", ".join(repr(plugin_name(d)) for d in deps)
    lines += [
        "@hookimpl",
        "def mosaic_models() -> list[type[Any]]:",
        f"    return [{models}]",
        "",
        "",
        "@hookimpl",
        "def mosaic_repositories() -> list[type[Repository[Any]]]:",
        f"    return [{repos}]",
        "",
        "",
        "@hookimpl",
        "def mosaic_requires() -> list[str]:",
        f"    return [{reqs}]",
        "",
    ]
    return "\n".join(lines)


def generate(root: Path, n_plugins: int, tables: int = TABLES_PER_PLUGIN) -> Generated:
    """Write ``n_plugins`` plugin modules and their dist-info under ``root`` (recreated)."""
    if root.exists():
        shutil.rmtree(root)
    pkg = root / PACKAGE
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""Generated benchmark plugins."""\n')
    names = [plugin_name(i) for i in range(n_plugins)]
    modules = [f"{PACKAGE}.{n}" for n in names]
    for i, name in enumerate(names):
        (pkg / f"{name}.py").write_text(_module_source(i, tables))
    dist = root / f"{DIST}-0.0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {DIST.replace('_', '-')}\nVersion: 0.0.0\n"
    )
    entry_points = "\n".join(f"{n} = {m}" for n, m in zip(names, modules, strict=True))
    (dist / "entry_points.txt").write_text(f"[sqlmosaic]\n{entry_points}\n")
    (dist / "RECORD").write_text("")
    return Generated(root, tuple(names), tuple(modules), n_plugins * tables)
