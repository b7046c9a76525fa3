"""What every benchmark shares: the :class:`Figure` it reports and small timing helpers.

A figure always sits beside a reference measured in the same run on the same machine (an
``openssl`` command, ``cryptography``, pyhanko, a hand-encoded lower bound), and states the
ratio and the target it is judged against.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    reference: str  # what it was compared with, and that reference's own figure
    ratio: float  # value / reference value (or as the target defines it)
    target: str  # e.g. ">= 0.5" on the ratio
    ok: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def judged(
    name: str,
    value: float,
    unit: str,
    reference_name: str,
    reference_value: float,
    *,
    target_op: Literal[">=", "<="],
    target: float,
    ratio: float | None = None,
) -> Figure:
    """A :class:`Figure` whose ``ratio`` (default value/reference) is held to ``target``."""
    r = ratio if ratio is not None else (value / reference_value if reference_value else 0.0)
    ok = r >= target if target_op == ">=" else r <= target
    return Figure(
        name=name,
        value=round(value, 4),
        unit=unit,
        reference=f"{reference_name}: {reference_value:.4g} {unit}",
        ratio=round(r, 4),
        target=f"ratio {target_op} {target}",
        ok=ok,
    )


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by ``func()`` (wall clock, monotonic) and its result."""
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result
