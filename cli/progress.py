"""Progress of long commands on stderr: a rich bar on a terminal, periodic lines otherwise.

stdout stays for the command's results (an import prints the one-time passwords there, to be
redirected to a file), so progress goes to stderr.  Under a service manager, in a pipe or in
a log file a redrawn bar is noise, so there a line is written every tenth of the work and at
least every :data:`INTERVAL` seconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

INTERVAL = 10.0
Report = Callable[[int, int], None]


@contextmanager
def progress(label: str, *, unit: str = "") -> Iterator[Report]:
    """A ``report(done, total)`` callback that shows ``label`` and how far the work is."""
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        ) as bar:
            task = bar.add_task(label, total=None)

            def draw(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            yield draw
        return

    state = {"shown": -1, "at": time.monotonic(), "start": time.monotonic()}
    suffix = f" {unit}" if unit else ""

    def line(done: int, total: int) -> None:
        now = time.monotonic()
        tenth = done * 10 // total if total else 10
        if done != total and tenth == state["shown"] and now - state["at"] < INTERVAL:
            return
        if done == total and state["shown"] == 10:
            return
        state["shown"], state["at"] = tenth, now
        percent = done * 100 // total if total else 100
        elapsed = now - state["start"]
        click.echo(f"{label}: {done}/{total}{suffix} ({percent}%, {elapsed:.0f} s)", err=True)

    yield line
