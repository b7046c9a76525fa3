"""Run the benchmarks: ``python -m bench [NAME ...]`` (``make bench`` runs them all).

Writes ``bench/results.json`` (a list of figures: name, value, unit, reference, ratio, target,
ok) and prints the same as a table.  Exits 1 when a figure misses its target.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

import bench
from bench.common import Figure

HERE = Path(__file__).parent


def main(argv: list[str]) -> int:
    names = sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_")
    )
    wanted = [a if a.startswith("bench_") else f"bench_{a}" for a in argv]
    unknown = [w for w in wanted if w not in names]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(names)}")
        return 2
    console = Console(width=200)
    figures: list[Figure] = []
    for name in wanted or names:
        module = importlib.import_module(f"bench.{name}")
        console.print(f"[bold]{name}[/bold]: {(module.__doc__ or '').strip().splitlines()[0]}")
        with tempfile.TemporaryDirectory(prefix=f"shomei-{name}-") as work:
            figures.extend(module.run(Path(work)))
    out = HERE / "results.json"
    out.write_text(
        json.dumps([f.as_dict() for f in figures], indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    table = Table(title="Shomei benchmarks")
    for col in ("name", "value", "unit", "reference", "ratio", "target", "ok"):
        table.add_column(col)
    for f in figures:
        table.add_row(
            f.name,
            f"{f.value:g}",
            f.unit,
            f.reference,
            f"{f.ratio:g}",
            f.target,
            "[green]yes[/green]" if f.ok else "[red]NO[/red]",
        )
    console.print(table)
    console.print(f"written: {out}")
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
