"""The claim signer: what offices use to sign claims and the reception side uses to verify them.

This package depends on neither ``ra`` nor ``ca`` (offices install it alone).  It offers the
signing-key interface shared by every signer in the product (:mod:`signer.keys`, defined in
:mod:`shomei.keys`), the CMS SignedData core (:mod:`signer.cms`, RFC 5652) that the RA↔CA
batch link also uses, and the claim signer proper: :mod:`signer.claims` (sign),
:mod:`signer.verifier` (verify at volume, with :mod:`signer.fastcms`, :mod:`signer.chain` and
:mod:`signer.revocation`), :mod:`signer.batch` (a folder on every core), :mod:`signer.pades`
(PDF claims) and :mod:`signer.notices` (sealed notices).
"""

# pyHanko registers its CMS attribute types (and fixes some asn1crypto specs) at import; it has
# to happen before asn1crypto parses any CMS attribute, or those objects keep the old specs.
import pyhanko.sign.general  # noqa: F401
