"""``python -m ca.custody``: a custodian checks a share by typing it back.

Reads one share from standard input (as printed: spaces, line breaks and case do not matter),
checks its checksum (see :mod:`ca.custody.shares`) and prints the key id, the share number
and the share's fingerprint, which the custodian compares with the ceremony transcript.
Nothing is stored and the share itself is never printed.  Exit status 0 when the share reads
correctly, 2 otherwise (the CLI convention of :class:`shomei.errors.ShomeiError`).
"""

from __future__ import annotations

import sys
from typing import TextIO

from ca.custody.shares import parse_share, share_fingerprint
from shomei.errors import ShomeiError


def main(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    """Check the share typed on ``stdin``; report on ``stdout``."""
    try:
        share = parse_share(stdin.read())
    except ShomeiError as exc:
        stdout.write(f"NG: {exc.message}\n    {exc.message_ja}\n")
        return exc.exit_code
    stdout.write(
        f"OK: key {share.key_id}, share {share.index} ({share.m}-of-{share.n}), "
        f"fingerprint {share_fingerprint(share)}\n"
        f"    正しく入力されました: 鍵 {share.key_id} の分割鍵 {share.index}"
        f"({share.n} 個中 {share.m} 個で復元)\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
