"""Logins and sessions: TOTP-checked password login, JWTs for REST and the sockets, refresh, logout.

A session is three tokens sharing one session id (`sid`): the access JWT (REST `Authorization`), the
refresh token (generateTokens) and the feed token (smart-stream). Logout revokes the session; a
forced expiry (control API) makes every access token issued before it answer AG8002.
"""
from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import jwt
import pyotp

__all__ = ["LoginError", "PaperLogin", "Session", "Sessions", "TokenError", "Tokens"]


class AuthError(Exception):
    def __init__(self, errorcode: str, message: str, field: str | None = None) -> None:
        self.errorcode = errorcode
        self.message = message
        self.field = field
        super().__init__(f"{errorcode}: {message}")


class LoginError(AuthError):
    """A refused login: answered in the standard `status` envelope."""


class TokenError(AuthError):
    """A bad, expired or missing token: answered in the gateway's `success`/`errorCode` dialect."""


@dataclass(frozen=True, slots=True)
class PaperLogin:
    clientcode: str
    pin: str
    api_key: str
    totp_secret: str
    name: str = "Paper Trader"

    def __repr__(self) -> str:
        return f"PaperLogin(clientcode={self.clientcode!r})"


@dataclass(frozen=True, slots=True)
class Tokens:
    jwt_token: str
    refresh_token: str
    feed_token: str


@dataclass(frozen=True, slots=True)
class Session:
    clientcode: str
    api_key: str
    sid: str
    issued_at: float


@dataclass
class Sessions:
    logins: Iterable[PaperLogin]
    signing_key: str
    ttl_s: int = 28 * 3600
    clock: Callable[[], float] = time.time
    revoked: set[str] = field(default_factory=set)  # session ids ended by logout
    not_before: dict[str, float] = field(default_factory=dict)  # clientcode -> forced access expiry

    def __post_init__(self) -> None:
        self.by_code = {login.clientcode.upper(): login for login in self.logins}
        self.api_keys = {login.api_key for login in self.by_code.values()}

    def login(self, clientcode: str, pin: str, totp: str, api_key: str | None) -> Tokens:
        if not api_key or api_key not in self.api_keys:
            raise LoginError("AG8004", "Invalid API Key", field="X-PrivateKey")
        login = self.by_code.get(str(clientcode).upper())
        if login is None or not secrets.compare_digest(str(pin), login.pin):
            raise LoginError("AB1007", "Invalid clientcode or password", field="password")
        if login.api_key != api_key:
            raise LoginError("AG8004", "Invalid API Key", field="X-PrivateKey")
        if not pyotp.TOTP(login.totp_secret).verify(str(totp), for_time=self.clock(), valid_window=1):
            raise LoginError("AB1050", "Invalid totp", field="totp")
        return self._issue(login.clientcode, api_key, uuid.uuid4().hex)

    def refresh(self, refresh_token: str) -> Tokens:
        claims = self._decode(refresh_token, "refresh", invalid=("AB8050", "Invalid Refresh Token"))
        if claims["exp"] <= self.clock():
            raise TokenError("AB8051", "Refresh Token Expired")
        return self._issue(claims["sub"], claims["key"], claims["sid"])

    def authenticate(self, authorization: str | None, api_key: str | None, *, require_key: bool = True) -> Session:
        """The session behind an `Authorization: Bearer <jwt>` header, or a TokenError.

        REST calls must name the token's API key; the order-update socket's documented handshake
        carries only the token (`require_key=False`), but a key it does send must match."""
        if not authorization:
            raise TokenError("AG8003", "Token missing")
        token = authorization.removeprefix("Bearer ").strip()
        claims = self._decode(token, "access", invalid=("AG8001", "Invalid Token"))
        if claims["exp"] <= self.clock() or claims["iat"] < self.not_before.get(claims["sub"], 0):
            raise TokenError("AG8002", "Token Expired")
        if (require_key or api_key) and api_key != claims["key"]:
            raise TokenError("AG8004", "Invalid API Key")
        return Session(claims["sub"], claims["key"], claims["sid"], claims["iat"])

    def authenticate_feed(self, clientcode: str, feed_token: str, api_key: str | None) -> Session:
        """The session behind a smart-stream handshake's client code, feed token and API key."""
        claims = self._decode(feed_token, "feed", invalid=("AG8001", "Invalid Feed Token"))
        if claims["sub"].upper() != str(clientcode).upper():
            raise TokenError("AG8001", "Invalid Client Code")
        if api_key != claims["key"]:
            raise TokenError("AG8004", "Invalid API Key")
        if claims["exp"] <= self.clock():
            raise TokenError("AG8002", "Token Expired")
        return Session(claims["sub"], claims["key"], claims["sid"], claims["iat"])

    def logout(self, session: Session) -> None:
        self.revoked.add(session.sid)

    def expire_access(self, clientcode: str | None = None) -> None:
        """Make every access token issued so far answer AG8002; refresh tokens stay good."""
        now = self.clock() + 1e-6
        for code in [clientcode.upper()] if clientcode else list(self.by_code):
            login = self.by_code.get(code)
            if login is not None:
                self.not_before[login.clientcode] = now

    def _issue(self, clientcode: str, api_key: str, sid: str) -> Tokens:
        now = self.clock()
        base = {"sub": clientcode, "key": api_key, "sid": sid, "iat": now, "exp": now + self.ttl_s}
        return Tokens(
            jwt_token=self._encode(base, "access"),
            refresh_token=self._encode(base, "refresh"),
            feed_token=self._encode(base, "feed"),
        )

    def _encode(self, claims: dict, kind: str) -> str:
        return jwt.encode({**claims, "typ": kind, "jti": uuid.uuid4().hex}, self.signing_key, algorithm="HS512")

    def _decode(self, token: str, kind: str, *, invalid: tuple[str, str]) -> dict:
        try:
            claims = jwt.decode(
                token, self.signing_key, algorithms=["HS512"],
                options={"verify_exp": False, "verify_iat": False, "require": ["sub", "sid", "exp", "iat"]},
            )
        except jwt.PyJWTError:
            raise TokenError(*invalid) from None
        if claims.get("typ") != kind or claims["sid"] in self.revoked:
            raise TokenError(*invalid)
        return claims
