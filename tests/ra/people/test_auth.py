"""The sign-in service (ra.people.auth) on SQLite and PostgreSQL: every rule, with its audit."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import pyotp
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ra.party import Party, party_of
from ra.people import accounts, auth
from ra.people.passwords import hash_password
from ra.settings import LockoutPolicy, SignInSettings
from ra.store.models import Account, AccountKind, AuditRecord
from shomei.errors import AuthenticationFailed, LockedOut, MalformedInput, NotFound, NotPermitted
from tests.ra import factories
from tests.ra.conftest import VAULT, Database

SETTINGS = SignInSettings()
CONSOLE = auth.CONSOLE_KINDS
PORTAL = frozenset({AccountKind.OFFICE, AccountKind.AGENT})
GOOD = "Kami-2026x"


@dataclass
class Staff:
    id: int
    user_id: str
    password: str
    secret: str


def _rng() -> object:
    counter = itertools.count(7)
    return lambda n: bytes((next(counter) * 37) % 256 for _ in range(n))


def make_staff(db: Database, now: dt.datetime, *, kind: AccountKind = AccountKind.STAFF) -> Staff:
    with db.factory() as s, s.begin():
        new = accounts.add_console_user(
            s,
            Party.operator(),
            kind=kind,
            name="職員 一郎",
            email="staff@example.jp",
            now=now,
            vault=VAULT,
            rng=_rng(),  # type: ignore[arg-type]
        )
        assert new.totp_secret is not None
        return Staff(new.account.id, new.user_id, new.login_password, new.totp_secret)


def enrolled_staff(db: Database, now: dt.datetime, **kw: AccountKind) -> Staff:
    staff = make_staff(db, now, **kw)
    with db.factory() as s, s.begin():
        code = pyotp.TOTP(staff.secret).at(now)
        auth.confirm_enrolment(s, staff.id, code, vault=VAULT, settings=SETTINGS, now=now)
    return staff


def portal_account(db: Database, now: dt.datetime, password: str = GOOD) -> Account:
    with db.factory() as s, s.begin():
        acct = factories.account(s, kind=AccountKind.OFFICE, now=now)
        acct.password_hash = hash_password(password)
        return acct


def actions(s: Session, user_id: str) -> list[str]:
    return list(
        s.execute(
            select(AuditRecord.action)
            .where(AuditRecord.object_id == user_id)
            .order_by(AuditRecord.seq)
        ).scalars()
    )


def load(s: Session, account_id: int) -> Account:
    return s.execute(select(Account).where(Account.id == account_id)).scalar_one()


def password_step(
    db: Database, user_id: str, password: str, now: dt.datetime, kinds: frozenset[AccountKind]
) -> auth.PasswordChecked:
    with auth.attempt(db.factory) as s:
        return auth.check_password(
            s,
            user_id,
            password,
            settings=SETTINGS,
            now=now,
            kinds=kinds,
            source_address="192.0.2.1",
        )


def totp_step(db: Database, account_id: int, code: str, now: dt.datetime) -> Account:
    with auth.attempt(db.factory) as s:
        return auth.check_totp(s, account_id, code, vault=VAULT, settings=SETTINGS, now=now)


def test_new_staff_enrols_with_the_sealed_secret_and_one_code(
    database: Database, now: dt.datetime
) -> None:
    staff = make_staff(database, now)
    checked = password_step(database, staff.user_id, staff.password, now, CONSOLE)
    assert checked.needs_enrolment and not checked.needs_totp and not checked.signed_in
    with database.factory() as s, s.begin():
        secret = auth.enrolment_secret(s, staff.id, vault=VAULT, now=now)
        again = auth.enrolment_secret(s, staff.id, vault=VAULT, now=now)
        sealed = load(s, staff.id).totp_secret_sealed
    assert secret == again == staff.secret  # a reload shows the QR code already scanned
    assert sealed and secret not in sealed
    uri = auth.provisioning_uri(secret, staff.user_id, "証明連合会")
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri
    # A wrong code does not confirm; the secret does not count yet.
    wrong = "000000" if pyotp.TOTP(secret).at(now) != "000000" else "111111"
    with pytest.raises(AuthenticationFailed), auth.attempt(database.factory) as s:
        auth.confirm_enrolment(s, staff.id, wrong, vault=VAULT, settings=SETTINGS, now=now)
    with pytest.raises(AuthenticationFailed):
        totp_step(database, staff.id, pyotp.TOTP(secret).at(now), now)
    with auth.attempt(database.factory) as s:
        auth.confirm_enrolment(
            s, staff.id, pyotp.TOTP(secret).at(now), vault=VAULT, settings=SETTINGS, now=now
        )
    with database.factory() as s:
        account = load(s, staff.id)
        assert account.totp_enrolled_at == now and account.failed_logins == 0
        assert actions(s, staff.user_id)[-3:] == ["sign_in_failed", "totp_enrolled", "sign_in"]
    later = now + dt.timedelta(minutes=2)
    assert password_step(database, staff.user_id, staff.password, later, CONSOLE).needs_totp
    with pytest.raises(AuthenticationFailed), database.factory() as s, s.begin():
        auth.enrolment_secret(s, staff.id, vault=VAULT, now=later)  # enrolled: no new secret


def test_totp_code_is_accepted_once(database: Database, now: dt.datetime) -> None:
    staff = enrolled_staff(database, now)
    later = now + dt.timedelta(minutes=5)
    code = pyotp.TOTP(staff.secret).at(later)
    totp_step(database, staff.id, code, later)
    with pytest.raises(AuthenticationFailed) as err:
        totp_step(database, staff.id, code, later + dt.timedelta(seconds=5))
    assert "使用済み" in err.value.message_ja
    # A code of an earlier step, still inside the drift window, is refused as well.
    earlier = pyotp.TOTP(staff.secret).at(later - dt.timedelta(seconds=30))
    with pytest.raises(AuthenticationFailed):
        totp_step(database, staff.id, earlier, later)
    # The next step's code is fine (and one step of drift is allowed).
    totp_step(
        database, staff.id, pyotp.TOTP(staff.secret).at(later + dt.timedelta(seconds=30)), later
    )
    with database.factory() as s:
        assert actions(s, staff.user_id).count("sign_in_failed") == 2
        assert load(s, staff.id).failed_logins == 0  # the sign-in reset the count


def test_totp_enrolment_code_cannot_be_replayed_for_the_next_sign_in(
    database: Database, now: dt.datetime
) -> None:
    staff = enrolled_staff(database, now)
    with pytest.raises(AuthenticationFailed):
        totp_step(database, staff.id, pyotp.TOTP(staff.secret).at(now), now)


def test_unknown_user_is_told_exactly_what_a_wrong_password_is(
    database: Database, now: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff = enrolled_staff(database, now)
    checked: list[str | None] = []
    real = auth._check_hash

    def spy(stored: str | None, password: str, **kw: str) -> None:
        checked.append(stored)
        real(stored, password, **kw)

    monkeypatch.setattr(auth, "_check_hash", spy)
    with pytest.raises(AuthenticationFailed) as unknown:
        password_step(database, "nobody", "whatever1!", now, CONSOLE)
    with pytest.raises(AuthenticationFailed) as wrong:
        password_step(database, staff.user_id, "whatever1!", now, CONSOLE)
    assert unknown.value.message == wrong.value.message
    assert unknown.value.message_ja == wrong.value.message_ja
    assert unknown.value.fields == wrong.value.fields == {}
    # The unknown ID was checked against a real argon2 hash too (the same cost).
    assert len(checked) == 2 and all(h and h.startswith("$argon2id$") for h in checked)


def test_user_id_typed_full_width_is_folded(database: Database, now: dt.datetime) -> None:
    acct = portal_account(database, now)
    wide = "".join(chr(ord(c) + 0xFEE0) for c in acct.user_id)
    assert password_step(database, f" {wide} ", GOOD, now, PORTAL).signed_in


def test_console_locks_after_five_failures_for_thirty_minutes(
    database: Database, now: dt.datetime
) -> None:
    staff = enrolled_staff(database, now)
    for i in range(5):
        with pytest.raises(AuthenticationFailed):
            password_step(database, staff.user_id, f"wrong{i}!", now, CONSOLE)
    until = now + dt.timedelta(minutes=30)
    with pytest.raises(LockedOut) as err:  # even the right password, without checking it
        password_step(
            database, staff.user_id, staff.password, now + dt.timedelta(minutes=29), CONSOLE
        )
    assert err.value.fields["until"] == until
    with database.factory() as s:
        log = actions(s, staff.user_id)
        assert log.count("sign_in_failed") == 5 and log.count("lockout") == 1
    checked = password_step(database, staff.user_id, staff.password, until, CONSOLE)
    assert checked.needs_totp
    with database.factory() as s:
        assert actions(s, staff.user_id)[-1] == "unlock"
        assert load(s, staff.id).locked_until is None


def test_portal_locks_after_three_failures(database: Database, now: dt.datetime) -> None:
    acct = portal_account(database, now)
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            password_step(database, acct.user_id, "nope-123", now, PORTAL)
    assert password_step(database, acct.user_id, GOOD, now, PORTAL).signed_in  # resets
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            password_step(database, acct.user_id, "nope-123", now, PORTAL)
    with pytest.raises(LockedOut):
        password_step(database, acct.user_id, GOOD, now, PORTAL)


def test_lockout_follows_the_settings(database: Database, now: dt.datetime) -> None:
    acct = portal_account(database, now)
    strict = SignInSettings(portal=LockoutPolicy(attempts=1, minutes=5))
    with pytest.raises(AuthenticationFailed), auth.attempt(database.factory) as s:
        auth.check_password(s, acct.user_id, "bad", settings=strict, now=now, kinds=PORTAL)
    with pytest.raises(LockedOut) as err, auth.attempt(database.factory) as s:
        auth.check_password(s, acct.user_id, GOOD, settings=strict, now=now, kinds=PORTAL)
    assert err.value.fields["until"] == now + dt.timedelta(minutes=5)


def test_wrong_totp_codes_count_toward_the_lockout(database: Database, now: dt.datetime) -> None:
    staff = enrolled_staff(database, now)
    later = now + dt.timedelta(minutes=10)
    right = pyotp.TOTP(staff.secret).at(later)
    wrong = f"{(int(right) + 1) % 1000000:06d}"
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            totp_step(database, staff.id, wrong, later)
    with pytest.raises(LockedOut):
        totp_step(database, staff.id, right, later)


def test_accounts_that_may_not_sign_in_here_fail_like_a_wrong_password(
    database: Database, now: dt.datetime
) -> None:
    acct = portal_account(database, now)
    with pytest.raises(AuthenticationFailed):
        password_step(database, acct.user_id, GOOD, now, CONSOLE)  # an office at the console
    staff = enrolled_staff(database, now)
    with database.factory() as s, s.begin():
        load(s, staff.id).active = False
    with pytest.raises(AuthenticationFailed):
        password_step(database, staff.user_id, staff.password, now, CONSOLE)
    with pytest.raises(AuthenticationFailed):
        totp_step(
            database, staff.id, pyotp.TOTP(staff.secret).at(now + dt.timedelta(minutes=1)), now
        )


@pytest.mark.parametrize(
    ("password", "broken"),
    [
        ("Ab1!", ["8文字以上20文字以内"]),
        ("Abcdefgh1!Abcdefgh1!x", ["8文字以上20文字以内"]),
        ("abcdefgh!", ["数字"]),
        ("12345678!", ["英字"]),
        ("abcd1234", ["記号"]),
        ("ａｂｃｄ1234!", ["半角", "英字"]),  # full-width letters are not letters here
        ("abc 1234!", ["半角"]),
        ("x-st12345678", ["ユーザーID"]),
        ("abc", ["8文字以上20文字以内", "数字", "記号"]),
    ],
)
def test_password_rules_one_message_per_broken_rule(password: str, broken: list[str]) -> None:
    problems = auth.password_problems(password, "st12345678")
    assert len(problems) == len(broken)
    for problem, words in zip(problems, broken, strict=True):
        assert words in problem.message_ja


def test_a_good_password_breaks_no_rule() -> None:
    assert auth.password_problems(GOOD, "st12345678") == []
    assert auth.password_problems("A1!aaaaa", "st12345678") == []


def test_change_own_password(database: Database, now: dt.datetime) -> None:
    acct = portal_account(database, now)
    with database.factory() as s, s.begin():
        me = load(s, acct.id)
        with pytest.raises(AuthenticationFailed):
            auth.change_own_password(s, me, "wrong", "New-pass99", settings=SETTINGS, now=now)
        with pytest.raises(MalformedInput) as err:
            auth.change_own_password(s, me, GOOD, "short", settings=SETTINGS, now=now)
        assert len(err.value.fields["problems"]) == 3  # length, a digit, a symbol
        with pytest.raises(MalformedInput):
            auth.change_own_password(s, me, GOOD, GOOD, settings=SETTINGS, now=now)
        epoch = me.session_epoch
        auth.change_own_password(s, me, GOOD, "New-pass99", settings=SETTINGS, now=now)
        assert me.session_epoch == epoch + 1
    with pytest.raises(AuthenticationFailed):
        password_step(database, acct.user_id, GOOD, now, PORTAL)
    assert password_step(database, acct.user_id, "New-pass99", now, PORTAL).signed_in
    with database.factory() as s:
        assert "password_changed" in actions(s, acct.user_id)


def test_unlock_by_staff(database: Database, now: dt.datetime) -> None:
    acct = portal_account(database, now)
    staff = enrolled_staff(database, now)
    other = enrolled_staff(database, now)
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            password_step(database, acct.user_id, "nope-123", now, PORTAL)
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            password_step(database, other.user_id, "nope-123", now, CONSOLE)
    with database.factory() as s, s.begin():
        me = load(s, staff.id)
        with pytest.raises(NotPermitted):  # staff do not unlock staff; admins do
            auth.unlock(s, party_of(me), other.user_id, now=now)
        with pytest.raises(NotPermitted):  # an office unlocks nobody
            auth.unlock(s, party_of(load(s, acct.id)), acct.user_id, now=now)
        auth.unlock(s, party_of(me), acct.user_id, now=now, source_address="192.0.2.9")
        with pytest.raises(NotFound):
            auth.unlock(s, party_of(me), acct.user_id, now=now)
    assert password_step(database, acct.user_id, GOOD, now, PORTAL).signed_in
    with database.factory() as s:
        rec = (
            s.execute(
                select(AuditRecord).where(AuditRecord.action == "unlock").order_by(AuditRecord.seq)
            )
            .scalars()
            .first()
        )
        assert rec is not None and rec.actor_id == staff.user_id and rec.object_id == acct.user_id


def test_naive_time_is_refused(database: Database) -> None:
    with pytest.raises(TypeError), database.factory() as s:
        auth.check_password(
            s, "x", "y", settings=SETTINGS, now=dt.datetime(2026, 1, 1), kinds=PORTAL
        )


def test_an_unknown_user_id_locks_as_a_real_one_does(database: Database, now: dt.datetime) -> None:
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            password_step(database, "ｇｈｏｓｔ", "Guess-123!", now, CONSOLE)  # folded: ghost
    with pytest.raises(LockedOut) as err:
        password_step(database, "ghost", "Guess-123!", now, CONSOLE)
    assert err.value.fields["until"] == now + dt.timedelta(minutes=30)
    assert err.value.message_ja == auth.LOCKED_JA
    with pytest.raises(AuthenticationFailed):  # the lock ends as an account's does
        password_step(database, "ghost", "Guess-123!", now + dt.timedelta(minutes=30), CONSOLE)
    with database.factory() as s:
        records = s.execute(select(AuditRecord).where(AuditRecord.object_id == "(unknown)"))
        found = records.scalars().all()
        assert len(found) == 6
        assert all("ghost" not in str(r.details) and r.actor == "anonymous" for r in found)


def test_lockout_follows_the_page_not_the_kind_of_account(
    database: Database, now: dt.datetime
) -> None:
    office = portal_account(database, now)
    for _ in range(4):  # the portal would have locked it after 3
        with pytest.raises(AuthenticationFailed):
            password_step(database, office.user_id, "nope-123", now, CONSOLE)
    with pytest.raises(AuthenticationFailed):
        password_step(database, office.user_id, "nope-123", now, CONSOLE)
    with pytest.raises(LockedOut):
        password_step(database, office.user_id, GOOD, now, PORTAL)


def test_old_unknown_rows_are_forgotten(database: Database, now: dt.datetime) -> None:
    from ra.store.models import UnknownSignIn

    with pytest.raises(AuthenticationFailed):
        password_step(database, "old-guess", "x", now, PORTAL)
    later = now + auth.UNKNOWN_KEPT + dt.timedelta(seconds=1)
    with pytest.raises(AuthenticationFailed):
        password_step(database, "new-guess", "x", later, PORTAL)
    with database.factory() as s:
        assert s.scalar(select(func.count()).select_from(UnknownSignIn)) == 1
