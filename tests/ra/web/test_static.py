"""The style sheet is well formed: an unclosed block would swallow every rule after it
(a merge once dropped one closing brace and the list's page links turned white on white)."""

from __future__ import annotations

import re
from pathlib import Path

import ra.web

STATIC = Path(ra.web.__file__).parent / "static"


def test_every_block_of_the_style_sheet_is_closed() -> None:
    for sheet in STATIC.glob("*.css"):
        depth = 0
        for number, line in enumerate(sheet.read_text("utf-8").splitlines(), 1):
            depth += line.count("{") - line.count("}")
            assert depth >= 0, f"{sheet.name}:{number}: a brace closes nothing"
        assert depth == 0, f"{sheet.name}: {depth} block(s) never closed"


def _rules(css: str) -> list[tuple[str, str]]:
    """(the @media it is in, or "", one selector) for every rule of ``css``."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    found: list[tuple[str, str]] = []
    at: list[str] = []
    head = ""
    i = 0
    while i < len(css):
        char = css[i]
        if char == "{":
            if head.strip().startswith("@"):
                at.append(" ".join(head.split()))
            else:
                found += [(" ".join(at), " ".join(s.split())) for s in head.split(",")]
                i = css.index("}", i)
            head = ""
        elif char == "}":
            at.pop()
            head = ""
        else:
            head += char
        i += 1
    return found


def test_a_portal_class_is_styled_by_one_block() -> None:
    """Each portal page styles its own classes in its own block; two blocks that give one
    class two meanings (the apply steps' pills and the numbered steps of a sealed notice were
    both ``ol.portal-steps``) make one of the pages wrong."""
    seen: dict[tuple[str, str], int] = {}
    for rule in _rules((STATIC / "shomei.css").read_text("utf-8")):
        if "portal-" in rule[1]:
            seen[rule] = seen.get(rule, 0) + 1
    twice = sorted(f"{media} {selector}".strip() for (media, selector), n in seen.items() if n > 1)
    assert not twice, f"styled twice: {twice}"
