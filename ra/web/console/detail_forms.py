"""The forms of the detail screen (証明書発行管理): one per action, each with the version shown.

Every form carries the application's ``version`` as the page showed it, so the service can
refuse an action chosen on a state someone else has changed since
(:func:`ra.workflow.services.expect_version`).  Each form has its own prefix: several are on one
page.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange
from wtforms.widgets import HiddenInput

from ra.workflow.services import REASON_LIMIT


class VersionForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    """An action without input of its own (発行依頼, 取消): the version shown."""

    version = IntegerField(widget=HiddenInput(), validators=[InputRequired()])


class ReasonForm(VersionForm):
    """却下 and 却下理由の修正: the reason, required."""

    reason = TextAreaField(
        _l("Rejection reason"), validators=[DataRequired(), Length(max=REASON_LIMIT)]
    )


class PaymentForm(VersionForm):
    """入金登録 (B3): the transfer as the passbook shows it."""

    paid_on = DateField(_l("Payment date"), validators=[InputRequired()])
    amount_yen = IntegerField(
        _l("Amount (yen)"), validators=[InputRequired(), NumberRange(min=0, max=10_000_000)]
    )
    payer_name = StringField(_l("Payer name"), validators=[DataRequired(), Length(max=100)])


class RevocationForm(VersionForm):
    """失効申請 (B4): the RFC 5280 reason, who asked and when (Japan time)."""

    reason = SelectField(_l("Revocation reason"), validators=[DataRequired()])
    requested_by = SelectField(_l("Requested by"), validators=[DataRequired()])
    requested_at = DateTimeLocalField(
        _l("Requested at (Japan time)"), format="%Y-%m-%dT%H:%M", validators=[InputRequired()]
    )


class ReapplyForm(VersionForm):
    """再度申込: the applicant's issuance password (paper form) and, for an office, consent."""

    issuance_password = PasswordField(
        _l("The applicant's issuance password"), validators=[DataRequired(), Length(max=200)]
    )
    consent_fee_offset = BooleanField(_l("The office consents to the fee offset"))
