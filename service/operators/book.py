"""The operators and their API tokens: `OPERATORS_FILE`, a JSON file written by `tickguard operator`.

    {"operators": {"asha": {"role": "trader", "password": "$argon2id$v=19$..."}},
     "tokens": {"Xk3v9QpL": {"operator": "asha", "sha256": "…", "created": "2026-12-05T09:12:00+05:30",
                             "label": "grafana"}}}

Passwords are argon2id hashes (argon2-cffi, its default parameters). An API token reads
`tgo_<id>.<secret>`: the file keeps only the SHA-256 of the secret (a token is 256 random bits, so a
fast hash is enough), and removing its entry (`tickguard operator revoke ID`) revokes it. The book
re-reads the file when it changes, so an operator added, a role changed or a token revoked counts
from the next request, without a restart.

Paper mode without `OPERATORS_FILE` has one demo operator (`demo_book`), with public demo credentials.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import string
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from service.errors import TickguardError

__all__ = ["ROLES", "TOKEN_PREFIX", "Operator", "OperatorBook", "OperatorsFileError", "demo_book", "valid_name"]

Role = Literal["trader", "viewer"]
ROLES: tuple[Role, ...] = ("trader", "viewer")
TOKEN_PREFIX = "tgo_"
IST = ZoneInfo("Asia/Kolkata")
_HASHER = PasswordHasher()
# A wrong name costs what a wrong password costs: verified against this, so timing tells no names apart.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
_ID_ALPHABET = string.ascii_letters + string.digits


class OperatorsFileError(TickguardError):
    """OPERATORS_FILE cannot be read or is not an operators file."""


@dataclass(frozen=True)
class Operator:
    name: str
    role: Role

    @property
    def may_act(self) -> bool:
        """A trader may close, halt and flatten; a viewer watches."""
        return self.role == "trader"


def valid_name(name: str) -> bool:
    return 0 < len(name) <= 64 and all(c.isalnum() or c in "._-@" for c in name)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class OperatorBook:
    """The operators of `path` (re-read when the file changes), or a fixed in-memory book."""

    def __init__(self, path: str | Path | None = None, *, content: dict[str, Any] | None = None) -> None:
        self.path = Path(path) if path else None
        self._content = content if content is not None else {"operators": {}, "tokens": {}}
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()
        if self.path is not None:
            self._reload(force=True)

    # Reading -------------------------------------------------------------------------------------
    def _reload(self, force: bool = False) -> None:
        if self.path is None:
            return
        try:
            status = self.path.stat()
        except OSError as exc:
            if force:
                raise OperatorsFileError(f"OPERATORS_FILE {self.path}: {exc.strerror or exc}") from None
            return  # gone for a moment (an editor's rename): keep what was read last
        stamp = (status.st_mtime_ns, status.st_size)
        if stamp == self._stamp and not force:
            return
        with self._lock:
            self._content = _read(self.path)
            self._stamp = stamp

    @property
    def content(self) -> dict[str, Any]:
        self._reload()
        return self._content

    def operator(self, name: str) -> Operator | None:
        entry = self.content["operators"].get(name)
        return Operator(name, entry["role"]) if entry else None

    def operators(self) -> list[Operator]:
        return [Operator(name, entry["role"]) for name, entry in sorted(self.content["operators"].items())]

    def check_password(self, name: str, password: str) -> Operator | None:
        """The operator when `password` is theirs; None otherwise (after the same work either way)."""
        entry = self.content["operators"].get(name)
        try:
            _HASHER.verify(entry["password"] if entry else _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return Operator(name, entry["role"]) if entry else None

    def check_token(self, token: str) -> Operator | None:
        """The operator an API token belongs to; None for an unknown, revoked or malformed token."""
        if not token.startswith(TOKEN_PREFIX) or "." not in token:
            return None
        token_id, _, secret = token[len(TOKEN_PREFIX):].partition(".")
        content = self.content
        entry = content["tokens"].get(token_id)
        if entry is None or not hmac.compare_digest(_sha256(secret), entry["sha256"]):
            return None
        return self.operator(entry["operator"])

    def tokens(self) -> list[dict[str, Any]]:
        return [{"id": token_id, **{k: v for k, v in entry.items() if k != "sha256"}}
                for token_id, entry in sorted(self.content["tokens"].items())]

    # Writing (the command line) ----------------------------------------------------------------------
    def set_operator(self, name: str, role: Role, password: str) -> None:
        if not valid_name(name):
            raise OperatorsFileError(f"operator name {name!r}: 1-64 letters, digits or . _ - @")
        if role not in ROLES:
            raise OperatorsFileError(f"role {role!r}: expected one of {', '.join(ROLES)}")
        content = self.content
        content["operators"][name] = {"role": role, "password": _HASHER.hash(password)}
        self._write(content)

    def remove_operator(self, name: str) -> int:
        """Remove an operator and their tokens; the number of tokens revoked with them."""
        content = self.content
        if content["operators"].pop(name, None) is None:
            raise OperatorsFileError(f"no operator {name!r}")
        revoked = [t for t, entry in content["tokens"].items() if entry["operator"] == name]
        for token_id in revoked:
            del content["tokens"][token_id]
        self._write(content)
        return len(revoked)

    def issue_token(self, name: str, label: str = "") -> str:
        """A new API token for `name`, shown once: only its hash is kept."""
        content = self.content
        if name not in content["operators"]:
            raise OperatorsFileError(f"no operator {name!r}: add one with `tickguard operator add {name}`")
        token_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))  # never "-…": a CLI argument
        secret = secrets.token_urlsafe(32)
        content["tokens"][token_id] = {"operator": name, "sha256": _sha256(secret), "label": label,
                                       "created": datetime.now(IST).isoformat(timespec="seconds")}
        self._write(content)
        return f"{TOKEN_PREFIX}{token_id}.{secret}"

    def revoke_token(self, token_id: str) -> str:
        """Revoke a token by its id (the part after `tgo_` and before the dot); the operator it was for."""
        content = self.content
        entry = content["tokens"].pop(token_id.removeprefix(TOKEN_PREFIX).partition(".")[0], None)
        if entry is None:
            raise OperatorsFileError(f"no token {token_id!r}")
        self._write(content)
        return entry["operator"]

    def _write(self, content: dict[str, Any]) -> None:
        """Atomically, readable by its owner only (it holds password hashes)."""
        if self.path is None:
            raise OperatorsFileError("this operator book has no file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".operators-", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w") as out:
                json.dump(content, out, indent=2, sort_keys=True)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._reload(force=True)


def _read(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text() or "{}")
    except OSError as exc:
        raise OperatorsFileError(f"OPERATORS_FILE {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise OperatorsFileError(f"OPERATORS_FILE {path}: not JSON ({exc})") from None
    if not isinstance(content, dict):
        raise OperatorsFileError(f"OPERATORS_FILE {path}: expected an object with `operators` and `tokens`")
    operators, tokens = content.setdefault("operators", {}), content.setdefault("tokens", {})
    if not isinstance(operators, dict) or not isinstance(tokens, dict):
        raise OperatorsFileError(f"OPERATORS_FILE {path}: `operators` and `tokens` must be objects")
    for name, entry in operators.items():
        if not isinstance(entry, dict) or entry.get("role") not in ROLES or not isinstance(entry.get("password"), str):
            raise OperatorsFileError(f"OPERATORS_FILE {path}: operator {name!r} needs a role "
                                     f"({' or '.join(ROLES)}) and a password hash")
    for token_id, entry in tokens.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or entry.get("operator") not in operators:
            raise OperatorsFileError(f"OPERATORS_FILE {path}: token {token_id!r} needs an existing operator and a sha256")
    return content


def demo_book(name: str, password: str, token: str) -> OperatorBook:
    """Paper mode without OPERATORS_FILE: one trader with public demo credentials and API token."""
    token_id, _, secret = token[len(TOKEN_PREFIX):].partition(".")
    return OperatorBook(content={
        "operators": {name: {"role": "trader", "password": _HASHER.hash(password)}},
        "tokens": {token_id: {"operator": name, "sha256": _sha256(secret), "label": "paper demo", "created": ""}},
    })
