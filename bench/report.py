"""Markdown tables from bench/results/*.json (what docs/performance.md shows).

python -m bench.report                 # all tables, from bench/results
python -m bench.report --dir /tmp/x    # from another results directory
python -m bench.report --summary       # only sqlmosaic's stacks against the ORM, per op
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _f(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def data_tables(result: dict[str, Any]) -> str:
    backend = result["backend"]
    raw = result["config"]["reference_raw"]
    out = [
        f"#### {backend}: {result['config']['rounds']} rounds, {result['timestamp']}",
        "",
        f"Median (min-max) per round; **x ORM** / **x {raw}** = throughput ratio in the same "
        "round (median over rounds, >1 faster); **CPU/op** = this process's CPU time per op "
        "(bulk: per 20,000 rows) and **CPU x ORM** = ORM CPU / stack CPU (>1 cheaper); "
        "statements and BEGIN/COMMIT/ROLLBACK per op from the warm-up round.",
        "",
    ]
    for name, op in result["ops"].items():
        out += [
            f"**{name}** - {op['what']} ({op['count']:,}, {op['unit']})",
            "",
            f"| stack | median | min-max | x ORM | x {raw} | CPU/op (us) | CPU x ORM "
            "| stmts/op | tx/op |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for stack, e in op["stacks"].items():
            bold = "**" if stack.startswith("sqlmosaic") else ""
            out.append(
                f"| {bold}{stack}{bold} | {e['median']:,.0f} | {e['min']:,.0f}-{e['max']:,.0f} "
                f"| {_f(e['ratio_vs_orm'])} | {_f(e['ratio_vs_raw'])} "
                f"| {e['cpu_us_per_op']['median']:,.0f} | {_f(e['cpu_ratio_vs_orm'])} "
                f"| {_f(e['statements_per_op'], 'g')} | {_f(e['tx_control_per_op'], 'g')} |"
            )
        out.append("")
    return "\n".join(out)


_CONDENSED = {
    "insert_one": "insert one + commit",
    "bulk_insert": "bulk insert, 20,000 rows",
    "bulk_insert_prebuilt": "bulk, objects prebuilt",
    "get": "get by primary key",
    "page": "page of 50",
    "concurrent_get": "64 x 200 concurrent gets",
    "update": "update one + commit",
}


#: The plain ORM with the safety sqlmosaic's shipped engine has: a ping before every checkout on
#: PostgreSQL (``pool_pre_ping``), real transactions on SQLite (SQLAlchemy's BEGIN recipe).
SAME_SAFETY = {"postgres": "sa_orm_preping", "sqlite": "sa_orm_sqlite_tx"}


def _paired_ratio(stack: dict[str, Any], other: dict[str, Any] | None) -> str:
    """Median over rounds of stack / other throughput in the same round ('-' if not run)."""
    if other is None or len(other["rounds"]) != len(stack["rounds"]):
        return "-"
    ratios = [a / b for a, b in zip(stack["rounds"], other["rounds"], strict=True)]
    return f"{statistics.median(ratios):.2f}"


def condensed_table(result: dict[str, Any]) -> str:
    """sqlmosaic's stacks against the ORM, one row per op (the summary in performance.md)."""
    raw = result["config"]["reference_raw"]
    safe_name = SAME_SAFETY.get(result["backend"], "")
    out = [
        f"| op | stack | sqlmosaic | ORM | x ORM (min-max) | CPU x ORM | x `{safe_name}` "
        f"| x {raw} | SQLModel x ORM | stmts/op (sqlmosaic / ORM) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, op in result["ops"].items():
        stacks = op["stacks"]
        orm, sqlmodel = stacks.get("sa_orm"), stacks.get("sqlmodel_async")
        for stack in ("sqlmosaic", "sqlmosaic_objects", "sqlmosaic_copy"):
            e = stacks.get(stack)
            if e is None or orm is None:
                continue
            out.append(
                f"| {_CONDENSED.get(name, name)} ({op['unit']}) | `{stack}` "
                f"| {e['median']:,.0f} | {orm['median']:,.0f} "
                f"| {e['ratio_vs_orm']:.2f} ({e['ratio_vs_orm_min']:.2f}-"
                f"{e['ratio_vs_orm_max']:.2f}) | {_f(e['cpu_ratio_vs_orm'])} "
                f"| {_paired_ratio(e, stacks.get(safe_name))} "
                f"| {_f(e['ratio_vs_raw'])} "
                f"| {_f(sqlmodel['ratio_vs_orm']) if sqlmodel else '-'} "
                f"| {_f(e['statements_per_op'], 'g')} / {_f(orm['statements_per_op'], 'g')} |"
            )
    return "\n".join(out)


def startup_table(result: dict[str, Any]) -> str:
    cfg = result["config"]
    out = [
        f"{cfg['plugins']} plugins x {cfg['tables_per_plugin']} tables, "
        f"{cfg['processes_per_mode']} fresh processes per mode, {result['timestamp']}. Seconds, "
        "median (min-max) over processes.",
        "",
        "| mode | import sqlmosaic | import the plugins | load_plugins (cold) | "
        "load_plugins (warm) | full GC pass afterwards | target ≤ 0.5 s |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for mode, r in result["modes"].items():
        cold, warm = r["load_plugins_cold_seconds"], r["load_plugins_warm_seconds"] or {}
        out.append(
            f"| {mode} | {r['sqlmosaic_import_seconds']['median']:.3f} "
            f"| {r['plugin_import_seconds']['median']:.3f} "
            f"| {cold['median']:.3f} ({cold['min']:.3f}-{cold['max']:.3f}) "
            f"| {_f(warm.get('median'), '.3f')} "
            f"| {r['full_gc_after_seconds']['median']:.3f} "
            f"| {'met' if r['target_met'] else 'missed'} |"
        )
    hosts = result.get("host_start") or {}
    if hosts:
        out += [
            "",
            "Host start, then three gets and two pages (milliseconds; start in seconds), median "
            "over processes.",
            "",
            "| mode | start | first get | second get | first page | second page |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for mode, h in hosts.items():
            pages = [h.get("first_page_ms"), h.get("second_page_ms")]
            out.append(
                f"| {mode} | {h['start_seconds']:.2f} | {h['first_request_ms']:.1f} "
                f"| {h['second_request_ms']:.1f} | {_f(pages[0], '.1f')} | {_f(pages[1], '.1f')} |"
            )
    return "\n".join(out)


def check_table(result: dict[str, Any]) -> str:
    out = [
        f"{result['config']['schema']}; {result['timestamp']}. Seconds, median (min-max).",
        "",
        "| tables | plugins | check() | per table | orphans() | `mosaic db check` (CLI, "
        "new process) | autogenerate | upgrade |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["sizes"].values():
        c, cli = r["check"], r.get("cli")
        cli_text = f"{cli['median']:.2f} ({cli['min']:.2f}-{cli['max']:.2f})" if cli else "-"
        out.append(
            f"| {r['tables']:,} | {r['plugins']} | {c['median']:.2f} ({c['min']:.2f}-"
            f"{c['max']:.2f}) | {c['median'] / r['tables'] * 1000:.1f} ms "
            f"| {r['orphans']['median']:.3f} | {cli_text} | {r['autogenerate_seconds']:.2f} "
            f"| {r['upgrade_seconds']:.2f} |"
        )
    return "\n".join(out)


def fixtures_table(result: dict[str, Any]) -> str:
    cfg = result["config"]
    out = [
        f"N = {cfg['n']} isolated sessions, {cfg['clones']} clones; {result['timestamp']}. "
        "Milliseconds per test.",
        "",
        "| backend | what | median | p90 | min | max |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for backend, r in result["results"].items():
        for name, s in r.items():
            if isinstance(s, dict):
                out.append(
                    f"| {backend} | {name} | {s['median_ms']:.2f} | {s['p90_ms']:.2f} "
                    f"| {s['min_ms']:.2f} | {s['max_ms']:.2f} |"
                )
    return "\n".join(out)


def isolation_table(result: dict[str, Any]) -> str:
    out = [
        f"Through pytest and the shipped plugin, {result['config']['n']} tests per kind; "
        f"{result['timestamp']}, load average {result['loadavg'][0]:.1f}. Milliseconds per test "
        "(setup + call + teardown, median).",
        "",
        "| backend / configuration | bare async test | isolated (`mosaic_session`) "
        "| + unit of work | isolation overhead |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in result["results"].items():
        out.append(
            f"| {name} | {r['bare']['median_ms']:.2f} | {r['isolated']['median_ms']:.2f} "
            f"| {r['isolated + unit of work']['median_ms']:.2f} | {r['overhead_ms']:.2f} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n")[0])
    p.add_argument("--dir", default=str(RESULTS))
    p.add_argument("--summary", action="store_true", help="only sqlmosaic vs the ORM, per op")
    args = p.parse_args(argv)
    d = Path(args.dir)
    sections: list[str] = []
    if args.summary:
        for backend in ("postgres", "sqlite"):
            path = d / f"data-{backend}.json"
            if path.exists():
                result = json.loads(path.read_text())
                sections.append(f"#### {backend}\n\n" + condensed_table(result))
        print("\n\n".join(sections))
        return 0
    for backend in ("postgres", "sqlite"):
        path = d / f"data-{backend}.json"
        if path.exists():
            sections.append(data_tables(json.loads(path.read_text())))
    for name, fn in (
        ("startup", startup_table),
        ("check", check_table),
        ("fixtures", fixtures_table),
        ("isolation", isolation_table),
    ):
        path = d / f"{name}.json"
        if path.exists():
            sections.append(f"#### {name}\n\n" + fn(json.loads(path.read_text())))
    print("\n\n".join(sections))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
