"""The repository stands on its own: every reference in it can be followed from a clone.

The product is described in docs/product.md; nothing in the repository may point at documents
that live beside it (a specification or seed files in a folder next to the checkout), every
Markdown file under ``docs/`` that code or documents name must exist, and every section of
docs/product.md that is cited ("docs/product.md §4") must be a heading there.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}

# Spelled in pieces, so that this file does not name what it forbids.
SPEC = "SPEC"
DOCS = "docs" + "/"
FORBIDDEN = [
    re.compile(re.escape(SPEC + ".md")),
    re.compile(SPEC + r"\s*(§|[AB]\d)"),  # a section sign or a function number (A1, B7) after it
    re.compile(re.escape("../" + "shared")),
    re.compile(re.escape("seeds" + "/")),
    re.compile(re.escape("STYLE" + ".md")),  # the style rules live beside the repository too
]
DOC_PATH = re.compile(r"\bdocs/[A-Za-z0-9_.-]+\.md\b")
PRODUCT_SECTIONS = re.compile(r"docs/product\.md((?:(?:\s|,|and|or|-|–)*§\d+)+)")
HEADING = re.compile(r"^## (\d+)\. ", re.MULTILINE)


def _files() -> list[Path]:
    """The files of the repository: tracked ones and new ones git does not ignore."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        names = [n for n in out.decode("utf-8").split("\0") if n]
        paths = [ROOT / n for n in names]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked sdist)
        paths = [p for p in ROOT.rglob("*") if p.is_file()]
    return sorted(
        p for p in paths if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(ROOT).parts)
    )


def _texts() -> dict[str, str]:
    texts: dict[str, str] = {}
    for path in _files():
        data = path.read_bytes()
        if b"\0" in data:  # binary (a font, a test certificate in DER): nothing to cite
            continue
        texts[path.relative_to(ROOT).as_posix()] = data.decode("utf-8", errors="replace")
    return texts


def forbidden_mentions(texts: dict[str, str]) -> list[str]:
    found = []
    for name, text in texts.items():
        for number, line in enumerate(text.splitlines(), 1):
            for pattern in FORBIDDEN:
                if pattern.search(line):
                    found.append(f"{name}:{number}: {line.strip()[:120]}")
    return found


def missing_docs(texts: dict[str, str], root: Path) -> list[str]:
    return [
        f"{name} cites {cited}, which does not exist"
        for name, text in texts.items()
        for cited in sorted(set(DOC_PATH.findall(text)))
        if not (root / cited).is_file()
    ]


def missing_sections(texts: dict[str, str], product: str) -> list[str]:
    headings = set(HEADING.findall(product))
    problems = []
    for name, text in texts.items():
        for match in PRODUCT_SECTIONS.finditer(text):
            for number in re.findall(r"§(\d+)", match.group(1)):
                if number not in headings:
                    problems.append(f"{name} cites docs/product.md §{number}, which is no heading")
    return problems


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    found = _texts()
    assert "docs/product.md" in found and "ra/lifecycle.py" in found  # the walk found the repo
    return found


def test_nothing_points_outside_the_repository(texts: dict[str, str]) -> None:
    found = forbidden_mentions(texts)
    assert not found, "\n".join(found)


def test_every_cited_document_exists(texts: dict[str, str]) -> None:
    problems = missing_docs(texts, ROOT)
    assert not problems, "\n".join(problems)


def test_every_cited_product_section_is_a_heading(texts: dict[str, str]) -> None:
    product = texts["docs/product.md"]
    numbers = [int(n) for n in HEADING.findall(product)]
    assert numbers == list(range(1, len(numbers) + 1)), "sections numbered 1, 2, 3, ..."
    problems = missing_sections(texts, product)
    assert not problems, "\n".join(problems)


def test_the_readme_links_the_product_document(texts: dict[str, str]) -> None:
    assert "](docs/product.md)" in texts["README.md"]


def test_the_checks_catch_what_they_look_for(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "here.md").write_text("x", encoding="utf-8")
    sample = {
        "a.py": f"# see {SPEC} §3 and ../{'shared'}/x\n",
        "b.md": f"Read {SPEC}.md and {'seeds'}/002.txt; {SPEC} A7 too.\n",
        "c.md": f"{DOCS}here.md and {DOCS}gone.md; {DOCS}product.md §2 and §9, "
        f"{DOCS}product.md §4-§5\n",
    }
    found = forbidden_mentions(sample)
    assert [f.split(":")[:2] for f in found] == [
        ["a.py", "1"],
        ["a.py", "1"],
        ["b.md", "1"],
        ["b.md", "1"],
        ["b.md", "1"],
    ]
    assert missing_docs(sample, tmp_path) == [
        f"c.md cites {DOCS}gone.md, which does not exist",
        f"c.md cites {DOCS}product.md, which does not exist",
    ]
    product = "# P\n\n## 1. One\n\n## 2. Two\n\n## 4. Four\n"
    assert missing_sections(sample, product) == [
        "c.md cites docs/product.md §9, which is no heading",
        "c.md cites docs/product.md §5, which is no heading",
    ]


OFFICE_SECTIONS = re.compile(r"docs/office-guide\.md\s*§(\d+)")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
IMAGE_LIMIT = 150_000  # bytes: screenshots are quantized to stay small


def test_every_cited_office_guide_section_is_a_heading(texts: dict[str, str]) -> None:
    """Code and documents cite the office guide by section ("docs/office-guide.md §9"): the
    section must be there, so a guide rewritten in another order is caught."""
    headings = set(HEADING.findall(texts["docs/office-guide.md"]))
    problems = [
        f"{name} cites docs/office-guide.md §{number}, which is no heading"
        for name, text in texts.items()
        for number in OFFICE_SECTIONS.findall(text)
        if number not in headings
    ]
    assert not problems, "\n".join(problems)


def test_every_image_of_the_documents_exists_and_is_small(texts: dict[str, str]) -> None:
    problems = []
    for name, text in texts.items():
        if not (name.endswith(".md") and name.startswith(DOCS)):
            continue
        for target in IMAGE.findall(text):
            path = (ROOT / name).parent / target
            if not path.is_file():
                problems.append(f"{name} shows {target}, which does not exist")
            elif path.stat().st_size > IMAGE_LIMIT:
                problems.append(f"{name} shows {target}: {path.stat().st_size} bytes")
    assert not problems, "\n".join(problems)
