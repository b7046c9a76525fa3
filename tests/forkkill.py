"""Fork a ``shomei`` command and kill -9 it at a chosen moment (the crash tests).

:func:`fork_command` runs ``cli.main.main(argv)`` in a forked child, as the shell would run
the command (the child opens its own database connections and files), and sends it SIGKILL
a given time after it began, or after its CA began to sign: with
:func:`signalling_run_batch` patched over :func:`ca.signbatch.run_batch` before the fork,
the child says on a pipe when the CA's work begins (``s``) and ends (``e``), so a kill can be
aimed at it however loaded the machine is.
"""

from __future__ import annotations

import multiprocessing.forkserver
import os
import signal
import time
import traceback
from dataclasses import dataclass
from typing import Any

from cli.main import main

# In a child: the write end of the pipe to the parent (empty in the parent itself).
_PIPE: list[int] = []


def signalling_run_batch(real: Any) -> Any:
    """``ca.signbatch.run_batch`` that tells the parent (``s``, then ``e``) when the CA begins
    and ends signing, so that a kill can be aimed at the CA's work however loaded the machine
    is."""

    def run(*args: Any, **kwargs: Any) -> Any:
        if _PIPE:
            os.write(_PIPE[-1], b"s")
        try:
            return real(*args, **kwargs)
        finally:
            if _PIPE:
                os.write(_PIPE[-1], b"e")

    return run


def _as_a_fresh_process() -> None:
    """Forget the multiprocessing forkserver this test process may have started.

    A command run from the shell starts with none; a forked copy of the test process would
    otherwise try to use the parent's (``os.waitpid`` on a process that is not its child) the
    moment it needs preparation workers (:mod:`ca.issuebatch`).
    """
    server = multiprocessing.forkserver._forkserver  # type: ignore[attr-defined]
    server._forkserver_pid = None
    server._forkserver_address = None
    server._forkserver_alive_fd = None
    server._inherited_fds = None


@dataclass(frozen=True)
class Run:
    status: int
    duration: float  # the whole job, as the parent saw it
    signing: float | None  # from "s" to "e": how long the CA signed (None: not seen)


def fork_command(argv: list[str], kill_after: float | None, *, at_signing: bool = False) -> Run:
    """Run ``shomei ARGV`` in a child; SIGKILL it ``kill_after`` seconds after it began, or
    after its CA began to sign (``at_signing``); None: let it finish."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_end)
        _PIPE.append(write_end)
        _as_a_fresh_process()
        code = 3
        try:
            os.write(write_end, b"b")
            try:
                main(argv, standalone_mode=False)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 3
            except BaseException:
                traceback.print_exc()  # shown with the failure: the child failed, not killed
                raise
        finally:
            os._exit(code)
    os.close(write_end)
    seen: dict[bytes, float] = {}
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while byte := pipe.read(1):
            seen[byte] = time.monotonic()
            if kill_after is not None and byte == (b"s" if at_signing else b"b"):
                time.sleep(kill_after)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        ended = time.monotonic()
    _, status = os.waitpid(pid, 0)
    signing = seen[b"e"] - seen[b"s"] if b"s" in seen and b"e" in seen else None
    return Run(status, ended - seen.get(b"b", ended), signing)
