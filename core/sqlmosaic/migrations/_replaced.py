"""Squashed revisions (``mosaic db squash``) and the revisions they replace.

A squashed revision S declares ``replaces = ("r1", "r2", "r3")`` (as Django's squashed
migrations do) and starts its plugin's branch at base, with the branch label. The files of
r1..r3 move to a ``replaced/`` folder beside it, which Alembic's own loader does not read. The
runtime reads the scripts in one of two views:

- **normal** (what Alembic alone sees, plus one fix-up): S at base, r1..r3 absent. A fresh
  database applies S. A revision elsewhere that still names a replaced revision (another
  plugin's ``depends_on = "r3"``) is read as naming S.
- **catch-up**: r1..r3 loaded from ``replaced/``, and S turned into an empty step right after r3
  (no label, no operations). A database that applied a replaced revision but not S applies the
  rest of the old chain, then S (which only moves ``alembic_version`` to S), then what follows.

``run_env`` picks the catch-up view when the database it runs on records a replaced revision
(:func:`settle`), and afterwards drops from ``alembic_version`` what another recorded revision
implies in the normal view (:func:`implied_heads`); every other reader gets the normal view.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionMap
from alembic.util import CommandError

__all__ = [
    "REPLACED_DIR",
    "final_replacer",
    "forget_loaded",
    "implied_heads",
    "install_view",
    "loaded_scripts",
    "replacements",
    "replaces_of",
    "settle",
]

#: The folder, beside a squashed revision, holding the revisions it replaced.
REPLACED_DIR = "replaced"
_LOADED = "_mosaic_loaded_scripts"


def replaces_of(script: Script) -> tuple[str, ...]:
    """The revisions ``script`` replaces (its module's ``replaces``), in order."""
    value = getattr(script.module, "replaces", None)
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def loaded_scripts(script_dir: ScriptDirectory) -> tuple[list[Script], list[Script]]:
    """``(scripts, replaced)``: the version locations' scripts (Alembic's own loader) and those
    in their ``replaced/`` folders; each file is imported once per ``ScriptDirectory``."""
    cached = script_dir.__dict__.get(_LOADED)
    if cached is None:
        main = list(script_dir._load_revisions())
        replaced: list[Script] = []
        for location in script_dir._version_locations:
            folder = Path(location, REPLACED_DIR)
            if folder.is_dir():
                for path in sorted(folder.glob("*.py")):
                    item = Script._from_path(script_dir, path)
                    if item is not None:
                        replaced.append(item)
        cached = (main, replaced)
        script_dir.__dict__[_LOADED] = cached
    return cached


def forget_loaded(script_dir: ScriptDirectory) -> None:
    """Drop the scripts read so far (the version locations changed)."""
    script_dir.__dict__.pop(_LOADED, None)


def replacements(scripts: Iterable[Script]) -> dict[str, str]:
    """``{replaced revision: the squashed revision replacing it}``."""
    return {old: item.revision for item in scripts for old in replaces_of(item)}


def final_replacer(replaced_by: Mapping[str, str], rev: str) -> str:
    """Follow ``replaced_by`` from ``rev`` to a revision nothing replaces (squash of a squash)."""
    seen = {rev}
    while rev in replaced_by and replaced_by[rev] not in seen:
        rev = replaced_by[rev]
        seen.add(rev)
    return rev


def _refs(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _fresh(item: Script, **overrides: Any) -> Script:
    """A new ``Script`` for ``item`` (a ``RevisionMap`` mutates the ones it holds), its module
    attributes overridden where asked (on a copy: the imported module stays as it is)."""
    module = item.module
    if overrides:
        module = types.ModuleType(item.module.__name__, item.module.__doc__)
        module.__dict__.update(item.module.__dict__)
        module.__dict__.update(overrides)
    return Script(module, item.revision, item.path)


def _normal(main: Sequence[Script], replaced: Sequence[Script]) -> list[Script]:
    replaced_by = replacements([*main, *replaced])
    present = {item.revision for item in main}
    result: list[Script] = []
    for item in main:
        overrides: dict[str, Any] = {}
        for attr in ("down_revision", "depends_on"):
            refs = _refs(getattr(item.module, attr, None))
            mapped = [
                final_replacer(replaced_by, ref) if ref not in present else ref for ref in refs
            ]
            if mapped != list(refs):
                unique = tuple(dict.fromkeys(mapped))
                overrides[attr] = unique[0] if len(unique) == 1 else unique
        result.append(_fresh(item, **overrides))
    return result


def _noop() -> None:
    """The squashed revision in the catch-up view: the old chain already did its work."""


def _tip(chain: Sequence[str], by_rev: Mapping[str, Script]) -> str | None:
    parents = {p for rev in chain for p in _refs(by_rev[rev].module.down_revision)}
    tips = [rev for rev in chain if rev not in parents]
    return tips[0] if len(tips) == 1 else None


def _catch_up(main: Sequence[Script], replaced: Sequence[Script]) -> list[Script]:
    everything = [*main, *replaced]
    by_rev = {item.revision: item for item in everything}
    result: list[Script] = []
    for item in everything:
        chain = replaces_of(item)
        tip = _tip(chain, by_rev) if chain and all(r in by_rev for r in chain) else None
        if tip is None:
            result.append(_fresh(item))
            continue
        result.append(
            _fresh(item, down_revision=tip, branch_labels=None, upgrade=_noop, downgrade=_noop)
        )
    return result


def install_view(script_dir: ScriptDirectory, *, catch_up: bool = False) -> None:
    """Give ``script_dir`` a revision map of the normal or the catch-up view (read lazily)."""
    view: Callable[[Sequence[Script], Sequence[Script]], list[Script]]
    view = _catch_up if catch_up else _normal

    def load() -> Iterable[Script]:
        return iter(view(*loaded_scripts(script_dir)))

    script_dir.revision_map = RevisionMap(load)


def walk_applied(current: Iterable[str], parents: Callable[[str], Iterable[str]]) -> set[str]:
    """Every revision reachable from ``current`` through ``parents(rev)`` (ancestors and
    dependencies), ``current`` included: what a database recording ``current`` has applied."""
    seen: set[str] = set()
    stack = list(current)
    while stack:
        rev = stack.pop()
        if rev in seen:
            continue
        seen.add(rev)
        stack.extend(parents(rev))
    return seen


def _applied(revision_map: RevisionMap, current: Sequence[str]) -> set[str]:
    def parents(rev: str) -> Iterable[str]:
        try:
            item = revision_map.get_revision(rev)
        except CommandError:
            return ()
        if item is None:
            return ()
        return (*item._all_down_revisions, *item._resolved_dependencies)

    return walk_applied(current, parents)


def settle(script_dir: ScriptDirectory, current: Sequence[str]) -> bool:
    """Switch ``script_dir`` to the catch-up view when a database at ``current`` records a
    revision a squashed one replaced. Returns whether it switched.

    A database recording only revisions of the normal view is read in the normal view: a
    revision of another plugin that depended on a replaced one implies the squashed revision.
    (``alembic_version`` records heads only, so a database that applied such a revision with
    only part of the replaced chain cannot be told apart; docs/migrations.md says to upgrade
    to the heads before a squash is deployed.)
    """
    main, replaced = loaded_scripts(script_dir)
    if not replaced or not current:
        return False
    replaced_by = replacements([*main, *replaced])
    behind = any(rev in replaced_by for rev in current)
    if behind:
        install_view(script_dir, catch_up=True)
    return behind


def implied_heads(script_dir: ScriptDirectory, current: Sequence[str]) -> list[str]:
    """Recorded revisions that, in the normal view, another recorded one already implies (left
    by a catch-up run: the squashed revision beside a revision that depends on it)."""
    main, replaced = loaded_scripts(script_dir)
    normal = RevisionMap(lambda: iter(_normal(main, replaced)))
    return [
        rev
        for rev in current
        if any(rev in _applied(normal, [other]) for other in current if other != rev)
    ]
