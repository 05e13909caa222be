"""The static-IP rule in the settings: each login's source address checked at start, PAPER_STATIC_IPS
read, and live start refused while two logins would place orders from one address."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.accounts.credentials import load_logins
from service.brokers import brokers_from_settings
from service.cli import main, paper_config
from service.errors import CredentialsError, SettingsError
from service.settings import load_settings
from tests.service.test_settings import LIVE

ENTRY = {"clientcode": "C2", "password": "1111", "api_key": "k2", "totp_secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}


def credentials(tmp_path: Path, **fields) -> str:
    path = tmp_path / "creds.json"
    path.write_text(json.dumps([{**ENTRY, **fields}]))
    path.chmod(0o600)
    return str(path)


def load(env: dict[str, str], tmp_path: Path):
    return load_settings({"TICKGUARD_DB": str(tmp_path / "tg.db"), **env}, env_file=str(tmp_path / "absent.env"))


def test_each_login_carries_its_source_address_to_its_broker(tmp_path):
    settings = load({"CREDENTIALS_FILE": credentials(tmp_path, source_address=" 127.0.0.3"),
                     "SMARTAPI_SOURCE_ADDRESS": "127.0.0.2"}, tmp_path)
    assert [(login.clientcode, login.source_address) for login in load_logins(settings)] == [
        ("P0001", "127.0.0.2"), ("C2", "127.0.0.3")]
    default, others = brokers_from_settings(settings)
    assert default.config.source_address == "127.0.0.2" and others["C2"].config.source_address == "127.0.0.3"


@pytest.mark.parametrize("address, reason", [
    ("10.0.0.300", "expected an IP address of this host, got '10.0.0.300'"),
    ("192.0.2.1", "192.0.2.1 is not an address of this host"),  # TEST-NET-1: never a local address
    (5, "expected a string"),
])
def test_a_source_address_this_host_cannot_bind_is_refused_by_name(tmp_path, address, reason):
    settings = load({"CREDENTIALS_FILE": credentials(tmp_path, source_address=address)}, tmp_path)
    with pytest.raises(CredentialsError, match=r"entry 0 .*source_address: ") as caught:
        load_logins(settings)
    assert reason in str(caught.value)
    with pytest.raises(SettingsError) as caught:
        load({"SMARTAPI_SOURCE_ADDRESS": "192.0.2.1"}, tmp_path)
    assert caught.value.problems[0][0] == "SMARTAPI_SOURCE_ADDRESS"


@pytest.mark.parametrize("raw, reason", [
    ("[1]", "expected a JSON object"),
    ('{"A1": "nowhere"}', "client A1: expected an IP address"),
    ('{"A1": "127.0.0.2", "B2": "127.0.0.2"}', "127.0.0.2 is registered for both A1 and B2: one IP serves one client"),
])
def test_paper_static_ips_must_give_each_client_its_own_address(tmp_path, raw, reason):
    with pytest.raises(SettingsError) as caught:
        load({"PAPER_STATIC_IPS": raw}, tmp_path)
    ((name, said),) = caught.value.problems
    assert name == "PAPER_STATIC_IPS" and said.startswith(reason)


def test_the_embedded_paper_exchange_gets_the_registrations(tmp_path):
    settings = load({"PAPER_STATIC_IPS": '{"p0001": "127.0.0.2", "C2": "::1"}'}, tmp_path)
    assert paper_config(settings).static_ips == {"P0001": "127.0.0.2", "C2": "::1"}
    assert paper_config(load({}, tmp_path)).static_ips == {}


def test_live_refuses_two_logins_on_the_default_route(tmp_path):
    settings = load({**LIVE, "CREDENTIALS_FILE": credentials(tmp_path)}, tmp_path)
    with pytest.raises(SettingsError) as caught:
        brokers_from_settings(settings)
    ((name, reason),) = caught.value.problems
    assert name == "STATIC_IP_CHECK"
    assert reason.startswith("logins A123, C2 would all place orders from the default route")


def test_live_refuses_two_logins_on_one_address_and_starts_with_one_each(tmp_path):
    shared = load({**LIVE, "SMARTAPI_SOURCE_ADDRESS": "127.0.0.2",
                   "CREDENTIALS_FILE": credentials(tmp_path, source_address="127.0.0.2")}, tmp_path)
    with pytest.raises(SettingsError, match="logins A123, C2 would all place orders from 127.0.0.2"):
        brokers_from_settings(shared)
    own = load({**LIVE, "SMARTAPI_SOURCE_ADDRESS": "127.0.0.2",
                "CREDENTIALS_FILE": credentials(tmp_path, source_address="127.0.0.3")}, tmp_path)
    default, others = brokers_from_settings(own)
    assert (default.config.source_address, others["C2"].config.source_address) == ("127.0.0.2", "127.0.0.3")


def test_static_ip_check_off_lets_live_start_and_paper_never_checks(tmp_path):
    path = credentials(tmp_path)
    default, others = brokers_from_settings(load({**LIVE, "CREDENTIALS_FILE": path, "STATIC_IP_CHECK": "off"}, tmp_path))
    assert list(others) == ["C2"]
    assert list(brokers_from_settings(load({"CREDENTIALS_FILE": path}, tmp_path))[1]) == ["C2"]
    with pytest.raises(SettingsError, match="STATIC_IP_CHECK"):
        load({"STATIC_IP_CHECK": "maybe"}, tmp_path)


def test_tickguard_serve_says_why_and_exits_non_zero(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name, value in {**LIVE, "TICKGUARD_ENV_FILE": str(tmp_path / "absent.env"), "TICKGUARD_DB": str(tmp_path / "tg.db"),
                        "CREDENTIALS_FILE": credentials(tmp_path), "EVENT_LOOP": "asyncio"}.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert "STATIC_IP_CHECK: logins A123, C2 would all place orders from the default route" in error
    assert "set STATIC_IP_CHECK=off" in error
