"""The import boundaries of docs/product.md §2 stay true.

``ca/`` runs on an offline machine and imports neither Flask nor SQLAlchemy; ``signer/`` is
installed by offices alone and imports neither ``ra`` nor ``ca``; ``crl/`` imports neither
``ra`` nor ``ca`` nor ``signer`` (the verifier in ``signer/`` reads CRLs, so the reverse would
be an import cycle); ``shomei/`` (the common base) imports none of the product packages;
``ra/documents/`` imports neither Flask nor SQLAlchemy.  ``contract/`` (the RA↔CA batch format
and the certificate profile) is what the RA and the CA share, so it imports neither of them;
``ra/`` reaches ``ca/`` only through the inline CA (``ra/ca_link/inline_ca.py``); nothing but the
CLI
imports the demo, and neither the RA nor the CA imports the CLI.  Between the top-level
packages the imports form no cycle (``shomei/keys.py`` holds the signing-key interface that
``crl/`` would otherwise have taken from ``signer/``).
Checked on the source (every import statement), so a lazy import inside a function counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "contract": {"ra", "ca", "cli", "demo", "flask", "sqlalchemy", "alembic"},
    "ca": {"flask", "sqlalchemy", "alembic", "ra", "cli", "demo"},
    "ra": {"cli", "demo"},
    "signer": {"ra", "ca", "cli", "demo", "contract", "flask", "sqlalchemy"},
    "crl": {"ra", "ca", "cli", "demo", "contract", "signer", "flask", "sqlalchemy"},
    "shomei": {"ra", "ca", "crl", "signer", "cli", "demo", "contract", "flask", "sqlalchemy"},
    # The printed documents take frozen values: no database, no web request.
    "ra/documents": {"flask", "sqlalchemy", "alembic", "ca", "cli"},
}
# Imports a package makes from one module only: the RA runs the CA in its own process only
# in inline mode, and every other RA module speaks to the CA through contract/.
ONLY_FROM = {("ra", "ca"): {"ra/ca_link/inline_ca.py"}}
# The packages of the product, for the cycle check.
PACKAGES = ("shomei", "contract", "crl", "signer", "ca", "ra", "cli", "demo")


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


@pytest.mark.parametrize(("package", "target"), sorted(ONLY_FROM))
def test_imports_allowed_from_one_module_only(package: str, target: str) -> None:
    allowed = ONLY_FROM[(package, target)]
    for name in allowed:
        assert (ROOT / name).is_file(), f"{name} is gone: update ONLY_FROM"
    bad = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.relative_to(ROOT).as_posix() not in allowed
        for module in sorted(_imports(path))
        if _violates(module, {target})
    ]
    assert not bad, "\n".join(bad)


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        found = set()
        for path in (ROOT / package).rglob("*.py"):
            found.update(module.split(".")[0] for module in _imports(path))
        graph[package] = {p for p in found if p in PACKAGES and p != package}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path (first node repeated at the end), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph.get(node, ())):
            found = visit(target, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return None


def test_no_import_cycle_between_packages() -> None:
    graph = _package_graph()
    assert "crl" in graph["signer"]  # the verifier reads CRLs ...
    assert "signer" not in graph["crl"]  # ... and crl/ takes the key interface from shomei/
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"crl": {"signer"}, "signer": {"crl"}}) == ["crl", "signer", "crl"]


# The layers of ra/ (docs/ra-operator-guide.md, "How the RA is built"): a module imports only
# from a lower layer, except inside the core, where the lifecycle writes through the store and
# the store's models carry the lifecycle's statuses.  The web is the top: nothing imports it.
RA_LAYERS = {
    "settings": 0,
    "lifecycle": 1,
    "lifecycle_doc": 1,
    "store": 1,
    "party": 1,
    "documents": 1,
    "mailing": 2,
    "people": 3,
    "crypto": 4,
    "workflow": 5,
    "ca_link": 5,
    "tasks": 6,
    "desk": 7,
    "web": 8,
}
CORE = 1


def _ra_part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "ra" and len(parts) > 1 else None


def _ra_imports(path: Path) -> set[str]:
    """Like :func:`_imports`, with ``from ra import x`` counted as ``ra.x``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "ra":
                found.update(f"ra.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return found


def test_every_ra_module_has_a_layer() -> None:
    parts = {p.stem if p.is_file() else p.name for p in (ROOT / "ra").iterdir()}
    parts -= {"__init__", "__pycache__"}
    assert parts <= set(RA_LAYERS), f"give these a layer in RA_LAYERS: {parts - set(RA_LAYERS)}"


def test_ra_layers_import_downwards_only() -> None:
    bad = []
    for path in sorted((ROOT / "ra").rglob("*.py")):
        relative = path.relative_to(ROOT / "ra").parts
        if len(relative) == 1 and relative[0] == "__init__.py":
            continue
        mine = relative[0].removesuffix(".py")
        for module in sorted(_ra_imports(path)):
            theirs = _ra_part(module)
            if theirs is None or theirs == mine:
                continue
            low, high = RA_LAYERS[theirs], RA_LAYERS[mine]
            if low < high or low == high == CORE:
                continue
            bad.append(f"{path.relative_to(ROOT)} ({mine}) imports {module} ({theirs})")
    assert not bad, "\n".join(bad)


def test_only_the_web_imports_flask() -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / "ra").rglob("*.py"))
        if path.relative_to(ROOT / "ra").parts[0] != "web"
        for module in sorted(_imports(path))
        if _violates(module, {"flask", "flask_wtf", "flask_login", "flask_babel", "werkzeug"})
    ]
    assert not bad, "\n".join(bad)
