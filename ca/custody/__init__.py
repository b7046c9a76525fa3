"""CA key custody: how a CA private key is kept at rest and opened for signing.

Two backends sit behind the one :class:`signer.keys.SigningKey` interface (docs/product.md §10):

* ``file``: an encrypted PKCS#8 file (RFC 5958 §3) whose passphrase is a random secret split
  M-of-N among key custodians with Shamir's scheme (:mod:`ca.custody.shares`,
  :mod:`ca.custody.keyfile`);
* ``pkcs11``: a non-extractable key on a PKCS#11 token (:mod:`signer.pkcs11`).

:func:`open_ca_key` opens whichever a :class:`ca.settings.KeyRef` names.
"""

from __future__ import annotations

from collections.abc import Sequence

from ca.custody.keyfile import KeyFileInfo, create_key_file, key_file_info, open_key_file
from ca.custody.shares import Share, combine_shares, parse_share, split_secret
from ca.settings import KeyRef
from shomei.errors import CustodyError
from signer.keys import SigningKey


def open_ca_key(ref: KeyRef, *, shares: Sequence[Share] = (), pin: str | None = None) -> SigningKey:
    """Open the CA key that ``ref`` names, with custodians' ``shares`` or a token ``pin``.

    Raises :class:`CustodyError` when the credential the backend needs is missing (or the
    other backend's credential is given, which means the operator is confused about which
    key is being opened), and whatever the backend raises when opening fails.
    """
    if ref.backend == "file":
        if pin is not None:
            raise CustodyError(
                "this CA key is a file key opened with custodians' shares, not with a PIN",
                message_ja="この CA 鍵はファイル鍵です。PIN ではなく分割鍵で開きます",
            )
        if not shares:
            raise CustodyError(
                "custodians' shares are needed to open this CA key",
                message_ja="この CA 鍵を開くには鍵管理者の分割鍵が必要です",
            )
        assert ref.path is not None  # guaranteed by KeyRef.__post_init__
        return open_key_file(ref.path, shares)
    if ref.backend == "pkcs11":
        if shares:
            raise CustodyError(
                "this CA key is on a PKCS#11 token and is opened with its PIN, not with shares",
                message_ja="この CA 鍵は PKCS#11 トークン上にあり、分割鍵ではなく PIN で開きます",
            )
        if not pin:
            raise CustodyError(
                "the token PIN is needed to open this CA key",
                message_ja="この CA 鍵を開くにはトークンの PIN が必要です",
            )
        assert ref.module is not None and ref.token_label and ref.key_label
        # Imported here so that file-key deployments do not load python-pkcs11 at all.
        from signer.pkcs11 import Pkcs11Key

        return Pkcs11Key(
            module=ref.module, token_label=ref.token_label, key_label=ref.key_label, pin=pin
        )
    raise CustodyError(
        f"unknown key backend {ref.backend!r}",
        message_ja=f"不明な鍵の保管方式です: {ref.backend!r}",
    )


__all__ = [
    "KeyFileInfo",
    "Share",
    "combine_shares",
    "create_key_file",
    "key_file_info",
    "open_ca_key",
    "open_key_file",
    "parse_share",
    "split_secret",
]
