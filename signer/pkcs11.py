"""A :class:`signer.keys.SigningKey` whose private key lives on a PKCS#11 token.

The CA key can be kept on a hardware token or HSM (SoftHSM2 in tests) instead of in an
encrypted file.  The key is generated *on* the token as a sensitive, non-extractable object
(PKCS#11 v2.40 §4.9, ``CKA_SENSITIVE`` / ``CKA_EXTRACTABLE``), found again by token label and
key label, and unlocked with the user PIN the operator types.  Signatures follow what X.509
and CMS expect:

* RSA: ``CKM_SHA256_RSA_PKCS`` (PKCS#11 v2.40 §2.1.7), i.e. RSASSA-PKCS1-v1_5 with SHA-256
  (RFC 8017 §8.2);
* ECDSA: the token only does the raw ``CKM_ECDSA`` over a digest we compute with SHA-256 and
  returns ``r || s`` (PKCS#11 v2.40 §2.3.1); we convert it to the DER ``Ecdsa-Sig-Value`` of
  RFC 5480 §2.2 / RFC 3279 §2.2.3.

The public key is rebuilt from the token's public attributes (``CKA_MODULUS`` and
``CKA_PUBLIC_EXPONENT`` for RSA, ``CKA_EC_PARAMS`` and ``CKA_EC_POINT`` for EC) as a
``cryptography`` public key object.  Every token failure (wrong PIN, missing token, missing
key) is reported as :class:`shomei.errors.CustodyError`.

This module must not import ``ca`` or ``ra``: the signer library depends on neither.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import pkcs11
from asn1crypto import core as acore
from asn1crypto import keys as akeys
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11e

from shomei.errors import AlreadyExists, CustodyError, MalformedInput, VerificationFailed
from signer.keys import KeyType as ShomeiKeyType
from signer.keys import PublicKey, verify_signature

Pkcs11Algorithm = Literal["rsa2048", "rsa3072", "p256"]

# DER prefix of DigestInfo { sha256, NULL } before the 32-byte hash (RFC 8017 §9.2 note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_RSA_BITS = {"rsa2048": 2048, "rsa3072": 3072}
_CURVES: dict[str, ec.EllipticCurve] = {"secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1()}


# (module, token label) -> digest of the PIN that logged this process in; see _open_session.
_LOGINS: dict[tuple[str, str], bytes] = {}
_LOGINS_LOCK = threading.Lock()

# What the commonest PKCS#11 return values mean to an operator (python-pkcs11 raises one class
# per CKR_ value); anything else is named by its class, which is the CKR_ name in CamelCase.
_TOKEN_SAYS: dict[str, tuple[str, str]] = {
    "DeviceRemoved": ("the token was removed", "トークンが取り外されました"),
    "TokenNotPresent": ("no token is present", "トークンがありません"),
    "DeviceError": ("the token reported a device error", "トークンがデバイスエラーを返しました"),
    "DeviceMemory": ("the token is out of memory", "トークンのメモリが不足しています"),
    "SessionClosed": (
        "the session with the token was closed",
        "トークンとのセッションが閉じました",
    ),
    "SessionHandleInvalid": (
        "the session with the token was lost",
        "トークンとのセッションが失われました",
    ),
    "UserNotLoggedIn": ("not logged in (PIN)", "ログインしていません(PIN)"),
    "KeyFunctionNotPermitted": (
        "the key may not be used for this",
        "この鍵はこの用途に使えません",
    ),
    "FunctionFailed": ("the token could not do it", "トークンが処理できませんでした"),
    "GeneralError": ("the token reported a general error", "トークンが一般エラーを返しました"),
    "TokenWriteProtected": ("the token is write-protected", "トークンが書き込み禁止です"),
}


def _token_says(exc: BaseException) -> tuple[str, str]:
    """What a PKCS#11 error means, in English and Japanese, with its name for the log."""
    name = type(exc).__name__
    en, ja = _TOKEN_SAYS.get(
        name, ("the token answered with an error", "トークンがエラーを返しました")
    )
    return f"{en} ({name}); check the token and its software, then try again", f"{ja}({name})"


def _pin_digest(pin: str) -> bytes:
    return hashlib.sha256(b"shomei-pkcs11-pin\x00" + pin.encode()).digest()


