"""MARKET_DATA: a login of its own, for paper mode only, and nothing that could send a paper order
anywhere but to a paper exchange."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from service.broker import MarketData
from service.brokers import brokers_from_settings, config_from_settings, market_data_config, market_data_from_settings
from service.errors import SettingsError
from service.settings import LIVE_ROOT, LIVE_STREAM_URL, SECRET_FIELDS, Settings, load_settings
from service.symbols.master import LIVE_MASTER_URL, MASTER_PATH, master_url

LIVE_DATA = {
    "MARKET_DATA": "live",
    "MARKET_DATA_USER": "M777",
    "MARKET_DATA_PASS": "2468",
    "MARKET_DATA_KEY": "market-data-key",
    "MARKET_DATA_TOTP_SECRET": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ",
}
ORDER_LOGIN = {"SMARTAPI_USER": "A123", "SMARTAPI_PASS": "9876", "SMARTAPI_KEY": "order-key",
               "TOTP_SECRET": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}


def load(env: dict[str, str], tmp_path: Path) -> Settings:
    return load_settings(env, env_file=str(tmp_path / "absent.env"))


def problems(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    with pytest.raises(SettingsError) as caught:
        load(env, tmp_path)
    return dict(caught.value.problems)


def test_paper_market_data_is_the_default_and_live_market_data_defaults_to_angel_ones_endpoints(tmp_path):
    assert load({}, tmp_path).market_data == "paper"
    settings = load(LIVE_DATA, tmp_path)
    assert settings.market_data == "live" and settings.tickguard_mode == "paper"
    assert (settings.market_data_rest_root, settings.market_data_stream) == (LIVE_ROOT, LIVE_STREAM_URL)
    assert settings.rest_root == "http://127.0.0.1:8700"  # orders: the paper exchange, as ever
    assert master_url(settings) == LIVE_MASTER_URL  # tokens as the live feed keys its ticks


def test_another_root_has_its_stream_beside_it_unless_named(tmp_path):
    settings = load({**LIVE_DATA, "MARKET_DATA_ROOT": "http://127.0.0.1:9100/"}, tmp_path)
    assert settings.market_data_stream == "ws://127.0.0.1:9100/smart-stream"
    assert master_url(settings) == "http://127.0.0.1:9100" + MASTER_PATH
    named = load({**LIVE_DATA, "MARKET_DATA_ROOT": "https://md.example", "MARKET_DATA_STREAM_URL": "wss://md.example/s"},
                 tmp_path)
    assert named.market_data_stream == "wss://md.example/s"


def test_live_market_data_is_refused_in_live_mode(tmp_path):
    live = {"TICKGUARD_MODE": "live", **ORDER_LOGIN, "WEBHOOK_SECRET": "a-live-webhook-secret",
            "OPERATORS_FILE": "operators.json"}
    found = problems({**live, **LIVE_DATA}, tmp_path)
    assert list(found) == ["MARKET_DATA"] and "paper mode" in found["MARKET_DATA"]


def test_every_missing_credential_is_named_and_never_taken_from_the_order_login(tmp_path):
    found = problems({"MARKET_DATA": "live", **ORDER_LOGIN}, tmp_path)
    assert sorted(found) == ["MARKET_DATA_KEY", "MARKET_DATA_PASS", "MARKET_DATA_TOTP_SECRET", "MARKET_DATA_USER"]
    assert all("never taken from the order login" in reason for reason in found.values())
    found = problems({**LIVE_DATA, "MARKET_DATA_PASS": ""}, tmp_path)
    assert list(found) == ["MARKET_DATA_PASS"]


def test_market_data_settings_without_live_market_data_are_refused(tmp_path):
    found = problems({"MARKET_DATA_USER": "M777", "MARKET_DATA_ROOT": "https://md.example"}, tmp_path)
    assert found == {"MARKET_DATA_USER": "only read with MARKET_DATA=live",
                     "MARKET_DATA_ROOT": "only read with MARKET_DATA=live"}
    assert load({"MARKET_DATA_USER": "", "MARKET_DATA": "paper"}, tmp_path).market_data == "paper"  # empty is unset


@pytest.mark.parametrize("name, value", [("SMARTAPI_ROOT", LIVE_ROOT), ("SMARTAPI_STREAM_URL", LIVE_STREAM_URL),
                                         ("SMARTAPI_ORDER_UPDATE_URL", "wss://tns.angelone.in/smart-order-update")])
def test_the_order_logins_endpoints_must_stay_the_paper_exchanges(tmp_path, name, value):
    found = problems({**LIVE_DATA, name: value}, tmp_path)
    assert list(found) == [name] and "orders go to the paper exchange" in found[name]


@pytest.mark.parametrize("paper_url, root", [
    ("https://apiconnect.angelone.in", ""),
    ("https://smartapi.angelbroking.com/", ""),
    ("http://127.0.0.1:9100", "http://127.0.0.1:9100/"),
])
def test_a_paper_url_that_is_the_market_data_broker_is_refused(tmp_path, paper_url, root):
    env = {**LIVE_DATA, "PAPER_URL": paper_url, **({"MARKET_DATA_ROOT": root} if root else {})}
    found = problems(env, tmp_path)
    assert list(found) == ["PAPER_URL"] and "not a paper exchange" in found["PAPER_URL"]


def test_a_paper_exchange_on_another_port_of_the_same_host_is_one(tmp_path):
    settings = load({**LIVE_DATA, "PAPER_URL": "http://127.0.0.1:9101", "MARKET_DATA_ROOT": "http://127.0.0.1:9100"},
                    tmp_path)
    assert settings.rest_root == "http://127.0.0.1:9101"


def test_bad_secret_and_urls_are_named_and_the_secrets_never_shown(tmp_path):
    found = problems({**LIVE_DATA, "MARKET_DATA_TOTP_SECRET": "not base32 at all!", "MARKET_DATA_ROOT": "md.example",
                      "MARKET_DATA_STREAM_URL": "https://md.example/s"}, tmp_path)
    assert sorted(found) == ["MARKET_DATA_ROOT", "MARKET_DATA_STREAM_URL", "MARKET_DATA_TOTP_SECRET"]
    assert "not base32 at all!" not in str(found)
    settings = load(LIVE_DATA, tmp_path)
    assert {"market_data_pass", "market_data_key", "market_data_totp_secret"} <= SECRET_FIELDS
    for name in ("MARKET_DATA_PASS", "MARKET_DATA_KEY", "MARKET_DATA_TOTP_SECRET"):
        assert LIVE_DATA[name] not in repr(settings)


def test_the_market_data_login_is_built_from_its_own_settings_alone(tmp_path):
    settings = load({**LIVE_DATA, **ORDER_LOGIN, "MARKET_DATA_ROOT": "http://127.0.0.1:9100"}, tmp_path)
    data, orders = market_data_config(settings), config_from_settings(settings)
    assert (data.clientcode, data.pin, data.api_key, data.totp_secret) == ("M777", "2468", "market-data-key",
                                                                           LIVE_DATA["MARKET_DATA_TOTP_SECRET"])
    assert (orders.clientcode, orders.api_key) == ("A123", "order-key")
    assert data.root == "http://127.0.0.1:9100" and orders.root == "http://127.0.0.1:8700"
    assert data.market_data_only and not orders.market_data_only
    assert data.order_update_url == "" and data.source_address == ""
    assert "2468" not in repr(data) and "market_data_only=True" in repr(data)


def test_market_data_is_a_login_of_its_own_only_with_live_market_data(tmp_path):
    for env, owned in (({}, False), (LIVE_DATA, True)):
        settings = load(env, tmp_path)
        default, _ = brokers_from_settings(settings)
        market = market_data_from_settings(settings, default)
        assert isinstance(market, MarketData) and market.owned is owned
        assert (market.tick_stream() is default.tick_stream()) is not owned


def test_a_cluster_role_refuses_live_market_data(tmp_path):
    from service.cluster import cli

    args = argparse.Namespace(command="guard", shard="0/1")
    with pytest.raises(SettingsError, match="MARKET_DATA"):
        cli.run(args, load(LIVE_DATA, tmp_path), lambda coroutine, loop: pytest.fail("nothing may run"))
