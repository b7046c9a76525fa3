"""The labels of the kinds of notices (通知種別), for the portal's list and the console's pages.

The kinds are the ``kind`` the services give :func:`ra.mailing.notify.notify`; one not listed
here is shown as a plain notice.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from flask_babel import lazy_gettext as _l

KIND_LABELS: Mapping[str, object] = MappingProxyType(
    {
        "certificate_issued": _l("Certificate issued"),
        "application_rejected": _l("Application rejected"),
        "certificate_expiring": _l("Certificate expiring"),
        "certificate_revoked": _l("Certificate revoked"),
        "password_reissue": _l("Issuance password reissued"),
        "invoice": _l("Invoice"),
        "signin_reminder": _l("Sign-in reminder"),
    }
)
OTHER = _l("Notice")


def kind_label(kind: str) -> str:
    """The label of the notice kind ``kind`` in the reader's language."""
    return str(KIND_LABELS.get(kind, OTHER))
