"""The style sheet is well formed: an unclosed block would swallow every rule after it
(a merge once dropped one closing brace and the list's page links turned white on white)."""

from __future__ import annotations

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
