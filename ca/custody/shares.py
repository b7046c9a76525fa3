"""Custodian shares: a 16-byte secret split M-of-N with Shamir's scheme, printed for people.

The passphrase of an encrypted CA key file is a random 128-bit secret that no single person
knows.  It is split with Shamir's secret sharing (Shamir, "How to share a secret", CACM 22(11),
1979; pycryptodome's implementation over GF(2^128)) into N shares of which any M rebuild it.

Each share is a line that a custodian can print, keep in a sealed envelope and type back in::

    SHOMEI-SHARE-1:issuing-2026:2-of-3:1:ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ:CHCK-SUM2

Fields are separated by ``:``: the format version, the key id, M-of-N, the share number, the
share value in RFC 4648 §6 base32 (no padding) in groups of four, and a checksum: the first
40 bits of SHA-256 over the canonical text of the other fields, also in base32.  Reading
ignores spaces, line breaks, case and the group hyphens, so a share can be typed the way it
is printed (full-width characters from a Japanese input method are folded too); any single
wrong, missing or extra character changes the canonical text and is caught by the checksum
before the share is used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from Crypto.Protocol.SecretSharing import Shamir

from shomei.errors import CustodyError, MalformedInput

SECRET_SIZE = 16  # pycryptodome's Shamir works on 16-byte secrets (GF(2^128))
MAX_SHARES = 32
MAGIC = "SHOMEI-SHARE-1"
_CHECKSUM_CHARS = 8  # 40 bits: a random typo slips through with probability 2^-40
_GROUP = 4
_DASHES = str.maketrans(dict.fromkeys("‐‑‒–—―−ーｰ", "-"))
KEY_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,47}$")


def check_key_id(key_id: str) -> str:
    """``key_id`` if it can be written into a share (lower-case letters, digits, ``._-``)."""
    if not isinstance(key_id, str) or not KEY_ID_PATTERN.match(key_id):
        raise MalformedInput(
            f"invalid key id {key_id!r}: use 1-48 lower-case letters, digits, '.', '_' or '-'",
            message_ja=f"鍵 ID {key_id!r} が不正です(英小文字・数字・「._-」で 48 文字以内)",
            key_id=key_id,
        )
    return key_id


def check_threshold(m: int, n: int) -> None:
    """Refuse an impossible M-of-N."""
    if not (isinstance(m, int) and isinstance(n, int) and 1 <= m <= n <= MAX_SHARES):
        raise MalformedInput(
            f"invalid threshold {m}-of-{n}: need 1 <= M <= N <= {MAX_SHARES}",
            message_ja=f"{m}-of-{n} は指定できません(1 ≦ M ≦ N ≦ {MAX_SHARES})",
            m=m,
            n=n,
        )
    if m == 1 and n > 1:
        # With M = 1 every share is the whole secret: N plain copies, not a split.
        raise MalformedInput(
            f"invalid threshold 1-of-{n}: any one custodian could open the key alone",
            message_ja=f"1-of-{n} は指定できません(鍵管理者 1 人で鍵を開けてしまいます)",
            m=m,
            n=n,
        )


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=")


def _groups(text: str) -> str:
    return "-".join(text[i : i + _GROUP] for i in range(0, len(text), _GROUP))


def _checksum(fields: Sequence[str]) -> str:
    """Checksum over canonical fields (upper case, the last one without group hyphens)."""
    canonical = ":".join([*fields[:-1], fields[-1].replace("-", "")]).upper()
    digest = hashlib.sha256(b"shomei-share-checksum\x00" + canonical.encode("utf-8")).digest()
    return _b32(digest)[:_CHECKSUM_CHARS]


@dataclass(frozen=True)
class Share:
    """One custodian's share of the secret of key ``key_id``: number ``index`` of ``n``."""

    key_id: str
    m: int
    n: int
    index: int
    data: bytes

    def __post_init__(self) -> None:
        check_key_id(self.key_id)
        check_threshold(self.m, self.n)
        if not (1 <= self.index <= self.n) or len(self.data) != SECRET_SIZE:
            raise MalformedInput(
                f"invalid share {self.index} of {self.n} ({len(self.data)} bytes)",
                message_ja=f"分割鍵 {self.index}/{self.n} が不正です",
            )

    def encode(self) -> str:
        """The printable form: fields, base32 groups and the checksum (see module docs)."""
        fields = [MAGIC, self.key_id, f"{self.m}-of-{self.n}", str(self.index), _b32(self.data)]
        return ":".join([*fields[:-1], _groups(fields[-1]), _groups(_checksum(fields))])

    def __repr__(self) -> str:
        # The value is secret: keep it out of logs and tracebacks.
        return f"Share(key_id={self.key_id!r}, {self.m}-of-{self.n}, index={self.index})"


def share_fingerprint(share: Share) -> str:
    """16 hex digits naming a share without revealing it (recorded in ceremony transcripts).

    SHA-256 over the printed form; the share value has 128 bits of entropy, so the digest
    does not help anyone guess it.
    """
    return hashlib.sha256(share.encode().encode("ascii")).hexdigest()[:16]


def _typo(**fields: object) -> CustodyError:
    return CustodyError(
        "share has a typo (checksum mismatch): check every character against the printed share",
        message_ja="分割鍵に入力誤りがあります(チェックサム不一致)。印刷された分割鍵と"
        "1 文字ずつ照合してください",
        **fields,
    )


