"""Printable documents of the RA, as PDF: letters, quotes and invoices.

Each document is one function that takes frozen values (:mod:`ra.documents.model`) and
returns the bytes of an A4 PDF: no database, no web request, so the console, the portal and
the CLI print the same documents.  The Japanese font is embedded (:mod:`ra.documents.fonts`),
dates are Japan time (``2026/12/01``, or 和暦 with ``wareki=True``) and amounts ``5,000円``
(:mod:`shomei.jatext`).  Text that people typed is printed as text, never read as markup
(:mod:`ra.documents.layout`).

=================================  =====================================================
:func:`notification_letters`       通知書: user ID and passwords of new accounts, a page each
:func:`password_reset_letter`      パスワード再発行のお知らせ (the phone path of A7)
:func:`login_password_letter`      ログイン用パスワード再発行のお知らせ
:func:`quote_pdf`                  見積書 (A2)
:func:`invoice_pdf`                請求書 (A3, agents), with the bank account passed in
=================================  =====================================================
"""

from __future__ import annotations

from ra.documents.billing import invoice_pdf, quote_pdf
from ra.documents.fonts import DEFAULT_GOTHIC, DEFAULT_MINCHO, Fonts
from ra.documents.letters import (
    login_password_letter,
    notification_letters,
    password_reset_letter,
)
from ra.documents.model import (
    AccountLetter,
    Addressee,
    BankAccount,
    Invoice,
    Issuer,
    LoginPasswordLetter,
    PasswordResetLetter,
    Quote,
)

__all__ = [
    "DEFAULT_GOTHIC",
    "DEFAULT_MINCHO",
    "AccountLetter",
    "Addressee",
    "BankAccount",
    "Fonts",
    "Invoice",
    "Issuer",
    "LoginPasswordLetter",
    "PasswordResetLetter",
    "Quote",
    "invoice_pdf",
    "login_password_letter",
    "notification_letters",
    "password_reset_letter",
    "quote_pdf",
]
