"""sqlmosaic's bulk insert of model objects: ``add_many([Item(**row) for row in rows])``.

The ``sqlmosaic`` stack hands ``add_many`` the row mappings (it builds the objects itself,
without SQLModel's per-attribute ``__setattr__``); this variant builds them with the model's
constructor first, as code that already holds model objects does. Bulk ops only.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench._schema import ItemRow
from bench.stacks.sqlmosaic import Item, ItemRepository, Sqlmosaic
from sqlmosaic import transaction


class SqlmosaicObjects(Sqlmosaic):
    name = "sqlmosaic_objects"
    order = 52
    description = "sqlmosaic Repository.add_many of Item(**row) objects; bulk ops only"
    ops = frozenset({"bulk_insert"})

    async def bulk_insert(self, rows: Sequence[ItemRow]) -> None:
        async with self.sessions() as session, transaction(session):
            await ItemRepository(session).add_many([Item(**r) for r in rows])


STACK = SqlmosaicObjects
