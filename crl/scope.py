"""Which certificates a CRL may decide (RFC 5280 §5.2.5 and §6.3.3 (b)(2), (d)).

A CRL without an issuingDistributionPoint extension covers every certificate of its issuer,
for every revocation reason.  One with the extension may be narrower: only the certificates
that name one of its distribution points, only end-entity or only CA certificates, only
attribute certificates, only some revocation reasons.  A CRL used for a certificate outside
its scope could say "not revoked" about a certificate it never lists, so :meth:`Scope.coverage`
says, for one certificate, for which reasons the CRL can decide it; an empty answer, with the
reason why, means the CRL must not be used for that certificate at all, and anything short of
every reason means that it can prove a revocation but not the absence of one.

Distribution point names are matched as §6.3.3 (b)(2)(i) says: a name of the CRL's
distributionPoint must equal a name of one of the certificate's cRLDistributionPoints (names
relative to the issuer completed with the issuer's name, comparison by the rules of §7 as
asn1crypto implements them), or the certificate issuer's own name, which stands for a
distribution point that every certificate implicitly has.  Indirect CRLs (§5.2.5, cRLIssuer)
are not supported: :mod:`crl.reader` refuses them before a scope is ever asked.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import crl as acrl
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from crl import der

# The reasons of RFC 5280 §6.3.3's "all-reasons" (ReasonFlags without its unused bit 0).
ALL_REASONS = frozenset(
    {
        "key_compromise",
        "ca_compromise",
        "affiliation_changed",
        "superseded",
        "cessation_of_operation",
        "certificate_hold",
        "privilege_withdrawn",
        "aa_compromise",
    }
)


@dataclass(frozen=True)
class Coverage:
    """For which revocation reasons a CRL decides one certificate; empty: not at all, and why."""

    reasons: frozenset[str]
    why_not: str = ""
    why_not_ja: str = ""

    @property
    def complete(self) -> bool:
        """Whether the CRL alone can say that the certificate is not revoked."""
        return self.reasons == ALL_REASONS


def _outside(why: str, why_ja: str) -> Coverage:
    return Coverage(frozenset(), why, why_ja)


@dataclass(frozen=True)
class Scope:
    """What a CRL's issuingDistributionPoint limits it to; the default is everything."""

    names: tuple[ax509.GeneralName, ...] | None = None  # the distributionPoint, as full names
    only_user_certs: bool = False
    only_ca_certs: bool = False
    only_attribute_certs: bool = False
    reasons: frozenset[str] | None = None  # onlySomeReasons; None: every reason
    indirect: bool = False

    @property
    def narrowed(self) -> bool:
        """Whether the CRL leaves out some certificates or reasons of its issuer."""
        return self != Scope()

    def coverage(self, certificate: x509.Certificate) -> Coverage:
        """For which reasons this CRL decides ``certificate`` (§6.3.3 (b)(2) and (d))."""
        if not self.narrowed:
            return Coverage(ALL_REASONS)  # nothing of the certificate needs to be read
        try:
            cert = ax509.Certificate.load(certificate.public_bytes(Encoding.DER))
            is_ca = bool(cert.ca)
            points = cert.crl_distribution_points_value
            issuer = cert.issuer
            points = list(points) if points is not None else []
        except (ValueError, TypeError, KeyError):
            return _outside(
                "the certificate's extensions cannot be decoded (broken DER)",
                "証明書の拡張を復号できません(DER が壊れています)",
            )
        if self.indirect:
            return _outside("indirect CRLs are not supported", "間接 CRL には対応していません")
        if self.only_attribute_certs:
            return _outside(
                "the CRL lists only attribute certificates", "この CRL は属性証明書専用です"
            )
        if self.only_user_certs and is_ca:
            return _outside(
                "the CRL lists only end-entity certificates and this is a CA certificate",
                "この CRL はエンドエンティティ証明書専用で、この証明書は認証局の証明書です",
            )
        if self.only_ca_certs and not is_ca:
            return _outside(
                "the CRL lists only CA certificates and this is an end-entity certificate",
                "この CRL は認証局の証明書専用で、この証明書はエンドエンティティ証明書です",
            )
        reasons = self.reasons if self.reasons is not None else ALL_REASONS
        if self.names is not None:
            matched = _matching_reasons(self.names, points, issuer)
            if matched is None:
                mine = ", ".join(_show(n) for n in self.names)
                theirs = ", ".join(_show(n) for p in points for n in _point_names(p, issuer))
                return _outside(
                    f"the CRL is for the distribution point {mine}, which the certificate does "
                    f"not name (its CRL distribution points: {theirs or 'none'})",
                    f"この CRL は配布点 {mine} 用で、証明書の CRL 配布点"
                    f"({theirs or 'なし'})と一致しません",
                )
            reasons = reasons & matched
        if not reasons:
            return _outside(
                "the CRL and the certificate's distribution point share no revocation reason",
                "CRL と証明書の配布点に共通する失効理由がありません",
            )
        return Coverage(reasons)


