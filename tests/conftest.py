"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pki import Pki, build_pki


@pytest.fixture(scope="session")
def pki() -> Pki:
    """The throwaway PKI of :mod:`tests.pki`, built once."""
    return build_pki()


@pytest.fixture(scope="session")
def pki_dir(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The throwaway PKI written out as files (``NAME.pem``, ``NAME.key``, ``issuing.crl``)."""
    folder = tmp_path_factory.mktemp("pki")
    pki.write(folder)
    return folder
