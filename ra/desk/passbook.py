"""入金登録 from the bank passbook (B3, docs/product.md §6): agents' applications by payer.

An agent pays the fee by bank transfer and writes its user ID as the payer name (振込人名).
Staff read the payer name from the passbook (記帳した通帳) and search with it; the passbook
prints names in its own way (upper case, half-width or full-width characters, spaces the
bank inserted), so both the typed payer name and the agents' user IDs are folded the same
way before they are compared: Unicode NFKC (full-width letters and digits become ASCII,
half-width kana become full-width), case folded, and every space removed
(:func:`fold_payer`).  The match is on the whole folded text: ``ＡＧ　０００１`` and
``ag0001`` find the agent ``AG0001``; ``AG000`` finds nothing, since a prefix could name
another agent's transfer.

The result is each matching agent's applications that await payment (status 2), newest
first, as list rows with their fee balance (手数料残高), which staff compare with the amount in
the passbook before registering the payment (:func:`ra.desk.bulk.bulk_register_payment` or
:func:`ra.workflow.applications.register_payment`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.desk.queries import MAX_PAGE_SIZE, ListRow, fetch_page, make_filters
from ra.lifecycle import Status
from ra.party import Party, Permission, require
from ra.store.models import Account, AccountKind
from shomei.errors import MalformedInput
from shomei.jatext import fold_user_id

PAYER_LIMIT = 100  # as the payer name of a registered payment


def fold_payer(text: str) -> str:
    """A payer name or user ID in the form they are compared in (see the module)."""
    return "".join(fold_user_id(text, casefold=True).split())


def search_by_payer(session: Session, party: Party, payer_name: str) -> tuple[ListRow, ...]:
    """The applications awaiting payment of the agents whose user ID is ``payer_name``.

    Newest first, at most 500 (an agent has rarely more than a few unpaid at once).  A blank
    or over-long payer name raises :class:`MalformedInput`; staff and admins only.
    """
    require(party, Permission.REGISTER_PAYMENT)
    if not isinstance(payer_name, str) or not payer_name.strip() or len(payer_name) > PAYER_LIMIT:
        raise MalformedInput(
            "enter the payer name as written in the passbook (at most 100 characters)",
            message_ja="通帳に記載された振込人名を100文字以内で入力してください",
            field="payer_name",
        )
    wanted = fold_payer(payer_name)
    # Agents are few (a federation has tens to hundreds): fold every agent user ID here
    # rather than rely on the database's idea of case and width.
    agents = session.execute(
        select(Account.user_id).where(Account.kind == AccountKind.AGENT).order_by(Account.user_id)
    ).scalars()
    rows: list[ListRow] = []
    for user_id in agents:
        if fold_payer(user_id) != wanted:
            continue
        filters = make_filters(
            user_id=user_id, user_id_match="exact", statuses={Status.AWAITING_PAYMENT}
        )
        rows.extend(fetch_page(session, filters, page_size=MAX_PAGE_SIZE).rows)
    rows.sort(key=lambda r: r.cursor, reverse=True)
    return tuple(rows[:MAX_PAGE_SIZE])
