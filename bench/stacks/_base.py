"""The interface every benchmarked stack implements, and what the runner hands it."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from bench._schema import ItemRow

Backend = Literal["postgres", "sqlite"]
BACKENDS: tuple[Backend, ...] = ("postgres", "sqlite")

POOL_SIZE = 10  # connections per stack, no overflow, on every backend
PAGE_SIZE = 50

# SQLite connection settings applied by every stack to every connection it opens
# (journal_mode=WAL is persistent and set once when the database file is created).
SQLITE_PRAGMAS = ("PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=5000")


@dataclass(frozen=True)
class DbTarget:
    """A fresh database for one run.

    ``sa_url``: SQLAlchemy URL (``postgresql+asyncpg://...`` or ``sqlite+aiosqlite:///path``).
    ``raw_dsn``: what the raw driver connects with (``postgresql://...`` or the file path).
    """

    backend: Backend
    sa_url: str
    raw_dsn: str


class StatementCounter:
    """SQL statements a stack sends while counting is on.

    ``statements``: SELECT/INSERT/UPDATE sent (an ``executemany`` counts once per call, or once
    per batch when SQLAlchemy splits it into "insertmanyvalues" batches).
    ``tx``: transaction control (BEGIN, COMMIT, ROLLBACK) the stack issues explicitly or that its
    library issues (SQLAlchemy: engine ``begin``/``commit``/``rollback`` events).
    """

    __slots__ = ("enabled", "statements", "tx")

    def __init__(self) -> None:
        self.enabled = False
        self.statements = 0
        self.tx = 0

    def reset(self) -> None:
        self.statements = 0
        self.tx = 0


class Stack(abc.ABC):
    """One data-access stack. The runner creates one instance per backend and calls:

    ``setup`` once; then, interleaved with the other stacks, the operations below; then
    ``teardown``. Every operation is one logical unit of work done the stack's idiomatic way, and
    opens/closes its own session or connection checkout (a pool of :data:`POOL_SIZE`).

    Adding a stack = one module in ``bench/stacks/`` that defines a subclass and sets
    ``STACK = TheSubclass`` (see README.md).
    """

    name: ClassVar[str]
    """Short unique id used in results (``sa_orm``, ``asyncpg_raw``...)."""
    backends: ClassVar[frozenset[Backend]] = frozenset(BACKENDS)
    """Backends this stack runs on."""
    order: ClassVar[int] = 100
    """Position in reports (lower first)."""
    description: ClassVar[str] = ""
    default_enabled: ClassVar[bool] = True
    """False: only runs when named in ``--stacks`` (diagnostic variants)."""
    ops: ClassVar[frozenset[str] | None] = None
    """Operations this stack takes part in (``None``: all). A variant that only adds another
    way of doing one op (e.g. a COPY-based ``bulk_insert``) names just that op; the others are
    then never called and may simply raise ``NotImplementedError``."""

    @classmethod
    def runs(cls, op: str) -> bool:
        return cls.ops is None or op in cls.ops

    def __init__(self) -> None:
        self.counter = StatementCounter()

    # -- lifecycle -------------------------------------------------------------------------
    @abc.abstractmethod
    async def setup(self, db: DbTarget) -> None:
        """Create the pool/engine (``POOL_SIZE`` connections) and anything reused across ops."""

    @abc.abstractmethod
    async def teardown(self) -> None:
        """Close everything ``setup`` opened."""

    # -- operations ------------------------------------------------------------------------
    @abc.abstractmethod
    async def insert_one(self, row: ItemRow) -> int:
        """Insert one row and commit; return its new id."""

    @abc.abstractmethod
    async def bulk_insert(self, rows: Sequence[ItemRow]) -> None:
        """Insert all ``rows`` in one transaction and commit."""

    def prepare_bulk(self, rows: Sequence[ItemRow]) -> Any:
        """Untimed: build what :meth:`bulk_insert_prepared` takes (model objects, tuples...).

        The ``bulk_insert_prebuilt`` op measures only the library's insert path, with the
        objects already built (``bulk_insert`` times building them too). Default: the rows.
        """
        return rows

    async def bulk_insert_prepared(self, prepared: Any) -> None:
        """Insert what :meth:`prepare_bulk` built, in one transaction, and commit."""
        await self.bulk_insert(prepared)

    @abc.abstractmethod
    async def get(self, item_id: int) -> object:
        """Load one row by primary key in its own short session; return it (never None)."""

    @abc.abstractmethod
    async def page(self, offset: int) -> Sequence[object]:
        """Load ``PAGE_SIZE`` rows ordered by id starting at ``offset``, in its own session."""

    @abc.abstractmethod
    async def update(self, item_id: int, qty: int) -> None:
        """Set ``qty`` of row ``item_id`` and commit."""

    # -- statement counting ----------------------------------------------------------------
    def start_counting(self) -> None:
        """Counting is only on during the untimed warm-up round. Raw stacks check
        ``self.counter.enabled`` in their wrappers; SQLAlchemy stacks attach engine listeners."""
        self.counter.reset()
        self.counter.enabled = True

    def stop_counting(self) -> None:
        self.counter.enabled = False