def _show(name: ax509.GeneralName) -> str:
    if name.name == "directory_name":
        return str(name.chosen.human_friendly)
    return str(name.native)


def _same(a: ax509.GeneralName, b: ax509.GeneralName) -> bool:
    try:
        return bool(a == b)
    except ValueError:  # otherName, x400Address, ediPartyName: not comparable, not equal
        return False


def _complete_name(issuer: ax509.Name, rdn: ax509.RelativeDistinguishedName) -> ax509.Name:
    """A name relative to an issuer made whole: the issuer's RDNs, then ``rdn`` (§4.2.1.13)."""
    return ax509.Name(name="", value=ax509.RDNSequence([*issuer.chosen, rdn]))


def _full_names(point: ax509.DistributionPointName, issuer: ax509.Name) -> list[ax509.GeneralName]:
    if point.name == "full_name":
        return list(point.chosen)
    return [ax509.GeneralName(name="directory_name", value=_complete_name(issuer, point.chosen))]


def _point_names(point: ax509.DistributionPoint, issuer: ax509.Name) -> list[ax509.GeneralName]:
    """The names of one of the certificate's distribution points (none if it has a cRLIssuer)."""
    if point["crl_issuer"].native is not None or point["distribution_point"].native is None:
        return []  # a distribution point of an indirect CRL: never a CRL of the issuer itself
    return _full_names(point["distribution_point"], issuer)


def _matching_reasons(
    names: tuple[ax509.GeneralName, ...],
    points: list[ax509.DistributionPoint],
    issuer: ax509.Name,
) -> frozenset[str] | None:
    """The reasons of the certificate's distribution points that the CRL's names match."""
    found: set[str] = set()
    matched = False
    implicit = ax509.GeneralName(name="directory_name", value=issuer)
    for point in points:
        if any(_same(a, b) for a in names for b in _point_names(point, issuer)):
            matched = True
            flags = point["reasons"].native
            found |= ALL_REASONS if flags is None else set(flags) & ALL_REASONS
    if any(_same(a, implicit) for a in names):
        matched, found = True, set(ALL_REASONS)
    return frozenset(found) if matched else None


def parse_idp(value: bytes, crl_issuer: bytes) -> Scope:
    """The :class:`Scope` of an issuingDistributionPoint extension value (§5.2.5)."""
    try:
        idp = acrl.IssuingDistributionPoint.load(value, strict=True)
        point = idp["distribution_point"]
        names = None
        if point.native is not None:
            names = tuple(_full_names(point, ax509.Name.load(crl_issuer)))
        reasons = idp["only_some_reasons"].native
        scope = Scope(
            names=names,
            only_user_certs=bool(idp["only_contains_user_certs"].native),
            only_ca_certs=bool(idp["only_contains_ca_certs"].native),
            only_attribute_certs=bool(idp["only_contains_attribute_certs"].native),
            reasons=None if reasons is None else frozenset(reasons) & ALL_REASONS,
            indirect=bool(idp["indirect_crl"].native),
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise der.malformed("bad issuingDistributionPoint", "IDP 拡張の形式が不正です") from exc
    flags = (scope.only_user_certs, scope.only_ca_certs, scope.only_attribute_certs)
    if sum(flags) > 1:
        # §5.2.5: at most one of the three may be asserted.
        raise der.malformed(
            "issuingDistributionPoint asserts more than one onlyContains flag",
            "IDP 拡張に onlyContains のフラグが複数あります",
        )
    if scope == Scope():
        # §5.2.5: the extension "MUST NOT" be an empty SEQUENCE.
        raise der.malformed("empty issuingDistributionPoint", "IDP 拡張が空です")
    return scope


__all__ = ["ALL_REASONS", "Coverage", "Scope", "parse_idp"]
