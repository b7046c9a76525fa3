"""The one error hierarchy of Shomei.

Every error a public function raises derives from :class:`ShomeiError`.  An error carries a
stable ``code`` (for logs, tests and CSV reports), structured ``fields`` and two messages for
people: English (``message``) and Japanese (``message_ja``).  The classes say what happened,
never how an edge answers it: the CLI maps them to exit codes in one table (``cli.errors``),
the web to HTTP statuses in another (``ra.web.errors``).  Built-in exceptions such as
``KeyError`` or ``ValueError`` are caught at the package boundary and re-raised as one of
these, with the original as ``__cause__`` for the log.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ShomeiError(Exception):
    """Root of all Shomei errors."""

    code: ClassVar[str] = "error"

    def __init__(self, message: str, *, message_ja: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.message_ja = message_ja or message
        self.fields: dict[str, Any] = fields

    def __str__(self) -> str:
        return self.message

    def localized(self, lang: str) -> str:
        """The message in ``lang`` ("ja" or anything else for English)."""
        return self.message_ja if lang == "ja" else self.message


class ConfigError(ShomeiError):
    """A configuration or ceremony file is wrong (unknown key, wrong type, missing value)."""

    code = "config"


class MalformedInput(ShomeiError):
    """Input could not be parsed: a truncated CMS, a garbage CRL, a bad CSV row, ..."""

    code = "malformed"


class VerificationFailed(ShomeiError):
    """A cryptographic check ran and the object is not valid (bad signature, tampered data)."""

    code = "invalid"


class CustodyError(ShomeiError):
    """A CA key could not be opened: too few shares, a repeated share, a wrong PIN, ..."""

    code = "custody"


class Refused(ShomeiError):
    """An operation was refused and nothing was changed (replayed batch, existing output, ...)."""

    code = "refused"


class NotFound(ShomeiError):
    """A named object (file, serial, batch, key label) does not exist."""

    code = "not_found"


class Undecided(ShomeiError):
    """A check could not be decided: no current CRL, revocation status unknown, ...

    Never to be mistaken for success.
    """

    code = "undecided"


class StateError(ShomeiError):
    """Kept state is missing, damaged or older than the evidence of what was done since.

    A lost or garbled CA ledger, one restored from an older backup, a CRL folder that no
    longer matches the ledger: nothing is signed until the operator restores it.
    """

    code = "state"


class DatabaseFailure(ShomeiError):
    """The RA database could not be reached or used (down, full, read-only, not a database).

    Not a verdict on the input: the same command may succeed once the cause is fixed, so a
    job leaves its input (an inbox file, a queued mail) where it was.
    """

    code = "database"


class StorageError(ShomeiError):
    """A file or the ledger could not be written: the disk is full, a write failed, ...

    What was being written was left as it was before (writes are atomic), so the operation
    can simply be run again once there is room; the message says what failed and where.
    """

    code = "storage"


# The kinds an edge (the web, an API, the CLI) must tell apart.  They refine :class:`Refused`
# ("refused, nothing was changed"), so code that only cares that nothing happened may still
# catch ``Refused``; each edge maps the most specific kind in its one table (``cli.errors``
# for exit codes, ``ra.web.errors`` for HTTP statuses).


class NotPermitted(Refused):
    """The acting party may not do this (its role, or a disabled account)."""

    code = "not_permitted"


class Conflict(Refused):
    """The object is not in a state that allows this (wrong status, changed meanwhile)."""

    code = "conflict"


class AlreadyExists(Conflict):
    """What was to be created exists already (a taken user ID, a second pending application)."""

    code = "already_exists"


class AuthenticationFailed(ShomeiError):
    """A sign-in failed: unknown user, wrong password or one-time code (never says which)."""

    code = "authentication"


class LockedOut(ShomeiError):
    """Too many failed sign-ins: the account is locked until ``fields["until"]``."""

    code = "locked_out"
