"""Issuing a batch: preparation and linting on every core, real signatures in this process.

:func:`issue_many` runs step one of :mod:`ca.issue` (:func:`~ca.issue.prepare`: build, lint
with pkilint) for chunks of requests in worker processes, and step two
(:func:`~ca.issue.sign_prepared`: the real CA key, which may be a PKCS#11 session) here, in
request order.  Each chunk's serials are durably reserved in the ledger (one commit) before
the chunk is prepared, and its certificates recorded (one commit) as soon as they are signed;
a refusal does not stop the rest of the batch.
"""

from __future__ import annotations

import collections
import concurrent.futures
import ctypes
import datetime as dt
import functools
import gc
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca.certasm import throwaway_key
from ca.issue import (
    IssueRequest,
    Prepared,
    Refusal,
    SerialStore,
    prepare,
    sign_prepared,
    validity_window,
)
from ca.lint import lint_certificate, warm_up
from contract.profile import Profile
from shomei.clock import require_aware
from shomei.errors import MalformedInput, Refused
from signer.keys import SigningKey

# Worker-process state, set once by _init_pool_worker so each task carries only its own data.
_WORKER: dict[str, Any] = {}


def _prepare_all(
    profiles: Mapping[str, Profile],
    issuer: x509.Certificate,
    chunk: list[tuple[IssueRequest, int]],
    now: dt.datetime,
) -> list[Prepared | Refusal]:
    return [
        prepare(r, profile=profiles[r.profile], issuer=issuer, serial=s, now=now) for r, s in chunk
    ]


def _die_with_parent(parent: int | None) -> None:
    """Ask Linux to kill this worker when the process that made it dies (PR_SET_PDEATHSIG).

    A worker waits for tasks on a queue and would never learn that its caller was killed
    (kill -9, the machine's OOM killer): it would linger for ever, holding whatever its
    caller had open (a pipe to a supervisor, a terminal).  Elsewhere than Linux nothing is
    done; the executor's own checks still end workers whose caller shut down cleanly.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


def _init_pool_worker(
    profiles: Mapping[str, Profile], issuer_der: bytes, parent: int | None = None
) -> None:
    # A forked worker's parent is the caller; a forkserver worker's is the server, which
    # itself ends when the caller does.
    _die_with_parent(parent)
    _WORKER["profiles"] = dict(profiles)
    _WORKER["issuer"] = x509.load_der_x509_certificate(issuer_der)
    # pkilint builds thousands of short-lived, cyclic tree nodes per certificate.  In a
    # worker process (never in the caller's), freeze what the worker inherited so the
    # cyclic collector stops rescanning it, and collect young objects less often.
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _prepare_chunk(
    chunk: list[tuple[IssueRequest, int]], now: dt.datetime
) -> list[Prepared | Refusal]:
    return _prepare_all(_WORKER["profiles"], _WORKER["issuer"], chunk, now)


class _InlineExecutor:
    """Runs tasks at once in this process (workers=1), behind the Executor interface."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future.set_result(fn(*args))
        return future


def _start_method() -> str:
    """How worker processes are started: "fork" when that is safe, else "forkserver".

    A forked worker starts in about a millisecond and inherits the warmed caches (pkilint's
    validators, the throwaway key), where a forkserver worker first imports cryptography and
    pkilint again (about half a second).  Forking is only unsafe when another thread could
    hold a lock (OpenSSL's, the allocator's) at the moment of the fork, so with more than one
    thread alive (a web server, a scheduler) the clean forkserver is used instead.  Workers
    never touch what they inherit from this process (the CA key, a PKCS#11 session, the
    ledger's connection) and leave through ``os._exit``, so nothing of it is closed or used.
    """
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "forkserver"


def _pool(workers: int, profiles: Mapping[str, Profile], issuer: x509.Certificate) -> Any:
    method = _start_method()
    context = multiprocessing.get_context(method)
    if method == "fork":
        # Warm the per-process caches once here; every forked worker inherits them.
        throwaway_key(issuer.public_key())
        warm_up()
        # The first lint in a process also fills pkilint's and pyasn1's lazy caches.
        lint_certificate(issuer.public_bytes(serialization.Encoding.DER))
    else:
        context.set_forkserver_preload(["ca.issue", "ca.issuebatch"])
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_pool_worker,
        initargs=(
            dict(profiles),
            issuer.public_bytes(serialization.Encoding.DER),
            os.getpid() if method == "fork" else None,
        ),
    )


