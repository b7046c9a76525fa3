"""A confirmation page before a destructive action, without JavaScript.

The action's button posts its form as before.  A view whose action cannot be taken back asks
:func:`confirmed` first; without ``confirm=yes`` in the form it answers with :func:`page`: a
title asking the question, what will happen (one line each, in the reader's language), a
実行 button that posts the same form to the same address again with ``confirm=yes`` and a
fresh CSRF token, and キャンセル, a link back to where the user came from.  Nothing changes
until 実行 is pressed.  The view checks the permission and the object before asking (the
service does), so a user who may not act gets the refusal, not the question.
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import render_template, request
from flask_babel import gettext as _

FIELD = "confirm"


def confirmed() -> bool:
    """Whether the POST being answered carries ``confirm=yes`` (実行 was pressed)."""
    return request.form.get(FIELD) == "yes"


def page(*, title: str, consequences: Sequence[str], back: str) -> str:
    """The confirmation page for the POST being answered; ``back`` is where キャンセル goes."""
    return render_template(
        "confirm.html",
        title=title,
        consequences=list(consequences),
        action=request.path,
        back=back,
        field=FIELD,
    )


def disabling() -> list[str]:
    """What disabling an account (office, agent, staff or admin) does."""
    return [
        _("The account can no longer sign in, and its sessions end."),
        _("The console has no way to enable it again."),
    ]
