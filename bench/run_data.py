"""Data-access benchmark: the same work on the same table through every stack in bench/stacks.

    python -m bench.run_data --backend both --scale 1 --rounds 3

Per backend: one untimed warm-up round (which also counts statements per op), then ``--rounds``
timed rounds. In every round each operation is run by every stack back to back (the stack order
rotates from round to round), so ratios compare measurements taken seconds apart on this noisy
machine. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._db import Admin, postgres_database, sqlite_database
from bench._schema import ItemRow, make_rows
from bench.stacks import (
    BACKENDS,
    PAGE_SIZE,
    POOL_SIZE,
    SQLITE_PRAGMAS,
    Backend,
    DbTarget,
    Stack,
    discover,
)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REF_ORM = "sa_orm"
REF_RAW: dict[Backend, str] = {"postgres": "asyncpg_raw", "sqlite": "aiosqlite_raw"}
CONCURRENT_TASKS = 64
PAGE_WINDOW = 5_000  # page offsets are drawn from the first PAGE_WINDOW rows (first 100 pages)
LIBRARIES = (
    "sqlalchemy",
    "sqlmodel",
    "asyncpg",
    "aiosqlite",
    "advanced-alchemy",
    "greenlet",
    "pydantic",
    "sqlmosaic",
)


@dataclass(frozen=True)
class OpSpec:
    name: str
    base: int  # count at --scale 1
    unit: str
    what: str


OPS: tuple[OpSpec, ...] = (
    OpSpec("insert_one", 2_000, "ops/s", "insert one row + commit"),
    OpSpec("bulk_insert", 20_000, "rows/s", "insert N rows in one transaction (N = count)"),
    OpSpec(
        "bulk_insert_prebuilt",
        20_000,
        "rows/s",
        "same, objects/tuples built before the clock starts (library insert path only)",
    ),
    OpSpec("get", 5_000, "ops/s", "get by primary key, own session each"),
    OpSpec("page", 1_000, "ops/s", f"{PAGE_SIZE} rows ordered by id at a random offset"),
    OpSpec(
        "concurrent_get",
        200,
        "ops/s",
        f"{CONCURRENT_TASKS} tasks x count gets, pool of {POOL_SIZE}",
    ),
    OpSpec("update", 2_000, "ops/s", "update one row + commit"),
)


def runs(order: Sequence[Stack], op: str) -> list[Stack]:
    """The stacks of ``order`` that take part in ``op`` (see ``Stack.ops``)."""
    return [s for s in order if s.runs(op)]


def scaled(base: int, factor: float) -> int:
    return max(1, round(base * factor))


@dataclass
class Measurements:
    """Per op -> stack: timed throughput per round, and counts from the warm-up round."""

    throughput: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    cpu: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # process CPU us/op
    statements: dict[str, dict[str, float]] = field(default_factory=dict)
    tx: dict[str, dict[str, float]] = field(default_factory=dict)
    orders: list[list[str]] = field(default_factory=list)

    def add(self, op: str, stack: str, value: float, cpu_us: float) -> None:
        self.throughput.setdefault(op, {}).setdefault(stack, []).append(value)
        self.cpu.setdefault(op, {}).setdefault(stack, []).append(cpu_us)


class Runner:
    def __init__(
        self,
        backend: Backend,
        stacks: list[Stack],
        admin: Admin,
        counts: dict[str, int],
        *,
        seed: int,
        warmup_fraction: float,
        ops: set[str] | None = None,
    ) -> None:
        self.backend = backend
        self.stacks = stacks
        self.admin = admin
        self.counts = counts
        self.seed = seed
        self.warmup_fraction = warmup_fraction
        self.m = Measurements()
        self.ops = ops if ops is not None else {spec.name for spec in OPS}

    def runs(self, order: Sequence[Stack], op: str) -> list[Stack]:
        """The stacks of ``order`` that take part in ``op`` (none if ``op`` is not selected)."""
        return runs(order, op) if op in self.ops else []

    def log(self, msg: str) -> None:
        print(f"[{self.backend}] {msg}", file=sys.stderr, flush=True)

    async def measure(
        self,
        rnd: int,
        op: str,
        stack: Stack,
        units: int,
        n_ops: int,
        body: Callable[[], Awaitable[None]],
    ) -> None:
        """Run ``body`` once; in the warm-up round (rnd < 0) count statements, else time it."""
        await self.admin.settle()
        gc.collect()
        warmup = rnd < 0
        if warmup:
            stack.start_counting()
        try:
            t0 = time.perf_counter()
            c0 = time.process_time()
            await body()
            elapsed = time.perf_counter() - t0
            cpu = time.process_time() - c0
        finally:
            if warmup:
                stack.stop_counting()
        if warmup:
            stmts, tx = stack.counter.statements / n_ops, stack.counter.tx / n_ops
            self.m.statements.setdefault(op, {})[stack.name] = stmts
            self.m.tx.setdefault(op, {})[stack.name] = tx
            self.log(
                f"warm-up {op:<14} {stack.name:<16} {elapsed:7.2f}s "
                f"stmts/op={stmts:.2f} tx/op={tx:.2f}"
            )
        else:
            self.m.add(op, stack.name, units / elapsed, cpu / n_ops * 1e6)
            self.log(
                f"round {rnd + 1} {op:<14} {stack.name:<16} {units / elapsed:12,.0f}/s "
                f"cpu {cpu / n_ops * 1e6:9,.1f} us/op"
            )

    async def run_round(self, rnd: int) -> None:
        warmup = rnd < 0
        rng = random.Random(self.seed * 1_000 + rnd)
        k = (rnd + 1) % len(self.stacks) if not warmup else 0
        order = self.stacks[k:] + self.stacks[:k]
        if not warmup:
            self.m.orders.append([s.name for s in order])

        def n(op: str) -> int:
            """Ops this round; the warm-up runs fewer, except bulk (its statement count
            depends on the row count)."""
            full = self.counts[op]
            if not warmup or op.startswith("bulk_insert"):
                return full
            return min(full, max(50, round(full * self.warmup_fraction)))

        # insert_one: each stack starts from an empty table
        rows_one = make_rows(n("insert_one"), prefix=f"one{rnd}")
        for stack in self.runs(order, "insert_one"):
            await self.admin.reset()

            async def insert_loop(stack: Stack = stack, rows: list[ItemRow] = rows_one) -> None:
                for row in rows:
                    await stack.insert_one(row)

            await self.measure(rnd, "insert_one", stack, len(rows_one), len(rows_one), insert_loop)
            await self._expect_count(stack, len(rows_one))

        # bulk_insert: each stack starts from an empty table (the prebuilt op below leaves the
        # data set)
        rows_bulk = make_rows(n("bulk_insert"))
        for stack in self.runs(order, "bulk_insert"):
            await self.admin.reset()

            async def bulk(stack: Stack = stack, rows: list[ItemRow] = rows_bulk) -> None:
                await stack.bulk_insert(rows)

            await self.measure(rnd, "bulk_insert", stack, len(rows_bulk), 1, bulk)
            await self._expect_count(stack, len(rows_bulk))

        # bulk_insert_prebuilt: the same, with each stack's objects built untimed beforehand
        rows_pre = make_rows(n("bulk_insert_prebuilt"))
        for stack in self.runs(order, "bulk_insert_prebuilt"):
            await self.admin.reset()
            prepared = stack.prepare_bulk(rows_pre)

            async def bulk_pre(stack: Stack = stack, prepared: Any = prepared) -> None:
                await stack.bulk_insert_prepared(prepared)

            await self.measure(rnd, "bulk_insert_prebuilt", stack, len(rows_pre), 1, bulk_pre)
            del prepared
            await self._expect_count(stack, len(rows_pre))

        if not self.ops & {"bulk_insert", "bulk_insert_prebuilt"}:
            # --ops without a bulk op: load the data set untimed, through the first stack
            await self.admin.reset()
            await self.stacks[0].bulk_insert(make_rows(self.counts["bulk_insert"]))
            await self.admin.settle()
        ids = await self.admin.ids()

        # get
        get_ids = [rng.choice(ids) for _ in range(n("get"))]
        for stack in self.runs(order, "get"):

            async def get_loop(stack: Stack = stack) -> None:
                for item_id in get_ids:
                    await stack.get(item_id)

            await self.measure(rnd, "get", stack, len(get_ids), len(get_ids), get_loop)

        # page
        window = min(len(ids), PAGE_WINDOW)
        offsets = [rng.randrange(max(1, window - PAGE_SIZE + 1)) for _ in range(n("page"))]
        expected = min(PAGE_SIZE, len(ids))
        for stack in self.runs(order, "page"):

            async def page_loop(stack: Stack = stack) -> None:
                for offset in offsets:
                    rows = await stack.page(offset)
                    if warmup and len(rows) != expected:
                        raise AssertionError(f"{stack.name}.page({offset}) gave {len(rows)} rows")

            await self.measure(rnd, "page", stack, len(offsets), len(offsets), page_loop)

        # concurrent_get: 64 tasks, each doing its own sequence of gets
        per_task = [
            [rng.choice(ids) for _ in range(n("concurrent_get"))] for _ in range(CONCURRENT_TASKS)
        ]
        total = sum(len(t) for t in per_task)
        for stack in self.runs(order, "concurrent_get"):

            async def concurrent(stack: Stack = stack) -> None:
                async def worker(task_ids: list[int]) -> None:
                    for item_id in task_ids:
                        await stack.get(item_id)

                await asyncio.gather(*(worker(t) for t in per_task))

            await self.measure(rnd, "concurrent_get", stack, total, total, concurrent)

        # update: every stack sets qty to its own marker value on the same random, distinct rows
        # (distinct so that every update really changes a value: an ORM skips no-op UPDATEs)
        upd_ids = rng.sample(ids, min(n("update"), len(ids)))
        for idx, stack in enumerate(self.runs(order, "update")):
            marker = 1_000_000 + (rnd + 2) * 1_000 + idx  # bulk rows have qty < 1000

            async def update_loop(stack: Stack = stack, qty: int = marker) -> None:
                for item_id in upd_ids:
                    await stack.update(item_id, qty)

            await self.measure(rnd, "update", stack, len(upd_ids), len(upd_ids), update_loop)
            got = await self.admin.count_qty(marker)
            if got != len(upd_ids):
                raise AssertionError(f"{stack.name}.update: {got} rows updated, not {len(upd_ids)}")

    async def _expect_count(self, stack: Stack, expected: int) -> None:
        got = await self.admin.count()
        if got != expected:
            raise AssertionError(f"{stack.name}: table has {got} rows, expected {expected}")


def _stats(values: Sequence[float]) -> dict[str, Any]:
    return {
        "rounds": [round(v, 4) for v in values],
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def summarize(
    backend: Backend, m: Measurements, counts: dict[str, int], names: Sequence[str]
) -> dict[str, Any]:
    ops: dict[str, Any] = {}
    for spec in OPS:
        if spec.name not in m.throughput:  # not selected (--ops)
            continue
        per_stack = m.throughput[spec.name]
        op_out: dict[str, Any] = {}
        for stack in names:
            if stack not in per_stack:  # a variant that only runs some ops
                continue
            values = per_stack[stack]
            entry: dict[str, Any] = {"unit": spec.unit, **_stats(values)}
            for key, ref in (("ratio_vs_orm", REF_ORM), ("ratio_vs_raw", REF_RAW[backend])):
                ref_values = per_stack.get(ref)
                if ref_values is None:
                    entry[key] = None
                    continue
                ratios = [a / b for a, b in zip(values, ref_values, strict=True)]
                stats = _stats(ratios)
                entry[key] = stats["median"]
                entry[f"{key}_rounds"] = stats["rounds"]
                entry[f"{key}_min"] = stats["min"]
                entry[f"{key}_max"] = stats["max"]
            cpu = m.cpu[spec.name][stack]
            entry["cpu_us_per_op"] = _stats(cpu)
            ref_cpu = m.cpu[spec.name].get(REF_ORM)
            # > 1: the stack spends less client CPU per op than the ORM (same round)
            entry["cpu_ratio_vs_orm"] = (
                None
                if ref_cpu is None
                else _stats([r / c for r, c in zip(ref_cpu, cpu, strict=True)])["median"]
            )
            entry["statements_per_op"] = m.statements.get(spec.name, {}).get(stack)
            entry["tx_control_per_op"] = m.tx.get(spec.name, {}).get(stack)
            op_out[stack] = entry
        count = counts[spec.name]
        ops[spec.name] = {
            "what": spec.what,
            "count": count * CONCURRENT_TASKS if spec.name == "concurrent_get" else count,
            "unit": spec.unit,
            "stacks": op_out,
        }
    return ops


def print_table(backend: Backend, ops: dict[str, Any]) -> None:
    raw = REF_RAW[backend]
    print(f"\n== {backend}: median throughput (min-max), ratios = stack / reference, same round ==")
    header = (
        f"{'stack':<16} {'median':>12} {'min-max':>21} {'x orm':>6} {'x raw':>6} "
        f"{'stmt/op':>8} {'tx/op':>6} {'cpu us/op':>10} {'cpu x orm':>9}"
    )
    for name, op in ops.items():
        print(f"\n{name} - {op['what']} (count {op['count']:,}, {op['unit']})")
        print(header)
        for stack, e in op["stacks"].items():

            def f(v: float | None, spec: str = ".2f") -> str:
                return "-" if v is None else format(v, spec)

            rng = f"{e['min']:,.0f}-{e['max']:,.0f}"
            print(
                f"{stack:<16} {e['median']:>12,.0f} {rng:>21} {f(e['ratio_vs_orm']):>6} "
                f"{f(e['ratio_vs_raw']):>6} {f(e['statements_per_op']):>8} "
                f"{f(e['tx_control_per_op']):>6} {e['cpu_us_per_op']['median']:>10,.1f} "
                f"{f(e['cpu_ratio_vs_orm']):>9}"
            )
    print(
        f"(x raw = relative to {raw}; x orm = relative to {REF_ORM}; >1 is faster; cpu = this "
        "process's CPU time per op, all threads; cpu x orm = orm cpu / stack cpu)"
    )


def machine_info() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            versions[lib] = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "libraries": versions,
    }


async def run_backend(backend: Backend, args: argparse.Namespace) -> dict[str, Any]:
    classes = [c for c in discover(args.stacks) if backend in c.backends]
    if not classes:
        raise SystemExit(f"no stack runs on {backend}")
    counts = {spec.name: scaled(spec.base, args.scale) for spec in OPS}
    db_cm: AbstractAsyncContextManager[DbTarget]
    if backend == "postgres":
        db_cm = postgres_database(args.pg_url, keep=args.keep_db)
    else:
        db_cm = sqlite_database(args.sqlite_path, keep=args.keep_db)
    started = time.perf_counter()
    load_before = os.getloadavg()
    async with db_cm as db:
        admin = Admin(db)
        await admin.open()
        stacks: list[Stack] = []
        try:
            for cls in classes:
                stack = cls()
                await stack.setup(db)
                stacks.append(stack)
            runner = Runner(
                backend,
                stacks,
                admin,
                counts,
                seed=args.seed,
                warmup_fraction=args.warmup_fraction,
                ops=args.ops,
            )
            runner.log(f"stacks: {', '.join(s.name for s in stacks)}; counts: {counts}")
            await runner.run_round(-1)
            for rnd in range(args.rounds):
                await runner.run_round(rnd)
            server = await admin.server_info()
        finally:
            for stack in stacks:
                await stack.teardown()
            await admin.close()
    elapsed = time.perf_counter() - started
    ops = summarize(backend, runner.m, counts, [s.name for s in stacks])
    print_table(backend, ops)
    print(f"[{backend}] finished in {elapsed:.0f}s", file=sys.stderr)
    return {
        "backend": backend,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_seconds": round(elapsed, 1),
        "machine": {
            **machine_info(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "server": server,
        "config": {
            "scale": args.scale,
            "rounds": args.rounds,
            "seed": args.seed,
            "warmup_fraction": args.warmup_fraction,
            "counts": counts,
            "ops": [spec.name for spec in OPS if spec.name in runner.ops],
            "concurrent_tasks": CONCURRENT_TASKS,
            "pool_size": POOL_SIZE,
            "page_size": PAGE_SIZE,
            "page_window": PAGE_WINDOW,
            "sqlite_connection_pragmas": list(SQLITE_PRAGMAS) if backend == "sqlite" else None,
            "reference_orm": REF_ORM,
            "reference_raw": REF_RAW[backend],
            "ratio_definition": "throughput(stack) / throughput(reference) in the same round; "
            "ratio_vs_* is the median over rounds (>1 = faster than the reference)",
            "stack_order_per_round": runner.m.orders,
            "stacks": {s.name: s.description for s in stacks},
        },
        "ops": ops,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run_data", description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every op count (0.05: smoke)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds (plus one warm-up round)")
    p.add_argument(
        "--stacks",
        type=lambda s: {x.strip() for x in s.split(",") if x.strip()},
        default=None,
        help="comma-separated stack names (default: all that support the backend)",
    )
    p.add_argument(
        "--ops",
        type=lambda s: {x.strip() for x in s.split(",") if x.strip()},
        default=None,
        help=f"comma-separated ops (default: all of {', '.join(o.name for o in OPS)})",
    )
    p.add_argument("--pg-url", help="any database URL on an existing server (default: throwaway)")
    p.add_argument("--sqlite-path", help="new SQLite file to use (default: in a temp dir)")
    p.add_argument("--keep-db", action="store_true", help="do not drop the database afterwards")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--warmup-fraction",
        type=float,
        default=0.1,
        help="warm-up op counts as a fraction of the timed ones (min 50; bulk always full size)",
    )
    p.add_argument(
        "--out",
        default=str(RESULTS_DIR / "data-{backend}.json"),
        help="results JSON; {backend} is replaced (default: bench/results/data-{backend}.json)",
    )
    p.add_argument("--list-stacks", action="store_true", help="list stacks and exit")
    args = p.parse_args(argv)
    if args.scale <= 0 or args.rounds < 1:
        p.error("--scale must be > 0 and --rounds >= 1")
    if args.ops is not None and args.ops - {o.name for o in OPS}:
        p.error(f"unknown op(s): {', '.join(sorted(args.ops - {o.name for o in OPS}))}")
    if args.backend == "both" and "{backend}" not in args.out:
        p.error("--out needs a {backend} placeholder with --backend both")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list_stacks:
        for cls in discover(args.stacks, include_optin=True):
            optin = "" if cls.default_enabled else " [opt-in]"
            print(f"{cls.name:<16} {','.join(sorted(cls.backends)):<16} {cls.description}{optin}")
        return 0
    backends: list[Backend] = list(BACKENDS) if args.backend == "both" else [args.backend]
    for backend in backends:
        result = asyncio.run(run_backend(backend, args))
        out = Path(args.out.replace("{backend}", backend))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"[{backend}] wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
