"""The forms of the web pages (Flask-WTF: every POST carries a CSRF token)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length


class SignInForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    user_id = StringField(_l("User ID"), validators=[DataRequired(), Length(max=200)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    submit = SubmitField(_l("Sign in"))


class CodeForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    code = StringField(_l("One-time code (6 digits)"), validators=[DataRequired(), Length(max=20)])
    submit = SubmitField(_l("Confirm"))


class PasswordChangeForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=200)])
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(
        _l("New password (again)"), validators=[DataRequired(), Length(max=200)]
    )
    submit = SubmitField(_l("Change password"))


class ChoiceForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    """A header toggle (language, date style): the value and the page to return to."""

    value = HiddenField()
    next = HiddenField()


class PlainForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    """A POST without fields of its own (sign-out): only the CSRF token."""
