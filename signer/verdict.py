"""The outcome of verifying one signed claim: a frozen :class:`Verdict`, never mistaken for success.

A verdict is VALID only when every check of RFC 5652 §5.6 (digest, signature) and of the
RFC 5280 §6 path (chain to a trust anchor, validity, key usage, revocation against a current
CRL) passed.  Anything found bad is INVALID (exit 1); anything that could not be decided (no
current CRL, unreadable input) is UNDECIDED (exit 2).  Reasons are kept as plain data, in
English and Japanese, so verdicts cross process boundaries (batch mode) and land in CSV
reports unchanged; :meth:`Verdict.raise_for_status` turns a failed verdict into the matching
:class:`shomei.errors.ShomeiError`.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from shomei.errors import MalformedInput, ShomeiError, Undecided, VerificationFailed


class Status(enum.Enum):
    VALID = "valid"
    INVALID = "invalid"
    UNDECIDED = "undecided"


@dataclass(frozen=True)
class Reason:
    """Why a verdict is not VALID, in words a person can act on."""

    code: str  # stable, for logs and CSV: "revoked", "digest", "untrusted", "no_crl", ...
    message: str
    message_ja: str

    def localized(self, lang: str) -> str:
        return self.message_ja if lang == "ja" else self.message


@dataclass(frozen=True)
class Verdict:
    """What verification established about one claim and its signature."""

    status: Status
    reasons: tuple[Reason, ...] = ()
    signer_subject: str = ""
    signer_serial: int | None = None
    signing_time: dt.datetime | None = None

    def __post_init__(self) -> None:
        # A VALID verdict with reasons, or a failed one without, would be ambiguous.
        if (self.status is Status.VALID) == bool(self.reasons):
            raise ValueError("a VALID verdict has no reasons; any other has at least one")

    @property
    def ok(self) -> bool:
        return self.status is Status.VALID

    @property
    def exit_code(self) -> int:
        return {Status.VALID: 0, Status.INVALID: 1, Status.UNDECIDED: 2}[self.status]

    def summary(self, lang: str = "en") -> str:
        """One line: the status and the first reason."""
        if self.ok:
            who = f" ({self.signer_subject})" if self.signer_subject else ""
            return ("署名は有効です" if lang == "ja" else "signature valid") + who
        return "; ".join(r.localized(lang) for r in self.reasons)

    def raise_for_status(self) -> Verdict:
        """Return ``self`` if VALID, else raise the :class:`ShomeiError` that matches."""
        if self.ok:
            return self
        first = self.reasons[0]
        fields = {"reason": first.code, "serial": self.signer_serial}
        message = self.summary("en")
        message_ja = self.summary("ja")
        err: ShomeiError
        if self.status is Status.INVALID:
            err = VerificationFailed(message, message_ja=message_ja, **fields)
        elif first.code == "malformed":
            err = MalformedInput(message, message_ja=message_ja, **fields)
        else:
            err = Undecided(message, message_ja=message_ja, **fields)
        raise err


def invalid(code: str, message: str, message_ja: str, **kw: object) -> Verdict:
    return Verdict(Status.INVALID, (Reason(code, message, message_ja),), **kw)  # type: ignore[arg-type]


def undecided(code: str, message: str, message_ja: str, **kw: object) -> Verdict:
    return Verdict(Status.UNDECIDED, (Reason(code, message, message_ja),), **kw)  # type: ignore[arg-type]


def from_error(exc: ShomeiError, **kw: object) -> Verdict:
    """A verdict for an error raised while checking: found bad -> INVALID, else UNDECIDED."""
    status = Status.INVALID if isinstance(exc, VerificationFailed) else Status.UNDECIDED
    code = exc.fields.get("reason") or exc.code
    return Verdict(status, (Reason(str(code), exc.message, exc.message_ja),), **kw)  # type: ignore[arg-type]


__all__ = ["Reason", "Status", "Verdict", "from_error", "invalid", "undecided"]
