"""``python -m ca.custody``: a custodian checks a share by typing it back.

Reads one share from standard input (as printed: spaces, line breaks and case do not matter),
checks its checksum (see :mod:`ca.custody.shares`) and prints the key id, the share number
and the share's fingerprint, which the custodian compares with the ceremony transcript.
Nothing is stored and the share itself is never printed.  Exit status 0 when the share reads
correctly, 2 otherwise (the CLI convention: could not do; see ``cli.errors``).
``shomei ca check-share`` does the same with hidden input at a terminal.
"""

from __future__ import annotations

import sys
from typing import TextIO

from ca.custody.shares import parse_share, share_fingerprint
from shomei.errors import ShomeiError

MAX_INPUT = 4096


def check_text(text: str) -> tuple[int, str]:
    """The exit status and the report (English, then Japanese) for a typed share."""
    try:
        share = parse_share(text)
    except ShomeiError as exc:
        # Whatever the kind, the share could not be read: 2, as for input that is not a share.
        return 2, f"NG: {exc.message}\n    {exc.message_ja}\n"
    return 0, (
        f"OK: key {share.key_id}, share {share.index} ({share.m}-of-{share.n}), "
        f"fingerprint {share_fingerprint(share)}\n"
        f"    正しく入力されました: 鍵 {share.key_id} の分割鍵 {share.index}"
        f"({share.n} 個中 {share.m} 個で復元)\n"
    )


def main(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    """Check the share typed on ``stdin``; report on ``stdout``."""
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None:
        raw = buffer.read(MAX_INPUT + 1)
        try:
            text = raw.decode("utf-8") if len(raw) <= MAX_INPUT else None
        except UnicodeDecodeError:
            text = None
        if text is None:
            stdout.write(
                "NG: the input is not a share (not UTF-8 text, or too long)\n"
                "    入力が分割鍵ではありません(UTF-8 でないか長すぎます)\n"
            )
            return 2
    else:
        text = stdin.read(MAX_INPUT + 1)
    code, report = check_text(text)
    stdout.write(report)
    return code


if __name__ == "__main__":
    sys.exit(main())