def parse_share(text: str) -> Share:
    """Read a share as typed by a custodian; spaces, line breaks and case do not matter.

    Raises :class:`CustodyError` when the checksum shows a typo and when the text is not a
    Shomei share at all.
    """
    if not isinstance(text, str):
        raise CustodyError("a share must be text", message_ja="分割鍵は文字列で入力してください")
    # A custodian typing with a Japanese input method may produce full-width letters, digits,
    # colons and hyphens, or a long-vowel mark for a hyphen; NFKC and the table fold them to
    # the ASCII that was printed.
    folded = unicodedata.normalize("NFKC", text).translate(_DASHES)
    canonical = "".join(folded.split()).upper()
    if not canonical.startswith("SHOMEI-") and ":" not in canonical:
        raise CustodyError(
            "this is not a Shomei custodian share (it should start with SHOMEI-SHARE-1:)",
            message_ja="Shomei の分割鍵ではありません(SHOMEI-SHARE-1: で始まります)",
        )
    body, sep, checksum = canonical.rpartition(":")
    fields = body.split(":")
    if not sep or len(fields) < 2:
        raise _typo()
    # The checksum is compared first, so that any damaged field is reported as a typo
    # rather than as a confusing complaint about that field.
    typed = checksum.replace("-", "").encode("utf-8")
    if not hmac.compare_digest(typed, _checksum(fields).encode("ascii")):
        raise _typo()
    if fields[0] != MAGIC:
        raise CustodyError(
            f"unsupported share format {fields[0]} (this version reads {MAGIC})",
            message_ja=f"対応していない分割鍵の形式です({fields[0]})",
        )
    try:
        _, key_id, threshold, index, value = fields
        m_text, of, n_text = threshold.split("-")
        if of != "OF":
            raise ValueError(threshold)
        value = value.replace("-", "")
        data = base64.b32decode(value + "=" * (-len(value) % 8))
        return Share(
            key_id=key_id.lower(), m=int(m_text), n=int(n_text), index=int(index), data=data
        )
    except (ValueError, MalformedInput) as exc:
        raise CustodyError(
            "the share passed its checksum but its fields are not valid",
            message_ja="分割鍵のチェックサムは正しいものの、内容が不正です",
        ) from exc


def split_secret(secret: bytes, *, m: int, n: int, key_id: str) -> list[Share]:
    """Split a 16-byte ``secret`` into ``n`` shares of which any ``m`` rebuild it.

    1-of-1 (the share *is* the secret) is allowed for tests and single-operator setups only;
    1-of-N with N > 1 is refused.
    """
    check_key_id(key_id)
    check_threshold(m, n)
    if not isinstance(secret, bytes) or len(secret) != SECRET_SIZE:
        raise MalformedInput(
            f"the secret must be {SECRET_SIZE} bytes",
            message_ja=f"秘密値は {SECRET_SIZE} バイトでなければなりません",
        )
    return [
        Share(key_id=key_id, m=m, n=n, index=index, data=bytes(data))
        for index, data in Shamir.split(m, n, secret, ssss=False)
    ]


def combine_shares(shares: Sequence[Share]) -> bytes:
    """Rebuild the secret from at least M distinct shares of one key.

    Refuses (:class:`CustodyError`) too few shares, a share given twice, two different shares
    with the same number and shares of different keys or thresholds.  Whether the result is
    the right secret is checked by the caller against the key's commitment.
    """
    shares = list(shares)
    if not shares:
        raise CustodyError("no shares were given", message_ja="分割鍵が入力されていません")
    if not all(isinstance(s, Share) for s in shares):
        raise CustodyError("shares must be Share objects", message_ja="分割鍵の形式が不正です")
    first = shares[0]
    key_ids = sorted({s.key_id for s in shares})
    if len(key_ids) > 1:
        raise CustodyError(
            f"the shares belong to different keys: {', '.join(key_ids)}",
            message_ja=f"異なる鍵の分割鍵が混ざっています: {', '.join(key_ids)}",
            key_ids=key_ids,
        )
    if any((s.m, s.n) != (first.m, first.n) for s in shares):
        raise CustodyError(
            "the shares disagree about M-of-N (they come from different splits)",
            message_ja="分割鍵の M-of-N が一致しません(別の分割のものが混ざっています)",
            key_id=first.key_id,
        )
    by_index: dict[int, Share] = {}
    for share in shares:
        seen = by_index.get(share.index)
        if seen is not None:
            if seen.data == share.data:
                raise CustodyError(
                    f"share {share.index} was given twice; each custodian's share counts once",
                    message_ja=f"分割鍵 {share.index} が 2 回入力されました"
                    "(同じ分割鍵は 1 回しか数えません)",
                    key_id=first.key_id,
                    index=share.index,
                )
            raise CustodyError(
                f"two different shares are numbered {share.index}",
                message_ja=f"番号 {share.index} の異なる分割鍵が 2 つあります",
                key_id=first.key_id,
                index=share.index,
            )
        by_index[share.index] = share
    if len(by_index) < first.m:
        raise CustodyError(
            f"{len(by_index)} share(s) given but key {first.key_id} needs {first.m} of {first.n}",
            message_ja=f"分割鍵が {len(by_index)} 個しかありません(鍵 {first.key_id} には "
            f"{first.n} 個中 {first.m} 個が必要です)",
            key_id=first.key_id,
            given=len(by_index),
            needed=first.m,
        )
    # Exactly M shares are used: with more, one damaged share would spoil the result even
    # though the others suffice.
    chosen = sorted(by_index.values(), key=lambda s: s.index)[: first.m]
    return bytes(Shamir.combine([(s.index, s.data) for s in chosen], ssss=False))


__all__ = [
    "MAGIC",
    "SECRET_SIZE",
    "Share",
    "combine_shares",
    "parse_share",
    "share_fingerprint",
    "split_secret",
]
