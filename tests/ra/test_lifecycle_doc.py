"""docs/lifecycle.md is made from the transition table and must not drift from it."""

from __future__ import annotations

from pathlib import Path

from ra.lifecycle import TRANSITIONS, mermaid
from ra.lifecycle_doc import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md"


def test_doc_matches_the_table() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/lifecycle.md is out of date: python -m ra.lifecycle_doc > docs/lifecycle.md"
    )


def test_diagram_has_every_transition() -> None:
    arrows = [line for line in mermaid().splitlines() if "-->" in line]
    by_applicant = sum(1 for t in TRANSITIONS.values() if not hasattr(t.target, "value"))
    assert len(arrows) == len(TRANSITIONS) + by_applicant