def _load_module(module: Path) -> Any:
    """The loaded PKCS#11 library at ``module`` (python-pkcs11 keeps one per path)."""
    path = Path(module)
    if not path.is_file():
        raise CustodyError(
            f"PKCS#11 module {path} does not exist",
            message_ja=f"PKCS#11 モジュール {path} が見つかりません",
            module=str(path),
        )
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError as exc:  # python-pkcs11 takes a str it encodes as UTF-8
        raise CustodyError(
            f"cannot load PKCS#11 module {path}: its path is not UTF-8; rename it",
            message_ja=f"PKCS#11 モジュール {path} を読み込めません(パスが UTF-8 ではありません)",
            module=str(path),
        ) from exc
    # python-pkcs11 caches one library object per path string; resolving symlinks makes two
    # spellings of the same module share it instead of calling C_Initialize twice.
    try:
        return pkcs11.lib(str(path.resolve()))
    except p11e.PKCS11Error as exc:
        raise CustodyError(
            f"cannot load PKCS#11 module {path}: {exc}",
            message_ja=f"PKCS#11 モジュール {path} を読み込めません",
            module=str(path),
        ) from exc


def _open_session(module: Path, token_label: str, pin: str, *, rw: bool) -> Any:
    """A logged-in session on the token labelled ``token_label``."""
    if not isinstance(pin, str) or not pin:
        raise CustodyError("a PIN is required", message_ja="PIN が必要です")
    lib = _load_module(module)
    try:
        token = lib.get_token(token_label=token_label)
    except p11e.NoSuchToken as exc:
        raise CustodyError(
            f"no PKCS#11 token labelled {token_label!r} (is it connected and initialised?)",
            message_ja=f"ラベル {token_label!r} の PKCS#11 トークンが見つかりません"
            "(接続と初期化を確認してください)",
            token_label=token_label,
        ) from exc
    except p11e.MultipleTokensReturned as exc:
        raise CustodyError(
            f"several PKCS#11 tokens are labelled {token_label!r}",
            message_ja=f"ラベル {token_label!r} の PKCS#11 トークンが複数あります",
            token_label=token_label,
        ) from exc
    except p11e.PKCS11Error as exc:
        raise CustodyError(
            f"cannot list PKCS#11 tokens: {_token_says(exc)[0]}",
            message_ja=f"PKCS#11 トークンを列挙できません: {_token_says(exc)[1]}",
        ) from exc
    key = (str(Path(module).resolve()), token_label)
    try:
        session = token.open(rw=rw, user_pin=pin)
    except p11e.UserAlreadyLoggedIn:
        # PKCS#11 login state belongs to the application, not to the session (PKCS#11 v2.40
        # §5.6 C_Login): while another session of this process is logged in, a new session
        # is logged in too and the token will not check a PIN again.  The PIN must still be
        # the one that logged in, or a wrong PIN would be accepted here.
        with _LOGINS_LOCK:
            known = _LOGINS.get(key)
        if known is None or not hmac.compare_digest(known, _pin_digest(pin)):
            raise CustodyError(
                f"wrong PIN for PKCS#11 token {token_label!r}",
                message_ja=f"PKCS#11 トークン {token_label!r} の PIN が違います",
                token_label=token_label,
            ) from None
        try:
            return token.open(rw=rw)
        except p11e.PKCS11Error as exc:
            raise CustodyError(
                f"cannot open a session on PKCS#11 token {token_label!r}: {_token_says(exc)[0]}",
                message_ja=f"PKCS#11 トークン {token_label!r} のセッションを開けません: "
                f"{_token_says(exc)[1]}",
                token_label=token_label,
            ) from exc
    except (p11e.PinIncorrect, p11e.PinLenRange, p11e.PinInvalid) as exc:
        raise CustodyError(
            f"wrong PIN for PKCS#11 token {token_label!r}",
            message_ja=f"PKCS#11 トークン {token_label!r} の PIN が違います",
            token_label=token_label,
        ) from exc
    except p11e.PinLocked as exc:
        raise CustodyError(
            f"the PIN of PKCS#11 token {token_label!r} is locked (too many wrong PINs)",
            message_ja=f"PKCS#11 トークン {token_label!r} の PIN がロックされています",
            token_label=token_label,
        ) from exc
    except p11e.PKCS11Error as exc:
        raise CustodyError(
            f"cannot log in to PKCS#11 token {token_label!r}: {_token_says(exc)[0]}",
            message_ja=f"PKCS#11 トークン {token_label!r} にログインできません: "
            f"{_token_says(exc)[1]}",
            token_label=token_label,
        ) from exc
    with _LOGINS_LOCK:
        _LOGINS[key] = _pin_digest(pin)
    return session


