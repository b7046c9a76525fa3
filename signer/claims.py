"""Sign a claim file as a detached CMS SignedData (RFC 5652 §5) and verify one claim.

The signature is what the federation's reception expects beside each claim file ``X`` as
``X.p7s``: SHA-256, the signed attributes content-type, message-digest, signing-time and
signing-certificate-v2 (RFC 5035), the signer certificate and its chain attached
(:func:`signer.cms.sign` builds it).  Verification is :class:`signer.verifier.Verifier`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from shomei.clock import require_aware, utcnow
from shomei.errors import AlreadyExists
from shomei.files import read_bytes, write_file
from signer import cms
from signer.credentials import Credentials


def sign_claim(
    content: bytes, *, credentials: Credentials, signing_time: dt.datetime | None = None
) -> bytes:
    """The DER detached SignedData over ``content`` (signing time: now, whole seconds)."""
    when = require_aware(signing_time, "signing_time") if signing_time else utcnow()
    return cms.sign(
        content,
        key=credentials.key,
        certificate=credentials.certificate,
        chain=credentials.chain,
        detached=True,
        signing_time=when,
    )


def sign_file(
    claim: Path,
    *,
    credentials: Credentials,
    output: Path | None = None,
    overwrite: bool = False,
    signing_time: dt.datetime | None = None,
) -> Path:
    """Sign ``claim`` into ``output`` (default ``claim`` + ``.p7s``); returns the output path."""
    output = output or claim.with_name(claim.name + ".p7s")
    if output.exists() and not overwrite:
        raise AlreadyExists(
            f"{output} already exists (not overwritten)",
            message_ja=f"{output} は既に存在します(上書きしません)",
        )
    content = read_bytes(claim, what="claim", what_ja="請求ファイル")
    der = sign_claim(content, credentials=credentials, signing_time=signing_time)
    write_file(output, der, overwrite=overwrite)
    return output


__all__ = ["sign_claim", "sign_file"]
