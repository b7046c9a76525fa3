"""Shomei (証明): the common base shared by every part of the product.

Only what every package needs lives here: the root of the error hierarchy
(:mod:`shomei.errors`), the strict typed loader for TOML configuration
(:mod:`shomei.config`), the clock (:mod:`shomei.clock`) and the one signing-key interface
(:mod:`shomei.keys`: the CA, the CRL builder and reader, and the signer use it).  It imports
nothing from ``ca``, ``ra``, ``crl``, ``signer`` or ``cli``.
"""

__version__ = "0.1.0"
