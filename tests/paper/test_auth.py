from __future__ import annotations

import pyotp
import pytest

from paper.auth import LoginError, PaperLogin, Sessions, TokenError

LOGIN = PaperLogin("P0001", "1234", "key-1", "TICKGUARDPAPERDEMOTOTPSECRET2345")


class Clock:
    def __init__(self, now: float = 1_760_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sessions(clock) -> Sessions:
    return Sessions([LOGIN], "s" * 64, ttl_s=3600, clock=clock)


def code(clock: Clock, offset_s: float = 0) -> str:
    return pyotp.TOTP(LOGIN.totp_secret).at(clock.now + offset_s)


def test_login_issues_tokens_that_authenticate(sessions, clock):
    tokens = sessions.login("p0001", "1234", code(clock), "key-1")
    session = sessions.authenticate(f"Bearer {tokens.jwt_token}", "key-1")
    assert session.clientcode == "P0001"
    assert sessions.authenticate(tokens.jwt_token, "key-1").sid == session.sid  # with or without "Bearer "
    assert sessions.authenticate_feed("P0001", tokens.feed_token, "key-1").sid == session.sid


@pytest.mark.parametrize("offset, accepted", [(-30, True), (0, True), (30, True), (-90, False), (90, False)])
def test_totp_window(sessions, clock, offset, accepted):
    if accepted:
        sessions.login("P0001", "1234", code(clock, offset), "key-1")
    else:
        with pytest.raises(LoginError) as caught:
            sessions.login("P0001", "1234", code(clock, offset), "key-1")
        assert caught.value.errorcode == "AB1050"


@pytest.mark.parametrize("args, errorcode", [
    (("P0001", "9999", None, "key-1"), "AB1007"),
    (("NOBODY", "1234", None, "key-1"), "AB1007"),
    (("P0001", "1234", None, "other-key"), "AG8004"),
    (("P0001", "1234", None, None), "AG8004"),
])
def test_refused_logins(sessions, clock, args, errorcode):
    clientcode, pin, _, key = args
    with pytest.raises(LoginError) as caught:
        sessions.login(clientcode, pin, code(clock), key)
    assert caught.value.errorcode == errorcode


def test_tokens_expire_and_refresh_renews(sessions, clock):
    tokens = sessions.login("P0001", "1234", code(clock), "key-1")
    clock.now += 3601
    with pytest.raises(TokenError) as caught:
        sessions.authenticate(tokens.jwt_token, "key-1")
    assert caught.value.errorcode == "AG8002"
    with pytest.raises(TokenError) as caught:
        sessions.refresh(tokens.refresh_token)
    assert caught.value.errorcode == "AB8051"


def test_forced_expiry_keeps_refresh_working(sessions, clock):
    tokens = sessions.login("P0001", "1234", code(clock), "key-1")
    sessions.expire_access("P0001")
    with pytest.raises(TokenError, match="AG8002"):
        sessions.authenticate(tokens.jwt_token, "key-1")
    clock.now += 1
    renewed = sessions.refresh(tokens.refresh_token)
    assert sessions.authenticate(renewed.jwt_token, "key-1").clientcode == "P0001"


def test_token_kinds_are_not_interchangeable(sessions, clock):
    tokens = sessions.login("P0001", "1234", code(clock), "key-1")
    with pytest.raises(TokenError, match="AG8001"):
        sessions.authenticate(tokens.refresh_token, "key-1")
    with pytest.raises(TokenError, match="AB8050"):
        sessions.refresh(tokens.jwt_token)


def test_logout_revokes_every_token_of_the_session(sessions, clock):
    tokens = sessions.login("P0001", "1234", code(clock), "key-1")
    sessions.logout(sessions.authenticate(tokens.jwt_token, "key-1"))
    with pytest.raises(TokenError, match="AG8001"):
        sessions.authenticate(tokens.jwt_token, "key-1")
    with pytest.raises(TokenError, match="AB8050"):
        sessions.refresh(tokens.refresh_token)


def test_a_token_signed_with_another_key_is_invalid(sessions, clock):
    tokens = sessions.login("P0001", "1234", code(clock), "key-1")
    other = Sessions([LOGIN], "o" * 64, clock=clock)
    with pytest.raises(TokenError, match="AG8001"):
        other.authenticate(tokens.jwt_token, "key-1")


def test_wrong_api_key_header_on_a_good_token(sessions, clock):
    tokens = sessions.login("P0001", "1234", code(clock), "key-1")
    with pytest.raises(TokenError, match="AG8004"):
        sessions.authenticate(tokens.jwt_token, "key-2")
    with pytest.raises(TokenError, match="AG8003"):
        sessions.authenticate(None, "key-1")


def test_login_repr_hides_secrets():
    assert "1234" not in repr(LOGIN) and LOGIN.totp_secret not in repr(LOGIN)
