from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.accounts.credentials import load_logins
from service.errors import CredentialsError
from service.settings import load_settings

ENTRY = {"clientcode": "C2", "password": "1111", "api_key": "k2", "totp_secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}


def settings_with(path: Path):
    return load_settings({"CREDENTIALS_FILE": str(path)}, env_file=str(path.parent / "absent.env"))


def write(path: Path, entries, mode: int = 0o600) -> Path:
    path.write_text(json.dumps(entries))
    path.chmod(mode)
    return path


def test_default_login_comes_first_then_the_file(tmp_path):
    logins = load_logins(settings_with(write(tmp_path / "creds.json", [ENTRY])))
    assert [login.clientcode for login in logins] == ["P0001", "C2"]
    assert "1111" not in repr(logins)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_file_others_can_read_is_refused(tmp_path, mode):
    path = write(tmp_path / "creds.json", [ENTRY], mode)
    with pytest.raises(CredentialsError, match="too open"):
        load_logins(settings_with(path))


@pytest.mark.parametrize("entries, reason", [
    ({"clientcode": "C2"}, "JSON list"),
    ([{**ENTRY, "password": ""}], "lacks password"),
    ([{**ENTRY, "pin": "1"}], "unknown fields pin"),
    ([ENTRY, ENTRY], "appears twice"),
])
def test_malformed_files_say_what_is_wrong(tmp_path, entries, reason):
    with pytest.raises(CredentialsError, match=reason):
        load_logins(settings_with(write(tmp_path / "creds.json", entries)))


def test_missing_file(tmp_path):
    with pytest.raises(CredentialsError, match="not found"):
        load_logins(settings_with(tmp_path / "nope.json"))
