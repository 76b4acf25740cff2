"""Startup at scale: 200 generated plugins x 5 tables, import time vs ``load_plugins()`` time.

    python -m bench.run_startup                       # 200 x 5, 5 processes per mode
    python -m bench.run_startup --plugins 50 --repeat 3

Each measurement runs in a fresh Python process (imports are cached per process). The child
first imports sqlmosaic (``base``), then every generated plugin module (``import``: defining
1,000 SQLModel table classes and their repositories), then calls ``load_plugins()`` several
times: the first call is the *cold* one (what a host pays at startup), the later ones *warm*.
``load_plugins`` = discovery + selection + hook calls + validation (requirements, order, models,
repositories, foreign-key scope) + the merged MetaData (every table copied, tagged, checked).

Two modes:

* ``explicit``: ``load_plugins(plugins={name: module}, discover=False)``;
* ``entry_points``: the plugins are *installed* (a generated ``.dist-info`` with an
  ``entry_points.txt`` on ``sys.path``) and found by ``load_plugins(allow=[...200 names])``,
  which also scans every other distribution of the environment; the first-party plugins are
  installed too and skipped by the allowlist (never imported).

Then, in ``--repeat`` more fresh processes per mode (``--host``, on by default), the whole host
start, the first three requests (a repository ``get`` in a unit of work, on the first
repository in key order) and then two pages (``list()``), on a SQLite file where every table
exists (created before the start, untimed):

* ``host``: ``Mosaic(plugins=..., discover=False).start()`` as shipped: plugins loaded and
  SQLAlchemy's mappers configured in a worker thread, engine connected, startup hooks run;
* ``warm``: the same with ``MOSAIC_WARM_UP=true``: every repository's ``get`` and default page
  run once at start;
* ``lazy``: ``load_plugins`` + ``Database.connect()`` only (what a host without ``Mosaic`` does):
  nobody configures the mappers, so the first request pays for it;
* ``orm``: the reference: the same plugins loaded and mappers configured (in a worker thread),
  then plain SQLAlchemy (``session.get`` in ``async_sessionmaker.begin()``) on the same model.
  Its first request pays what any first use of a model pays in SQLAlchemy: compiling the
  statement into the engine's cache and setting up the model's loading.

Target (the benchmarks issue): ``load_plugins`` at most 0.5 s beyond the import time; the first
request after ``Mosaic.start()`` as fast as the second (``warm`` meets it at the start time it
shows; ``host``'s first against ``orm``'s first shows what of that first-use cost is
sqlmosaic's own).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._gen import generate

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MODES = ("explicit", "entry_points")
TARGET_SECONDS = 0.5


def child(mode: str, modules: list[str], names: list[str], loads: int, profile: str | None) -> None:
    """Runs in the measured process; prints one JSON line."""
    import importlib

    t0 = time.perf_counter()
    import sqlmosaic  # noqa: F401 - the library itself, before any plugin

    t1 = time.perf_counter()
    imported = [importlib.import_module(m) for m in modules]
    t2 = time.perf_counter()
    from sqlmosaic import load_plugins

    def load() -> Any:
        if mode == "explicit":
            return load_plugins(plugins=dict(zip(names, imported, strict=True)), discover=False)
        return load_plugins(allow=names)

    import gc

    # Garbage-collector passes during each load (load_plugins pauses the collector itself; this
    # shows whether any pass still lands inside it), and a full pass after the last load (the
    # work the pause defers; part of it is debt from the imports).
    passes: list[list[float]] = []
    started: list[float] = []

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started and passes:
            passes[-1].append(time.perf_counter() - started.pop())

    gc.callbacks.append(on_gc)
    times: list[float] = []
    # CPU seconds of each unprofiled load: the figure to read when other jobs load the machine
    cpu_times: list[float] = []
    result: Any = None
    for i in range(loads):
        passes.append([])
        if profile and i == 0:
            import cProfile

            prof = cProfile.Profile()
            start = time.perf_counter()
            prof.enable()
            result = load()
            prof.disable()
            times.append(time.perf_counter() - start)
            prof.dump_stats(profile)
        else:
            start, cpu = time.perf_counter(), time.process_time()
            result = load()
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu)
    gc.callbacks.remove(on_gc)
    # The merged MetaData (every table copied with the naming convention) is built on first use
    # of ``PluginSet.metadata``: what `mosaic db ...` and create_all pay, never a running host.
    t_meta, cpu_meta = time.perf_counter(), time.process_time()
    tables = len(result.metadata.tables)
    merged_metadata = time.perf_counter() - t_meta
    merged_metadata_cpu = time.process_time() - cpu_meta
    t3 = time.perf_counter()
    gc.collect()
    full_gc = time.perf_counter() - t3
    print(
        json.dumps(
            {
                "base_import": t1 - t0,
                "plugin_import": t2 - t1,
                "load": times,
                "load_cpu": cpu_times,
                "gc_passes_during_load": [len(p) for p in passes],
                "gc_seconds_during_load": [round(sum(p), 4) for p in passes],
                "full_gc_after_seconds": round(full_gc, 4),
                "merged_metadata_seconds": merged_metadata,
                "merged_metadata_cpu_seconds": merged_metadata_cpu,
                "tracked_objects": len(gc.get_objects()),
                "plugins": len(result.plugins),
                "tables": tables,
                "repositories": len(result.repositories),
                "skipped": [s.name for s in result.skipped],
            }
        )
    )


HOST_MODES = ("host", "warm", "lazy", "orm")


def host_child(mode: str, modules: list[str], names: list[str]) -> None:
    """Runs in the measured process (``mode`` one of ``HOST_MODES``); prints one JSON
    line. ``orm`` is the reference for the first request: the same plugins loaded and mappers
    configured as ``host`` does, then plain SQLAlchemy (``create_async_engine``,
    ``async_sessionmaker``, ``session.get`` in ``session.begin()``) on the same model."""
    import asyncio
    import importlib

    from sqlalchemy import create_engine, select
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    from sqlalchemy.orm import configure_mappers
    from sqlmodel import SQLModel

    from sqlmosaic import Database, Mosaic, MosaicSettings, load_plugins, transaction

    t0 = time.perf_counter()
    imported = [importlib.import_module(m) for m in modules]
    t1 = time.perf_counter()

    async def run(db_path: str) -> dict[str, Any]:
        settings = MosaicSettings(
            database_url=f"sqlite+aiosqlite:///{db_path}", warm_up=mode == "warm"
        )
        plugins = dict(zip(names, imported, strict=True))
        sync_engine = create_engine(f"sqlite:///{db_path}")  # untimed: the migrated database
        SQLModel.metadata.create_all(sync_engine)
        sync_engine.dispose()
        start = time.perf_counter()
        if mode in ("host", "warm"):
            mosaic = Mosaic(settings, plugins=plugins, discover=False)
            await mosaic.start()
            engine, registry = mosaic.database.engine, mosaic.plugins.repositories
        elif mode == "orm":
            loaded = await asyncio.to_thread(load_plugins, plugins=plugins, discover=False)
            await asyncio.to_thread(configure_mappers)
            engine, registry = create_async_engine(settings.url), loaded.repositories
            async with engine.connect():
                pass
        else:
            loaded = load_plugins(plugins=plugins, discover=False)
            database, registry = Database(settings), loaded.repositories
            await database.connect()
            engine = database.engine
        started = time.perf_counter() - start
        # the first in key order: warmed first, so the first a too small statement cache evicts
        repo_cls = registry[sorted(registry)[0]]
        model = repo_cls.model
        page = select(model).order_by(*repo_cls.primary_key()).limit(51).offset(0)
        requests, pages = [], []
        orm_sessions = async_sessionmaker(engine, expire_on_commit=False)
        sessions = (
            mosaic.database if mode in ("host", "warm") else database if mode == "lazy" else None
        )
        for op, times in [("get", requests)] * 3 + [("page", pages)] * 2:
            t = time.perf_counter()
            if mode == "orm":
                async with orm_sessions.begin() as orm_session:
                    if op == "get":
                        await orm_session.get(model, 1)
                    else:
                        (await orm_session.execute(page)).scalars().all()
            else:
                assert sessions is not None
                async with sessions.session() as session, transaction(session):
                    if op == "get":
                        await repo_cls(session).get_or_none(1)
                    else:
                        await repo_cls(session).list()
            times.append(time.perf_counter() - t)
        if mode in ("host", "warm"):
            await mosaic.stop()
        else:
            await engine.dispose()
        return {"start": started, "requests": requests, "pages": pages}

    with tempfile.TemporaryDirectory() as tmp:
        timing = asyncio.run(run(str(Path(tmp) / "host.sqlite")))
    print(json.dumps({"mode": mode, "plugin_import": t1 - t0, **timing}))


def run_child(
    root: Path, mode: str, modules: list[str], names: list[str], loads: int, profile: str | None
) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p
        for p in (str(root), str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH"))
        if p
    )
    spec = json.dumps({"mode": mode, "modules": modules, "names": names, "loads": loads})
    cmd = [sys.executable, "-m", "bench.run_startup", "--child", spec]
    if profile:
        cmd += ["--profile", profile]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child failed ({mode}):\n{out.stderr[-4000:]}")
    data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    cold = [r["load"][0] for r in runs]
    cold_cpu = [r["load_cpu"][0] for r in runs if r.get("load_cpu")]
    warm = [t for r in runs for t in r["load"][1:]]
    imp = [r["plugin_import"] for r in runs]
    base = [r["base_import"] for r in runs]

    def st(values: list[float]) -> dict[str, float] | None:
        if not values:
            return None
        return {
            "median": round(statistics.median(values), 4),
            "min": round(min(values), 4),
            "max": round(max(values), 4),
        }

    return {
        "processes": len(runs),
        "full_gc_after_seconds": st([r["full_gc_after_seconds"] for r in runs]),
        "gc_seconds_during_cold_load": st([r["gc_seconds_during_load"][0] for r in runs]),
        "tracked_objects": runs[0]["tracked_objects"],
        "sqlmosaic_import_seconds": st(base),
        "plugin_import_seconds": st(imp),
        "load_plugins_cold_seconds": st(cold),
        "load_plugins_warm_seconds": st(warm),
        "load_plugins_cold_cpu_seconds": st(cold_cpu),
        "merged_metadata_first_use_seconds": st(
            [r["merged_metadata_seconds"] for r in runs if "merged_metadata_seconds" in r]
        ),
        "load_plugins_cold_per_process": [round(c, 4) for c in cold],
        "target_seconds": TARGET_SECONDS,
        "target_met": statistics.median(cold) <= TARGET_SECONDS,
        "plugins": runs[0]["plugins"],
        "tables": runs[0]["tables"],
        "repositories": runs[0]["repositories"],
        "skipped": runs[0]["skipped"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.run_startup", description=__doc__.split("\n")[0]
    )
    p.add_argument("--plugins", type=int, default=200)
    p.add_argument("--tables", type=int, default=5, help="tables per plugin")
    p.add_argument("--repeat", type=int, default=5, help="fresh processes per mode")
    p.add_argument("--loads", type=int, default=3, help="load_plugins() calls per process")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--profile", help="cProfile the first load_plugins() of the first process")
    p.add_argument("--out", default=str(RESULTS_DIR / "startup.json"))
    p.add_argument(
        "--host",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time Mosaic.start() and the first requests (" + ", ".join(HOST_MODES) + ")",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        if spec["mode"] in HOST_MODES:
            host_child(spec["mode"], spec["modules"], spec["names"])
            return 0
        child(spec["mode"], spec["modules"], spec["names"], spec["loads"], args.profile)
        return 0

    from bench.run_data import machine_info

    started = time.perf_counter()
    modes = [m for m in args.modes.split(",") if m]
    with tempfile.TemporaryDirectory(prefix="sqlmosaic-bench-plugins-") as tmp:
        gen = generate(Path(tmp), args.plugins, args.tables)
        print(
            f"[startup] generated {len(gen.names)} plugins x {args.tables} tables in {tmp}",
            file=sys.stderr,
        )
        results: dict[str, Any] = {}
        for mode in modes:
            runs = []
            for i in range(args.repeat):
                prof = args.profile if (args.profile and i == 0) else None
                run = run_child(
                    gen.root, mode, list(gen.modules), list(gen.names), args.loads, prof
                )
                runs.append(run)
                print(
                    f"[startup] {mode:<12} #{i + 1}: import sqlmosaic {run['base_import']:.3f}s, "
                    f"plugins {run['plugin_import']:.3f}s, load_plugins "
                    + ", ".join(f"{t:.3f}s" for t in run["load"])
                    + " (CPU "
                    + ", ".join(f"{t:.3f}s" for t in run["load_cpu"])
                    + f"); merged metadata {run['merged_metadata_seconds']:.3f}s "
                    f"(CPU {run['merged_metadata_cpu_seconds']:.3f}s)",
                    file=sys.stderr,
                )
            results[mode] = {**summarize(runs), "runs": runs}
        hosts: dict[str, Any] = {}
        for mode in HOST_MODES if args.host else ():
            runs = []
            for i in range(args.repeat):
                run = run_child(gen.root, mode, list(gen.modules), list(gen.names), 1, None)
                runs.append(run)
                print(
                    f"[startup] {mode:<12} #{i + 1}: start {run['start']:.3f}s, requests "
                    + ", ".join(f"{t * 1000:.1f}ms" for t in run["requests"])
                    + ", pages "
                    + ", ".join(f"{t * 1000:.1f}ms" for t in run["pages"]),
                    file=sys.stderr,
                )
            hosts[mode] = {
                "start_seconds": statistics.median(r["start"] for r in runs),
                "first_request_ms": statistics.median(r["requests"][0] * 1000 for r in runs),
                "second_request_ms": statistics.median(r["requests"][1] * 1000 for r in runs),
                "first_page_ms": statistics.median(r["pages"][0] * 1000 for r in runs),
                "second_page_ms": statistics.median(r["pages"][1] * 1000 for r in runs),
                "runs": runs,
            }
    out = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "machine": {**machine_info(), "loadavg": os.getloadavg()},
        "config": {
            "plugins": args.plugins,
            "tables_per_plugin": args.tables,
            "processes_per_mode": args.repeat,
            "load_plugins_calls_per_process": args.loads,
            "requires": "plugin i requires i-1 and i//2; cross-plugin foreign keys to them",
        },
        "modes": results,
        "host_start": hosts,
    }
    print("\n== startup: load_plugins() vs import (seconds, median over processes) ==")
    for mode, r in results.items():
        print(
            f"{mode:<13} import {r['plugin_import_seconds']['median']:.3f}  "
            f"load cold {r['load_plugins_cold_seconds']['median']:.3f} "
            f"(min {r['load_plugins_cold_seconds']['min']:.3f}, "
            f"max {r['load_plugins_cold_seconds']['max']:.3f})  warm "
            f"{(r['load_plugins_warm_seconds'] or {}).get('median', float('nan')):.3f}  "
            f"target <= {TARGET_SECONDS}s: {'met' if r['target_met'] else 'MISSED'}  "
            f"merged metadata on first use "
            f"{r['merged_metadata_first_use_seconds']['median']:.3f}"
        )
    for mode, h in hosts.items():
        print(
            f"{mode:<13} start {h['start_seconds']:.3f}s  first request "
            f"{h['first_request_ms']:.1f} ms  second {h['second_request_ms']:.1f} ms  "
            f"first page {h['first_page_ms']:.1f} ms  second {h['second_page_ms']:.1f} ms"
        )
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"[startup] wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
