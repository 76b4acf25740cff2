"""Objects for loaded rows without SQLModel's per-instance Python layers.

For every row it loads, the ORM asks the model's class manager for an empty instance
(``ClassManager.new_instance``). On a SQLModel table class that runs, in Python, SQLModel's
``__new__`` (which calls ``init_pydantic_private_attrs``) and then SQLModel's ``__setattr__``
for ``_sa_instance_state``: four Python frames per row, about a seventh of the calls of a page of
50 rows. :func:`install_fast_new_instance` gives a model's class manager a ``new_instance`` that
puts exactly the same things in place with C-level calls: ``object.__new__``, pydantic's three
slots (``__pydantic_fields_set__`` an empty set, ``__pydantic_extra__`` and
``__pydantic_private__`` None, as SQLModel sets them) and the state in the instance ``__dict__``
(where SQLModel's ``__setattr__`` puts it).

Taken only when the class builds its instances as SQLModel does: SQLModel's own ``__new__`` and
``__setattr__`` (no override in the class or a mixin), SQLAlchemy's default ``ClassManager`` and
state attribute. Anything else keeps SQLModel's path. ``tests/differential/test_construct.py``
loads the same rows both ways, across the model shapes of the differential zoo, and compares the
instances slot by slot; it fails if a SQLModel or SQLAlchemy upgrade changes what their own path
builds.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm.instrumentation import ClassManager, opt_manager_of_class
from sqlmodel import SQLModel

__all__ = ["install_fast_new_instance", "uses_fast_new_instance"]

_STATE_ATTR = "_sa_instance_state"
# pydantic's slots on BaseModel: member descriptors, set in C
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
_object_new = object.__new__


def _definers(model: type, name: str) -> list[type]:
    return [k for k in model.__mro__ if name in vars(k)]


def _eligible(model: type, manager: Any) -> bool:
    return (
        type(manager) is ClassManager
        and manager.class_ is model
        and manager.STATE_ATTR == _STATE_ATTR
        and "new_instance" not in vars(manager)
        # SQLModel's __new__ calls super().__new__: object's, unless a class after it has one
        and _definers(model, "__new__") == [SQLModel, object]
        and _definers(model, "__setattr__")[0] is SQLModel
    )


def install_fast_new_instance(model: type) -> bool:
    """Give ``model``'s class manager the C-level ``new_instance`` when SQLModel's path would
    build the same instance. Idempotent; returns whether ``model`` now uses it."""
    manager: ClassManager[Any] | None = opt_manager_of_class(model)
    if manager is None:
        return False
    if uses_fast_new_instance(model):
        return True
    if not _eligible(model, manager):
        return False

    def new_instance(state: Any = None) -> Any:
        instance: Any = _object_new(model)
        _set_fields_set(instance, set())
        _set_extra(instance, None)
        _set_private(instance, None)
        if state is None:
            state = manager._state_constructor(instance, manager)
        instance.__dict__[_STATE_ATTR] = state
        return instance

    new_instance.mosaic_fast = True  # type: ignore[attr-defined]
    manager.new_instance = new_instance  # type: ignore[method-assign]
    return True


def uses_fast_new_instance(model: type) -> bool:
    """Whether :func:`install_fast_new_instance` is in place for ``model``."""
    manager: ClassManager[Any] | None = opt_manager_of_class(model)
    own = vars(manager).get("new_instance") if manager is not None else None
    return bool(getattr(own, "mosaic_fast", False))