def _check_key_matches(issuer: x509.Certificate, key: SigningKey) -> None:
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key.public_bytes(*spki) != issuer.public_key().public_bytes(*spki):
        raise Refused(
            "the signing key does not belong to the issuing CA certificate",
            message_ja="署名鍵が発行者(CA)証明書の鍵と一致しません",
        )


def issue_many(
    requests: Sequence[IssueRequest],
    *,
    profiles: Mapping[str, Profile],
    issuer: x509.Certificate,
    key: SigningKey,
    serials: SerialStore,
    now: dt.datetime,
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
) -> list[x509.Certificate | Refusal]:
    """Issue a batch: a certificate or a :class:`Refusal` per request, in request order.

    Preparation and linting run in ``workers`` processes (0: one per CPU; 1: in this
    process); real signatures are made here, each only after its serial was reserved in
    ``serials``.  ``progress`` is called with the number of requests finished so far.
    Raises :class:`shomei.errors.Refused` before anything is reserved or signed when ``key``
    does not match ``issuer`` or the issuer is not valid at ``now``.
    """
    if workers < 0:
        raise MalformedInput("workers must be 0 or more", message_ja="workers は 0 以上です")
    now = require_aware(now, "now").replace(microsecond=0)
    _check_key_matches(issuer, key)
    for profile in profiles.values():
        validity_window(profile, issuer, now)
    results: list[x509.Certificate | Refusal | None] = [None] * len(requests)
    todo: list[int] = []
    for index, request in enumerate(requests):
        if request.profile in profiles:
            todo.append(index)
            continue
        refusal = Refusal(
            request.request_id,
            "profile",
            f"unknown certificate profile {request.profile!r}",
            f"証明書プロファイル {request.profile!r} がありません",
        )
        serials.record_refused(request.request_id, None, refusal)
        results[index] = refusal
    done = len(requests) - len(todo)
    if progress is not None and done:
        progress(done)

    count = workers or os.cpu_count() or 1
    # Small chunks keep the pool busy while this process signs; large ones cut IPC overhead.
    chunk_size = max(1, min(16, len(todo) // (count * 4) or 1))
    chunks: Iterator[list[int]] = (
        todo[i : i + chunk_size] for i in range(0, len(todo), chunk_size)
    )
    executor: Any
    task: Callable[..., list[Prepared | Refusal]]
    if count == 1 or len(todo) <= 1:
        executor = _InlineExecutor()
        task = functools.partial(_prepare_all, profiles, issuer)
    else:
        executor = _pool(min(count, len(todo)), profiles, issuer)
        task = _prepare_chunk
    window: collections.deque[tuple[concurrent.futures.Future[Any], list[tuple[int, int]]]] = (
        collections.deque()
    )

    def submit_next() -> None:
        indices = next(chunks, None)
        if indices is None:
            return
        # The serials are durably reserved (one commit per chunk) before their TBS exists,
        # let alone is signed.
        numbers = serials.reserve_many([requests[i].request_id for i in indices])
        reserved = list(zip(indices, numbers, strict=True))
        chunk = [(requests[i], serial) for i, serial in reserved]
        window.append((executor.submit(task, chunk, now), reserved))

    try:
        for _ in range(count * 2):
            submit_next()
        while window:
            future, reserved = window.popleft()
            try:
                outcomes = future.result()
                submit_next()
            except concurrent.futures.BrokenExecutor as exc:
                # A worker died (killed, out of memory).  What was signed is recorded; the
                # serials reserved for the rest stay "reserved" in the ledger, unused.
                raise Refused(
                    f"a preparation worker stopped unexpectedly after {done} of "
                    f"{len(requests)} requests; the rest of the batch was not issued",
                    message_ja=f"準備処理のプロセスが異常終了しました({len(requests)} 件中 "
                    f"{done} 件で停止)。残りは発行されていません",
                    done=done,
                ) from exc
            signed: list[x509.Certificate] = []
            for (index, serial), outcome in zip(reserved, outcomes, strict=True):
                if isinstance(outcome, Refusal):
                    serials.record_refused(outcome.request_id, serial, outcome)
                    results[index] = outcome
                else:
                    certificate = sign_prepared(outcome, key)
                    signed.append(certificate)
                    results[index] = certificate
            # Recorded before anything leaves this function (one commit per chunk).
            serials.record_signed_many(signed)
            done += len(reserved)
            if progress is not None:
                progress(done)
    finally:
        if isinstance(executor, concurrent.futures.ProcessPoolExecutor):
            executor.shutdown(wait=True, cancel_futures=True)
    return [r for r in results if r is not None]
