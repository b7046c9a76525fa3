"""Throwaway SoftHSM2 tokens for tests, as pytest fixtures.

python-pkcs11 loads the PKCS#11 module into this process once per path and SoftHSM2 reads
its configuration (``SOFTHSM2_CONF``) and its list of tokens when it is initialised.  So one
session-wide configuration folder is made before anything loads the module, with a pool of
tokens initialised up front; each test that wants a clean token takes an unused one from the
pool with the ``softhsm_token`` fixture.  Test modules bind the fixtures they use (an
assignment rather than ``from ... import`` keeps ruff's F811 quiet about the parameters)::

    from tests import softhsm as _softhsm

    softhsm = _softhsm.softhsm
    softhsm_token = _softhsm.softhsm_token

Tests using them are marked ``@pytest.mark.softhsm``; they skip with a visible reason when
``softhsm2-util`` or the module is missing (CI installs SoftHSM2, so they run there).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)

# Enough for every test that needs a token of its own; a test that exhausts the pool fails
# with a message saying so rather than re-initialising the module under other tests' keys.
POOL_SIZE = 48
SO_PIN = "87654321"
USER_PIN = "1234-test-pin"


def find_softhsm_module() -> Path | None:
    """The SoftHSM2 PKCS#11 module of this machine, or None."""
    override = os.environ.get("SHOMEI_TEST_SOFTHSM_MODULE")
    if override and Path(override).is_file():
        return Path(override)
    for candidate in MODULE_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


@dataclass(frozen=True)
class SoftHsmToken:
    """One initialised token: pass ``module``, ``label`` and ``pin`` to the code under test."""

    module: Path
    label: str
    pin: str
    so_pin: str


@dataclass
class SoftHsm:
    """The session's SoftHSM2 configuration and its pool of tokens."""

    module: Path
    conf: Path
    tokens: list[SoftHsmToken]
    _next: int = field(default=0)

    def take(self) -> SoftHsmToken:
        """An unused token from the pool."""
        if self._next >= len(self.tokens):
            pytest.fail(f"the SoftHSM2 token pool ({POOL_SIZE}) is exhausted; raise POOL_SIZE")
        token = self.tokens[self._next]
        self._next += 1
        return token


def _init_token(util: str, label: str, env: dict[str, str]) -> None:
    subprocess.run(
        [util, "--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", USER_PIN],
        check=True,
        capture_output=True,
        env=env,
        timeout=60,
    )


# Every test module binds the fixture under its own name, which makes pytest set it up once per
# module; the module reads its configuration only once per process, so they must all share the
# first pool (a second pool would hand out the first one's labels, already used).
_POOL: list[SoftHsm] = []


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """A session-wide SoftHSM2 with ``POOL_SIZE`` fresh tokens (skips if not installed)."""
    if _POOL:
        yield _POOL[0]
        return
    util = shutil.which("softhsm2-util")
    if util is None:
        pytest.skip("SoftHSM2 is not installed (softhsm2-util not found on PATH)")
    module = find_softhsm_module()
    if module is None:
        pytest.skip("SoftHSM2 PKCS#11 module libsofthsm2.so not found")
    folder = tmp_path_factory.mktemp("softhsm")
    tokendir = folder / "tokens"
    tokendir.mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokendir}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n",
        encoding="utf-8",
    )
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    tokens = []
    for i in range(POOL_SIZE):
        label = f"shomei-test-{i:02d}"
        _init_token(util, label, env)
        tokens.append(SoftHsmToken(module=module, label=label, pin=USER_PIN, so_pin=SO_PIN))
    # The module reads SOFTHSM2_CONF when it is first initialised in this process, which
    # happens after this fixture, when the first test opens a key.
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    _POOL.append(SoftHsm(module=module, conf=conf, tokens=tokens))
    try:
        yield _POOL[0]
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous


@pytest.fixture
def softhsm_token(softhsm: SoftHsm) -> SoftHsmToken:
    """A fresh, empty token of its own for one test."""
    return softhsm.take()