def _ec_public_key(params_der: bytes, point_der: bytes) -> ec.EllipticCurvePublicKey:
    try:
        params = akeys.ECDomainParameters.load(params_der)
        if params.name != "named":
            raise MalformedInput("explicit curve parameters are not supported")
        curve = _CURVES[params.chosen.native]
        # CKA_EC_POINT is a DER OCTET STRING (PKCS#11 v2.40 §2.3.3); some tokens store the
        # bare point instead, which is recognised by its length.
        expected = 1 + 2 * ((curve.key_size + 7) // 8)
        point = point_der
        if len(point_der) != expected:
            point = acore.OctetString.load(point_der).native
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    except (ValueError, TypeError, KeyError, MalformedInput) as exc:
        raise CustodyError(
            "the token's EC public key is not a supported named curve point",
            message_ja="トークンの EC 公開鍵が対応する曲線の点ではありません",
        ) from exc


class Pkcs11Key:
    """A signing key on a PKCS#11 token (implements :class:`signer.keys.SigningKey`).

    Holds one logged-in session until :meth:`close`; use it as a context manager.  Signing is
    serialised with a lock because a PKCS#11 session must not run two operations at once.
    """

    def __init__(self, *, module: Path, token_label: str, key_label: str, pin: str) -> None:
        self.module = Path(module)
        self.token_label = token_label
        self.key_label = key_label
        self._lock = threading.Lock()
        self._hash_on_token = True
        self._session: Any = _open_session(self.module, token_label, pin, rw=False)
        try:
            self._private = self._find(ObjectClass.PRIVATE_KEY)
            kt = self._private.key_type
            if kt == KeyType.RSA:
                self._key_type: ShomeiKeyType = "rsa"
            elif kt == KeyType.EC:
                self._key_type = "ec"
            else:
                raise CustodyError(
                    f"key {key_label!r} is neither RSA nor EC",
                    message_ja=f"鍵 {key_label!r} は RSA でも EC でもありません",
                )
            self._public_key = self._read_public_key()
        except BaseException:
            self._session.close()
            raise

    def _find(self, object_class: ObjectClass) -> Any:
        try:
            return self._session.get_key(object_class=object_class, label=self.key_label)
        except p11e.NoSuchKey as exc:
            kind = "private" if object_class == ObjectClass.PRIVATE_KEY else "public"
            raise CustodyError(
                f"no {kind} key labelled {self.key_label!r} on token {self.token_label!r}",
                message_ja=f"トークン {self.token_label!r} にラベル {self.key_label!r} の"
                f"{'秘密鍵' if kind == 'private' else '公開鍵'}がありません",
                token_label=self.token_label,
                key_label=self.key_label,
            ) from exc
        except p11e.MultipleObjectsReturned as exc:
            raise CustodyError(
                f"several keys are labelled {self.key_label!r} on token {self.token_label!r}",
                message_ja=f"トークン {self.token_label!r} にラベル {self.key_label!r} の鍵が"
                "複数あります",
                token_label=self.token_label,
                key_label=self.key_label,
            ) from exc

    def _read_public_key(self) -> PublicKey:
        if self._key_type == "rsa":
            # The modulus and exponent are public attributes of the private key object too,
            # so a token that keeps no public key object still works.
            n = int.from_bytes(self._private[Attribute.MODULUS], "big")
            e = int.from_bytes(self._private[Attribute.PUBLIC_EXPONENT], "big")
            return rsa.RSAPublicNumbers(e, n).public_key()
        public = self._find(ObjectClass.PUBLIC_KEY)
        return _ec_public_key(public[Attribute.EC_PARAMS], public[Attribute.EC_POINT])

    @property
    def public_key(self) -> PublicKey:
        return self._public_key

    @property
    def key_type(self) -> ShomeiKeyType:
        return self._key_type

    @property
    def extractable(self) -> bool:
        """CKA_EXTRACTABLE of the private key, as the token reports it."""
        return bool(self._private[Attribute.EXTRACTABLE])

    @property
    def sensitive(self) -> bool:
        """CKA_SENSITIVE of the private key, as the token reports it."""
        return bool(self._private[Attribute.SENSITIVE])

    def _sign_rsa(self, data: bytes) -> bytes:
        if self._hash_on_token:
            try:
                return bytes(self._private.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS))
            except p11e.MechanismInvalid:
                # Some tokens and HSMs only offer the raw CKM_RSA_PKCS; fall back for good.
                self._hash_on_token = False
        # CKM_RSA_PKCS pads what it is given, so we hand it the DER DigestInfo of the
        # SHA-256 hash (RFC 8017 §9.2 step 2), which is what CKM_SHA256_RSA_PKCS builds.
        digest_info = _SHA256_DIGEST_INFO + hashlib.sha256(data).digest()
        return bytes(self._private.sign(digest_info, mechanism=Mechanism.RSA_PKCS))

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` with SHA-256: PKCS#1 v1.5 for RSA, DER ``Ecdsa-Sig-Value`` for EC."""
        with self._lock:
            if self._session is None:
                raise CustodyError(
                    "the PKCS#11 key was closed", message_ja="PKCS#11 鍵は閉じられています"
                )
            try:
                if self._key_type == "rsa":
                    signature = self._sign_rsa(data)
                else:
                    digest = hashlib.sha256(data).digest()
                    raw = bytes(self._private.sign(digest, mechanism=Mechanism.ECDSA))
                    half = len(raw) // 2
                    signature = encode_dss_signature(
                        int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
                    )
            except p11e.PKCS11Error as exc:
                raise CustodyError(
                    f"the token refused to sign: {_token_says(exc)[0]}",
                    message_ja=f"トークンが署名を拒否しました: {_token_says(exc)[1]}",
                    token_label=self.token_label,
                    key_label=self.key_label,
                ) from exc
        # A faulty token (or a fault during an RSA-CRT signature, which can leak the key) must
        # never release a bad CA signature, so every signature is checked before it leaves.
        try:
            verify_signature(self._public_key, signature, data)
        except VerificationFailed as exc:
            raise CustodyError(
                "the token produced a signature that does not verify",
                message_ja="トークンが検証できない署名を出力しました",
                token_label=self.token_label,
                key_label=self.key_label,
            ) from exc
        return signature

    def close(self) -> None:
        """Log out and close the session; the key cannot sign afterwards."""
        with self._lock:
            if self._session is not None:
                try:
                    self._session.close()
                except p11e.PKCS11Error:
                    pass  # the session is gone either way; nothing to report to the caller
                self._session = None

    def __enter__(self) -> Pkcs11Key:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Pkcs11Key(token_label={self.token_label!r}, key_label={self.key_label!r})"


def generate_pkcs11_key(
    *, module: Path, token_label: str, key_label: str, pin: str, algorithm: Pkcs11Algorithm
) -> Pkcs11Key:
    """Generate a non-extractable signing key pair on the token and return it opened.

    Refuses (:class:`shomei.errors.Refused`) if any object with ``key_label`` already exists,
    so a ceremony run twice cannot shadow the first key.
    """
    if algorithm not in ("rsa2048", "rsa3072", "p256"):
        raise MalformedInput(
            f"unsupported PKCS#11 key algorithm {algorithm!r} (rsa2048, rsa3072 or p256)",
            message_ja=f"対応していない鍵アルゴリズムです: {algorithm!r}",
        )
    if not key_label:
        raise MalformedInput("a key label is required", message_ja="鍵ラベルが必要です")
    session = _open_session(Path(module), token_label, pin, rw=True)
    try:
        if any(True for _ in session.get_objects({Attribute.LABEL: key_label})):
            raise AlreadyExists(
                f"token {token_label!r} already holds an object labelled {key_label!r}",
                message_ja=f"トークン {token_label!r} には既にラベル {key_label!r} の"
                "オブジェクトがあります",
                token_label=token_label,
                key_label=key_label,
            )
        key_id = secrets.token_bytes(16)
        # A CA key only ever signs: no decrypt, wrap or derive, and it never leaves the token.
        public_template = {Attribute.TOKEN: True, Attribute.VERIFY: True}
        private_template = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        common: dict[str, Any] = {
            "id": key_id,
            "label": key_label,
            "store": True,
            "capabilities": MechanismFlag.SIGN | MechanismFlag.VERIFY,
            "public_template": public_template,
            "private_template": private_template,
        }
        try:
            if algorithm in _RSA_BITS:
                session.generate_keypair(KeyType.RSA, _RSA_BITS[algorithm], **common)
            else:
                params = session.create_domain_parameters(
                    KeyType.EC,
                    {
                        Attribute.EC_PARAMS: pkcs11.util.ec.encode_named_curve_parameters(
                            "secp256r1"
                        )
                    },
                    local=True,
                )
                params.generate_keypair(**common)
        except p11e.PKCS11Error as exc:
            raise CustodyError(
                f"the token could not generate a {algorithm} key: {_token_says(exc)[0]}",
                message_ja=f"トークンで {algorithm} 鍵を生成できませんでした: "
                f"{_token_says(exc)[1]}",
                token_label=token_label,
            ) from exc
    finally:
        session.close()
    return Pkcs11Key(module=Path(module), token_label=token_label, key_label=key_label, pin=pin)


def _find_token(module: Path, token_label: str) -> Any:
    lib = _load_module(module)
    try:
        return lib.get_token(token_label=token_label)
    except p11e.NoSuchToken as exc:
        raise CustodyError(
            f"no PKCS#11 token labelled {token_label!r} (is it connected and initialised?)",
            message_ja=f"ラベル {token_label!r} の PKCS#11 トークンが見つかりません"
            "(接続と初期化を確認してください)",
            token_label=token_label,
        ) from exc
    except p11e.PKCS11Error as exc:
        raise CustodyError(
            f"cannot find PKCS#11 token {token_label!r}: {_token_says(exc)[0]}",
            message_ja=f"PKCS#11 トークン {token_label!r} を探せません: {_token_says(exc)[1]}",
            token_label=token_label,
        ) from exc


def check_can_generate(
    *,
    module: Path,
    token_label: str,
    key_label: str,
    algorithm: Pkcs11Algorithm,
    pin: str | None = None,
) -> None:
    """Check, without changing the token, that :func:`generate_pkcs11_key` would succeed.

    The module loads, the token is present, it generates keys of ``algorithm`` (the key-pair
    mechanism and, for RSA, the key size), and no object is labelled ``key_label``: the
    public objects are searched without a PIN; with ``pin`` the login and the private objects
    are checked too.  Raises :class:`CustodyError` or :class:`Refused` saying what is wrong.
    """
    token = _find_token(Path(module), token_label)
    mechanism = (
        Mechanism.RSA_PKCS_KEY_PAIR_GEN if algorithm in _RSA_BITS else Mechanism.EC_KEY_PAIR_GEN
    )
    try:
        info = token.slot.get_mechanism_info(mechanism)
    except p11e.PKCS11Error as exc:
        raise CustodyError(
            f"token {token_label!r} cannot generate {algorithm} keys: {_token_says(exc)[0]}",
            message_ja=f"トークン {token_label!r} は {algorithm} 鍵を生成できません",
            token_label=token_label,
        ) from exc
    bits = _RSA_BITS.get(algorithm, 256)
    low, high = info.min_key_length, info.max_key_length
    # Tokens report EC sizes in bits, some RSA sizes in bytes (PKCS#11 v2.40 §2.1): compare
    # generously, only a size outside both readings is refused.
    if low and high and not (low <= bits <= high or low <= bits // 8 <= high):
        raise CustodyError(
            f"token {token_label!r} generates {mechanism.name} keys of {low}..{high} bits, "
            f"not {bits}",
            message_ja=f"トークン {token_label!r} は {bits} ビットの鍵を生成できません",
            token_label=token_label,
        )
    if pin is None:
        try:
            with token.open() as session:
                used = any(True for _ in session.get_objects({Attribute.LABEL: key_label}))
        except p11e.PKCS11Error as exc:
            raise CustodyError(
                f"cannot open a session on PKCS#11 token {token_label!r}: {_token_says(exc)[0]}",
                message_ja=f"PKCS#11 トークン {token_label!r} のセッションを開けません: "
                f"{_token_says(exc)[1]}",
                token_label=token_label,
            ) from exc
    else:
        session = _open_session(Path(module), token_label, pin, rw=False)
        try:
            used = any(True for _ in session.get_objects({Attribute.LABEL: key_label}))
        finally:
            session.close()
    if used:
        raise AlreadyExists(
            f"token {token_label!r} already holds an object labelled {key_label!r}",
            message_ja=f"トークン {token_label!r} には既にラベル {key_label!r} のオブジェクトが"
            "あります",
            token_label=token_label,
            key_label=key_label,
        )


def delete_pkcs11_key(*, module: Path, token_label: str, key_label: str, pin: str) -> int:
    """Destroy every object labelled ``key_label`` on the token; return how many there were.

    For a ceremony that generated a key and then stopped: the key was never certified, and
    leaving it would make the retry refuse the label.
    """
    session = _open_session(Path(module), token_label, pin, rw=True)
    try:
        objects = list(session.get_objects({Attribute.LABEL: key_label}))
        for obj in objects:
            obj.destroy()
        return len(objects)
    except p11e.PKCS11Error as exc:
        raise CustodyError(
            f"cannot delete {key_label!r} from token {token_label!r}: {_token_says(exc)[0]}",
            message_ja=f"トークン {token_label!r} から {key_label!r} を削除できません: "
            f"{_token_says(exc)[1]}",
            token_label=token_label,
        ) from exc
    finally:
        session.close()


__all__ = [
    "Pkcs11Algorithm",
    "Pkcs11Key",
    "check_can_generate",
    "delete_pkcs11_key",
    "generate_pkcs11_key",
]
