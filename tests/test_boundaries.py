"""The import boundaries of STYLE.md stay true.

``ca/`` runs on an offline machine and imports neither Flask nor SQLAlchemy; ``signer/`` is
installed by offices alone and imports neither ``ra`` nor ``ca``; ``crl/`` imports neither
``ra`` nor ``ca`` nor ``signer`` (the verifier in ``signer/`` reads CRLs, so the reverse would
be an import cycle); ``shomei/`` (the common base) imports none of the product packages;
``ra/documents/`` imports neither Flask nor SQLAlchemy.
Checked on the source (every import statement), so a lazy import inside a function counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "ca": {"flask", "sqlalchemy", "alembic", "ra", "cli"},
    "signer": {"ra", "ca", "cli", "flask", "sqlalchemy"},
    "crl": {"ra", "ca", "cli", "signer", "flask", "sqlalchemy"},
    "shomei": {"ra", "ca", "crl", "signer", "cli", "flask", "sqlalchemy"},
    # The printed documents take frozen values: no database, no web request.
    "ra/documents": {"flask", "sqlalchemy", "alembic", "ca", "cli"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _violates(module: str, forbidden: set[str]) -> bool:
    return any(module == f or module.startswith(f + ".") for f in forbidden)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_stay_inside_its_boundary(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    bad = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files
        for module in sorted(_imports(path))
        if _violates(module, FORBIDDEN[package])
    ]
    assert not bad, "\n".join(bad)


def test_the_checker_catches_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("def f():\n    from sqlalchemy import orm\n", encoding="utf-8")
    assert any(_violates(m, FORBIDDEN["ca"]) for m in _imports(sample))
