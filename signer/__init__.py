"""The claim signer: what offices use to sign claims and the reception side uses to verify them.

This package depends on neither ``ra`` nor ``ca`` (offices install it alone).  It holds the
signing-key interface shared by every signer in the product (:mod:`signer.keys`) and the CMS
SignedData core (:mod:`signer.cms`, RFC 5652) that the RA↔CA batch link also uses.
"""
