from __future__ import annotations

import json
from pathlib import Path

from service.brokers import brokers_from_settings
from service.settings import load_settings

OTHER_LOGIN = {"clientcode": "p0002", "password": "4321", "api_key": "paper-other-key",
               "totp_secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}


def test_one_broker_per_login_keyed_by_client_code_the_default_apart(tmp_path: Path):
    credentials = tmp_path / "logins.json"
    credentials.write_text(json.dumps([OTHER_LOGIN]))
    credentials.chmod(0o600)
    settings = load_settings({"CREDENTIALS_FILE": str(credentials), "PAPER_PORT": "8711"},
                             env_file=str(tmp_path / "absent.env"))
    default, others = brokers_from_settings(settings)
    assert default.config.clientcode == settings.smartapi_user == "P0001"
    assert list(others) == ["P0002"]
    other = others["P0002"].config
    assert (other.clientcode, other.pin, other.api_key) == ("p0002", "4321", "paper-other-key")
    assert other.root == default.config.root == "http://127.0.0.1:8711"
    assert other.stream_url == default.config.stream_url


def test_without_a_credentials_file_there_is_the_default_broker_only(tmp_path: Path):
    settings = load_settings({}, env_file=str(tmp_path / "absent.env"))
    default, others = brokers_from_settings(settings)
    assert default.config.clientcode == "P0001" and others == {}
