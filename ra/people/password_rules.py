"""Rules for a login password people choose themselves (their own password change).

8 to 20 half-width characters (ASCII letters, digits and symbols, no spaces), with at least
one letter, one digit and one symbol, and not containing the user ID.  Every broken rule is
reported, each with its own message in English and Japanese, so the form can list them all.
"""

from __future__ import annotations

import string

from ra.people.accounts import Problem

PASSWORD_MIN = 8
PASSWORD_MAX = 20
SYMBOLS = frozenset(string.punctuation)


def password_problems(password: str, user_id: str) -> list[Problem]:
    """Every rule a new login password breaks (empty when it is good), one message each.

    8 to 20 half-width characters, with at least one letter, one digit and one symbol, and
    not containing the user ID.
    """
    found: list[Problem] = []
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        found.append(
            Problem(
                "password",
                f"a password has {PASSWORD_MIN} to {PASSWORD_MAX} characters",
                f"パスワードは{PASSWORD_MIN}文字以上{PASSWORD_MAX}文字以内で入力してください",
            )
        )
    if not all(c.isascii() and c.isprintable() and not c.isspace() for c in password):
        found.append(
            Problem(
                "password",
                "use only half-width letters, digits and symbols (no spaces)",
                "パスワードには半角の英字・数字・記号のみ使えます(空白は使えません)",
            )
        )
    if not any(c.isascii() and c.isalpha() for c in password):
        found.append(
            Problem("password", "include a letter", "パスワードには英字を1文字以上含めてください")
        )
    if not any(c.isascii() and c.isdigit() for c in password):
        found.append(
            Problem("password", "include a digit", "パスワードには数字を1文字以上含めてください")
        )
    if not any(c in SYMBOLS for c in password):
        found.append(
            Problem(
                "password",
                "include a symbol such as ! # $ % & -",
                "パスワードには記号(! # $ % & - など)を1文字以上含めてください",
            )
        )
    if user_id and user_id.casefold() in password.casefold():
        found.append(
            Problem(
                "password",
                "the password must not contain the user ID",
                "ユーザーIDを含むパスワードは使えません",
            )
        )
    return found
