"""Primary-key reads for :class:`~sqlmosaic.Repository`: the cached short path of ``get``,
and ``get``/``list`` with loader options or row locks.

Kept apart from the repository class (size); nothing here is public.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import instance_state

from ._exceptions import InvalidQueryError
from ._values import check_value

if typing.TYPE_CHECKING:
    from ._plans import ModelPlan
    from ._repository import Repository

__all__ = ["check_key", "get_with", "load_options", "lookup"]


async def lookup(self: Repository[Any], pk: Any) -> Any:
    """``Session.get`` without rebuilding its statement per call (see ``_plans``): the
    identity map, then the model's cached primary-key SELECT."""
    plan = self._plan()
    if type(pk) is list:
        pk = tuple(pk)  # Session.get's other spelling of a key tuple
    values = pk if type(pk) is tuple else (pk,)
    _check_length(plan, values)
    if len(values) == len(plan.pk_params) and not isinstance(pk, Mapping):
        values = check_key(plan, plan.coerce_pk(values))
        pk = values if len(values) > 1 else values[0]
        if all(v is None for v in values):
            return None  # a key no row can have (Session.get warns and returns None)
        if not any(v is None for v in values):
            try:
                obj = self.session.sync_session.identity_map.get(plan.identity_key(values))
            except TypeError:  # unhashable: let Session.get say what is wrong
                obj = None
            else:
                if obj is None:
                    result = await self.session.exec(
                        plan.get_statement, params=plan.get_params(values)
                    )
                    # unique(): joined eager loading of a collection repeats the row
                    return result.unique().one_or_none()
                if isinstance(obj, self.model) and not instance_state(obj).expired:
                    return obj
    # expired in the identity map, or an unusual key: SQLAlchemy's own path
    return await self.session.get(self.model, pk)


def load_options(self: Repository[Any], load: Sequence[str], options: Sequence[Any]) -> list[Any]:
    """``selectinload`` of each allow-listed relationship in ``load``, then ``options``."""
    if isinstance(load, str):
        load = (load,)
    allowed = self.allowed_loads()
    found: list[Any] = []
    for name in load:
        if name not in allowed:
            raise InvalidQueryError(
                f"cannot load {self.model.__name__}.{name}; allowed: "
                f"{', '.join(sorted(allowed)) or 'none'}",
                field=name,
            )
        found.append(selectinload(getattr(self.model, name)))
    return [*found, *options]


async def get_with(
    self: Repository[Any], pk: Any, load: Sequence[str], options: Sequence[Any], for_update: bool
) -> Any:
    """``Session.get`` with loader options and/or ``FOR UPDATE``: always one SELECT (the
    object in the session is refreshed, so the options and the lock apply)."""
    opts = load_options(self, load, options)
    if type(pk) is list:
        pk = tuple(pk)
    values = pk if type(pk) is tuple else (pk,)
    plan = self._plan()
    _check_length(plan, values)
    if not isinstance(pk, Mapping):
        values = check_key(plan, plan.coerce_pk(tuple(values)))
        pk = values if len(values) > 1 else values[0]
    if all(v is None for v in values):
        return None
    return await self.session.get(
        self.model, pk, options=opts, populate_existing=True, with_for_update=for_update
    )


def _check_length(plan: ModelPlan, values: tuple[Any, ...]) -> None:
    size = len(plan.pk_params)
    if len(values) != size and not (len(values) == 1 and isinstance(values[0], Mapping)):
        raise InvalidQueryError(
            f"{plan.model.__name__} has a primary key of {size} column(s)", field="pk"
        )


def check_key(plan: ModelPlan, values: tuple[Any, ...]) -> tuple[Any, ...]:
    """Key values the key columns can hold (an integer key out of its range: no SELECT)."""
    if len(values) == 1:  # the usual single-column key: no generator
        return (check_value(plan.pk_columns[0].type, values[0], "pk"),)
    columns = plan.pk_columns
    return tuple(check_value(c.type, v, "pk") for c, v in zip(columns, values, strict=False))
