"""Rules for a login password people choose themselves, one policy per kind of account.

A :class:`PasswordPolicy` states its rules as data: the length, which kinds of characters it
needs, whether the user ID may appear in it.  :data:`STAFF` is the console's (staff and
admins changing their own password); :data:`PORTAL` is the portal's (offices and agents
choosing a password at their first sign-in, changing it, or setting a new one after a
forgotten password): 8 to 20 half-width characters with letters, digits and a symbol.
Every broken rule is reported, each with its own message in English and Japanese, so a form
lists them all, one line each; :meth:`PasswordPolicy.rules_ja` says the rules before anything
is typed.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from ra.people.accounts import Problem

PASSWORD_MIN = 8
PASSWORD_MAX = 20
SYMBOLS = frozenset(string.punctuation)


@dataclass(frozen=True)
class PasswordPolicy:
    """What a chosen password must be: its length and what it must (not) contain."""

    name: str
    min_length: int = PASSWORD_MIN
    max_length: int = PASSWORD_MAX
    letter: bool = True  # at least one ASCII letter
    digit: bool = True  # at least one ASCII digit
    symbol: bool = True  # at least one ASCII symbol (string.punctuation)
    not_user_id: bool = True  # must not contain the user ID (any case)

    def problems(self, password: str, user_id: str) -> list[Problem]:
        """Every rule ``password`` breaks (empty when it is good), one message each."""
        found: list[Problem] = []
        if not self.min_length <= len(password) <= self.max_length:
            found.append(
                Problem(
                    "password",
                    f"a password has {self.min_length} to {self.max_length} characters",
                    f"パスワードは{self.min_length}文字以上{self.max_length}文字以内で"
                    "入力してください",
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
        if self.letter and not any(c.isascii() and c.isalpha() for c in password):
            found.append(
                Problem(
                    "password", "include a letter", "パスワードには英字を1文字以上含めてください"
                )
            )
        if self.digit and not any(c.isascii() and c.isdigit() for c in password):
            found.append(
                Problem(
                    "password", "include a digit", "パスワードには数字を1文字以上含めてください"
                )
            )
        if self.symbol and not any(c in SYMBOLS for c in password):
            found.append(
                Problem(
                    "password",
                    "include a symbol such as ! # $ % & -",
                    "パスワードには記号(! # $ % & - など)を1文字以上含めてください",
                )
            )
        if self.not_user_id and user_id and user_id.casefold() in password.casefold():
            found.append(
                Problem(
                    "password",
                    "the password must not contain the user ID",
                    "ユーザーIDを含むパスワードは使えません",
                )
            )
        return found

    def rules_ja(self) -> list[str]:
        """The rules in plain Japanese, one line each, to show beside the form."""
        needs = [
            what
            for wanted, what in ((self.letter, "英字"), (self.digit, "数字"), (self.symbol, "記号"))
            if wanted
        ]
        lines = [f"半角で{self.min_length}文字以上{self.max_length}文字以内"]
        if needs:
            lines.append("・".join(needs) + "をそれぞれ1文字以上含める(記号の例: ! # $ % & -)")
        if self.not_user_id:
            lines.append("ユーザーIDを含めない")
        return lines

    def rules_en(self) -> list[str]:
        """The same rules in English."""
        needs = [
            what
            for wanted, what in (
                (self.letter, "a letter"),
                (self.digit, "a digit"),
                (self.symbol, "a symbol"),
            )
            if wanted
        ]
        lines = [f"{self.min_length} to {self.max_length} half-width characters"]
        if needs:
            lines.append("at least " + ", ".join(needs) + " (symbols: ! # $ % & - ...)")
        if self.not_user_id:
            lines.append("not containing the user ID")
        return lines


STAFF = PasswordPolicy("staff")
PORTAL = PasswordPolicy("portal")


def password_problems(password: str, user_id: str, policy: PasswordPolicy = STAFF) -> list[Problem]:
    """Every rule a new login password breaks under ``policy`` (the staff's by default)."""
    return policy.problems(password, user_id)
