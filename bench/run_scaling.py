"""Read replicas on this machine: throughput, read-your-writes, a replica stopped mid-load.

Starts a private primary (migrated with the host's history) and two streaming replicas
(``sqlmosaic.testing._replication``), all on loopback, then measures:

- ``throughput``: read-only units of work (``list`` of 20 users out of 1,000) with 0, 1 and 2
  replicas, ROUNDS paired rounds (0, 1, 2, 0, 1, 2, ...), same concurrency;
- ``read_your_writes``: N write-then-read requests (each in a fresh context, as a request
  would be), CONCURRENCY at a time: stale reads (the read missed the request's own write) and
  where the reads were served;
- ``replica_stopped``: read-only ``run(..., read_only=True)`` load over 2 replicas; one replica
  is stopped (immediate) mid-load: failed requests, requests rerun on the primary.

    .venv/bin/python -m bench.run_scaling                  # results/scaling.json
    .venv/bin/python -m bench.run_scaling --quick          # small sizes, printed only
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

from mosaic_accounts import User, UserRepository
from sqlmosaic import Mosaic, MosaicSettings, UnitOfWork
from sqlmosaic.testing._pgserver import start_postgres
from sqlmosaic.testing._replication import start_replica

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "scaling.json"


async def host(primary: str, replicas: list[str]) -> Mosaic:
    settings = MosaicSettings.load(
        database_url=primary, read_replica_urls=",".join(replicas), pool_size=20
    )
    return await Mosaic(settings).start()


def fresh(coro: Any) -> asyncio.Task[Any]:
    return asyncio.create_task(coro, context=contextvars.Context())


async def read_load(mosaic: Mosaic, requests: int, concurrency: int) -> float:
    async def one() -> None:
        async with mosaic.unit_of_work(read_only=True) as uow:
            await uow.repository(UserRepository).list(order_by="email", limit=20)

    queue = iter(range(requests))

    async def worker() -> None:
        for _ in queue:
            await fresh(one())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return requests / (time.perf_counter() - started)


async def throughput(primary: str, replicas: list[str], args: argparse.Namespace) -> Any:
    hosts = {n: await host(primary, replicas[:n]) for n in (0, 1, 2)}
    try:
        for mosaic in hosts.values():  # warm the pools
            await read_load(mosaic, 200, args.concurrency)
        runs: dict[int, list[float]] = {0: [], 1: [], 2: []}
        for _round in range(args.rounds):
            for n, mosaic in hosts.items():
                runs[n].append(await read_load(mosaic, args.reads, args.concurrency))
    finally:
        for mosaic in hosts.values():
            await mosaic.stop()
    return {
        f"{n}_replicas": {"median_rps": round(statistics.median(v)), "runs": [round(x) for x in v]}
        for n, v in runs.items()
    }


async def read_your_writes(primary: str, replicas: list[str], args: argparse.Namespace) -> Any:
    mosaic = await host(primary, replicas)
    counts = {"stale": 0, "served_by_replica": 0, "served_by_primary": 0}

    async def request(n: int) -> None:
        email = f"ryw{n}@example.com"
        async with mosaic.unit_of_work() as uow:
            await uow.repository(UserRepository).add(User(email=email, name="W"))
        async with mosaic.unit_of_work(read_only=True) as uow:
            found = await uow.repository(UserRepository).exists(where={"email": email})
            on_replica = (await uow.session.exec(text("SELECT pg_is_in_recovery()"))).one()[0]
        counts["stale"] += not found
        counts["served_by_replica" if on_replica else "served_by_primary"] += 1

    queue = iter(range(args.writes))

    async def worker() -> None:
        for n in queue:
            await fresh(request(n))

    try:
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    finally:
        await mosaic.stop()
    return {"requests": args.writes, "concurrency": args.concurrency, **counts}


async def replica_stopped(primary: str, replicas: list[Any], args: argparse.Namespace) -> Any:
    mosaic = await host(primary, [r.url("app") for r in replicas])
    counts = {"requests": 0, "failed": 0, "rerun_on_primary": 0}
    stop_at = args.reads // 3

    async def one() -> None:
        attempts = 0

        async def body(uow: UnitOfWork) -> None:
            nonlocal attempts
            attempts += 1
            await uow.repository(UserRepository).list(order_by="email", limit=20)

        try:
            await mosaic.run(body, read_only=True)
        except Exception:
            counts["failed"] += 1
        counts["rerun_on_primary"] += attempts > 1
        counts["requests"] += 1

    queue = iter(range(args.reads))
    stopper: threading.Thread | None = None

    async def worker() -> None:
        nonlocal stopper
        for n in queue:
            if n == stop_at:
                stopper = threading.Thread(target=replicas[1].stop)
                stopper.start()  # stops while other requests run on it
            await fresh(one())

    try:
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    finally:
        await mosaic.stop()
        if stopper is not None:
            await asyncio.to_thread(stopper.join)
        await asyncio.to_thread(replicas[1].start)
    return counts


def create_and_migrate(admin_url: str, url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute('CREATE DATABASE "app"')
    mosaic_cli = str(Path(sys.executable).parent / "mosaic")
    subprocess.run(
        [mosaic_cli, "db", "upgrade", "--database-url", url],
        cwd=REPO,
        check=True,
        capture_output=True,
    )


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    primary = await asyncio.to_thread(start_postgres)
    replicas: list[Any] = []
    try:
        url = primary.url("app")
        await asyncio.to_thread(create_and_migrate, primary.url("postgres", driver=""), url)
        async with (
            Mosaic(MosaicSettings.load(database_url=url)) as mosaic,
            mosaic.unit_of_work() as uow,
        ):
            await uow.repository(UserRepository).add_many(
                [User(email=f"seed{i}@example.com", name=f"S{i}") for i in range(1000)]
            )
        for _ in range(2):
            replicas.append(await asyncio.to_thread(start_replica, primary))
        urls = [r.url("app") for r in replicas]
        return {
            "machine": "shared, loaded 2-core dev machine; primary and replicas on it too",
            "throughput": await throughput(url, urls, args),
            "read_your_writes": await read_your_writes(url, urls, args),
            "replica_stopped": await replica_stopped(url, replicas, args),
        }
    finally:
        for replica in replicas:
            replica.remove()
        primary.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--writes", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.reads, args.writes, args.rounds = 300, 300, 1
    result = asyncio.run(measure(args))
    print(json.dumps(result, indent=2))
    if not args.quick:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
