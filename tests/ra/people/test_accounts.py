"""Accounts: creation with one-time passwords, argon2 hashes, roles, resets, TOTP, audit."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from ra.party import Party, party_of
from ra.people import accounts, passwords
from ra.people.accounts import AccountInput
from ra.people.passwords import WrongPassword
from ra.store.models import Account, AccountKind, AuditRecord
from ra.store.vault import totp_context
from shomei.errors import AlreadyExists, MalformedInput, NotFound, NotPermitted, Refused
from tests.ra.conftest import VAULT, Database

GOOD = AccountInput(
    kind=AccountKind.OFFICE,
    number="1310000001",
    name="中央ケア事業所",
    address="東京都新宿区西新宿2-8-1",
    phone="03-5321-1111",
    email="chuo@example.jp",
    representative_number="0312345678",
    postal_code="163-8001",
)


@pytest.fixture
def rng() -> Callable[[int], bytes]:
    return random.Random(7).randbytes


def test_passwords_are_typable_and_normalized(rng: Callable[[int], bytes]) -> None:
    issued = {passwords.new_issuance_password(rng) for _ in range(50)}
    assert len(issued) == 50
    for pw in issued:
        assert len(pw) == 14 and pw.count("-") == 2
        assert not set(pw) & set("01IO")
        assert passwords.normalize(pw.lower().replace("-", " ")) == pw
    assert passwords.normalize("  nonsense ") == "nonsense"
    login = passwords.new_login_password(rng)
    assert len(login) == 14 and login.isalnum()
    stored = passwords.hash_password(next(iter(issued)))
    assert stored.startswith("$argon2id$")
    assert passwords.check_issuance_password(stored, next(iter(issued)).lower())
    with pytest.raises(WrongPassword) as info:
        passwords.check_issuance_password(stored, "AAAA-BBBB-CCCC")
    assert info.value.message_ja == "証明書発行用パスワードが正しくありません"
    with pytest.raises(WrongPassword):
        passwords.check_issuance_password(None, "AAAA-BBBB-CCCC")
    with pytest.raises(WrongPassword):
        passwords.check_issuance_password("not a hash", "AAAA-BBBB-CCCC")


def test_create_office_and_agent(database: Database, now: dt.datetime, rng) -> None:  # type: ignore[no-untyped-def]
    with database.factory() as s, s.begin():
        new = accounts.add_portal_account(s, Party.operator("t"), GOOD, now=now, rng=rng)
        agent = accounts.add_portal_account(
            s,
            Party.operator("t"),
            dataclasses.replace(GOOD, kind=AccountKind.AGENT, number="9900000001", name="代理"),
            now=now,
            rng=rng,
        )
    with database.factory() as s:
        acct = accounts.get_account(s, new.user_id)
        assert acct.kind is AccountKind.OFFICE and acct.office_number == "1310000001"
        assert acct.user_id.startswith("of") and len(acct.user_id) == 10
        assert agent.user_id.startswith("ag")
        assert new.issuance_password and new.issuance_password not in acct.issuance_password_hash  # type: ignore[operator]
        passwords.check_issuance_password(acct.issuance_password_hash, new.issuance_password)
        passwords.check_password(
            acct.password_hash, new.login_password, what="password", what_ja="パスワード"
        )
        rec = s.execute(select(AuditRecord).order_by(AuditRecord.seq)).scalars().all()
        assert [(r.action, r.actor, r.actor_id, r.object_id) for r in rec] == [
            ("create_account", "system", "cli:t", new.user_id),
            ("create_account", "system", "cli:t", agent.user_id),
        ]
        text = str(rec[0].details)
        assert new.issuance_password not in text and new.login_password not in text


@pytest.mark.parametrize(
    ("change", "column"),
    [
        ({"number": "131000001"}, "number"),
        ({"number": "１３１００００００１"}, "number"),  # full-width digits
        ({"name": ""}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"address": " "}, "address"),
        ({"phone": "phone"}, "phone"),
        ({"email": "no-at-sign"}, "email"),
        ({"postal_code": "1638"}, "postal_code"),
        ({"representative_number": "abc"}, "representative_number"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(  # type: ignore[no-untyped-def]
    database: Database, now: dt.datetime, rng, change: dict[str, str], column: str
) -> None:
    with database.factory() as s, s.begin(), pytest.raises(MalformedInput) as info:
        accounts.add_portal_account(
            s, Party.operator(), dataclasses.replace(GOOD, **change), now=now, rng=rng
        )
    assert info.value.fields["column"] == column and info.value.message_ja
    with database.factory() as s:
        assert s.execute(select(func.count()).select_from(Account)).scalar_one() == 0


def test_roles_and_duplicates(database: Database, now: dt.datetime, rng) -> None:  # type: ignore[no-untyped-def]
    with database.factory() as s, s.begin():
        admin = accounts.add_console_user(
            s,
            Party.operator(),
            kind=AccountKind.ADMIN,
            name="管理者",
            email="a@f.jp",
            now=now,
            vault=VAULT,
            rng=rng,
        ).account
        staff = accounts.add_console_user(
            s,
            party_of(admin),
            kind=AccountKind.STAFF,
            name="職員",
            email="s@f.jp",
            now=now,
            vault=VAULT,
            rng=rng,
        ).account
        office = accounts.add_portal_account(s, party_of(staff), GOOD, now=now, rng=rng).account
        with pytest.raises(AlreadyExists) as info:  # the same office number twice
            accounts.add_portal_account(s, party_of(staff), GOOD, now=now, rng=rng)
        assert "既に登録" in info.value.message_ja
        with pytest.raises(NotPermitted):  # staff do not manage console users
            accounts.add_console_user(
                s,
                party_of(staff),
                kind=AccountKind.ADMIN,
                name="x",
                email="x@f.jp",
                now=now,
                vault=VAULT,
                rng=rng,
            )
        with pytest.raises(NotPermitted):  # offices create nothing
            accounts.add_portal_account(
                s,
                party_of(office),
                dataclasses.replace(GOOD, number="1310000009"),
                now=now,
                rng=rng,
            )
        with pytest.raises(MalformedInput):
            accounts.add_console_user(
                s,
                party_of(admin),
                kind=AccountKind.OFFICE,
                name="x",
                email="x@f.jp",
                now=now,
                vault=VAULT,
                rng=rng,
            )
        with pytest.raises(MalformedInput):
            accounts.add_console_user(
                s,
                party_of(admin),
                kind=AccountKind.STAFF,
                name="x",
                email="bad",
                now=now,
                vault=VAULT,
                rng=rng,
            )
        count = s.execute(select(func.count()).select_from(Account)).scalar_one()
        assert count == 3


def test_reset_issuance_password_and_letter(database: Database, now: dt.datetime, rng) -> None:  # type: ignore[no-untyped-def]
    with database.factory() as s, s.begin():
        staff = accounts.add_console_user(
            s,
            Party.operator(),
            kind=AccountKind.STAFF,
            name="職員",
            email="s@f.jp",
            now=now,
            vault=VAULT,
            rng=rng,
        ).account
        new = accounts.add_portal_account(s, party_of(staff), GOOD, now=now, rng=rng)
        reissued = accounts.reset_issuance_password(
            s,
            party_of(staff),
            new.user_id,
            now=now,
            federation_name="証明連合会",
            rng=rng,
            source_address="198.51.100.7",
        )
        assert reissued.issuance_password != new.issuance_password
        acct = accounts.get_account(s, new.user_id)
        passwords.check_issuance_password(acct.issuance_password_hash, reissued.issuance_password)
        with pytest.raises(WrongPassword):
            passwords.check_issuance_password(
                acct.issuance_password_hash, new.issuance_password or ""
            )
        letter = reissued.letter
        assert new.user_id in letter and reissued.issuance_password in letter
        assert (
            "中央ケア事業所 御中" in letter and "2026年11月2日" in letter and "163-8001" in letter
        )
        last = s.execute(select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1)).scalar_one()
        assert (last.action, last.source_address) == ("reset_issuance_password", "198.51.100.7")
        with pytest.raises(NotFound):
            accounts.reset_issuance_password(
                s, party_of(staff), "of00000000", now=now, federation_name="x", rng=rng
            )
        with pytest.raises(Refused):  # staff have no issuance password
            accounts.reset_issuance_password(
                s, party_of(staff), staff.user_id, now=now, federation_name="x", rng=rng
            )
        with pytest.raises(NotPermitted):  # an office cannot reset passwords
            accounts.reset_issuance_password(
                s, party_of(acct), acct.user_id, now=now, federation_name="x", rng=rng
            )


def test_totp_for_staff(database: Database, now: dt.datetime, rng) -> None:  # type: ignore[no-untyped-def]
    with database.factory() as s, s.begin():
        new = accounts.add_console_user(
            s,
            Party.operator(),
            kind=AccountKind.STAFF,
            name="職員",
            email="s@f.jp",
            now=now,
            vault=VAULT,
            rng=rng,
        )
    assert new.totp_secret and len(new.totp_secret) == 32
    # The secret printed once is the one sealed (sign-in checks codes:
    # tests/ra/people/test_auth.py).
    sealed = new.account.totp_secret_sealed
    assert sealed and new.totp_secret not in sealed
    assert VAULT.open(sealed, context=totp_context(new.account.user_id)) == new.totp_secret


def test_reset_login_password(database: Database, now: dt.datetime, rng) -> None:  # type: ignore[no-untyped-def]
    with database.factory() as s, s.begin():
        admin = accounts.add_console_user(
            s,
            Party.operator(),
            kind=AccountKind.ADMIN,
            name="管理者",
            email="a@f.jp",
            now=now,
            vault=VAULT,
            rng=rng,
        ).account
        staff_new = accounts.add_console_user(
            s,
            party_of(admin),
            kind=AccountKind.STAFF,
            name="職員",
            email="s@f.jp",
            now=now,
            vault=VAULT,
            rng=rng,
        )
        staff = staff_new.account
        office = accounts.add_portal_account(s, party_of(staff), GOOD, now=now, rng=rng)
        office.account.failed_logins = 5
        office.account.locked_until = now + dt.timedelta(minutes=30)
        new = accounts.reset_login_password(s, party_of(staff), office.user_id, now=now, rng=rng)
        acct = accounts.get_account(s, office.user_id)
        assert acct.failed_logins == 0 and acct.locked_until is None
        passwords.check_password(acct.password_hash, new, what="password", what_ja="パスワード")
        with pytest.raises(WrongPassword):
            passwords.check_password(
                acct.password_hash, office.login_password, what="password", what_ja="パスワード"
            )
        with pytest.raises(NotPermitted):  # staff cannot reset an admin's password
            accounts.reset_login_password(s, party_of(staff), admin.user_id, now=now, rng=rng)
        with pytest.raises(NotPermitted):  # an office cannot reset anything
            accounts.reset_login_password(s, party_of(acct), acct.user_id, now=now, rng=rng)
        assert accounts.reset_login_password(s, party_of(admin), staff.user_id, now=now, rng=rng)
        actions = (
            s.execute(
                select(AuditRecord.action).where(AuditRecord.action == "reset_login_password")
            )
            .scalars()
            .all()
        )
        assert len(actions) == 2


def test_hash_passwords_uses_every_core_and_keeps_the_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    real = passwords.hash_password
    threads: set[str] = set()

    def spy(password: str) -> str:
        threads.add(threading.current_thread().name)
        return real(password)

    monkeypatch.setattr(passwords, "hash_password", spy)
    words = [f"password-{i}" for i in range(6)]
    seen: list[int] = []
    hashes = passwords.hash_passwords(words, workers=2, progress=seen.append)
    assert seen == [1, 2, 3, 4, 5, 6]
    assert len(threads) == 2 and all(t.startswith("argon2") for t in threads)
    for word, hashed in zip(words, hashes, strict=True):
        passwords.check_password(hashed, word, what="x", what_ja="x")
    assert hashes[0].startswith("$argon2id$v=19$m=65536,t=3,p=4$")  # RFC 9106 strength kept
    assert passwords.hash_passwords([], workers=2) == []
