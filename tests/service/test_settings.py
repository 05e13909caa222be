from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.errors import SettingsError
from service.settings import DEMO_CREDENTIALS, SECRET_FIELDS, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
LIVE = {
    "TICKGUARD_MODE": "live",
    "SMARTAPI_USER": "A123",
    "SMARTAPI_PASS": "9876",
    "SMARTAPI_KEY": "live-key-xyz",
    "TOTP_SECRET": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    "WEBHOOK_SECRET": "a-live-webhook-secret",
    "OPERATORS_FILE": "operators.json",
}


def load(env: dict[str, str], tmp_path: Path) -> Settings:
    return load_settings(env, env_file=str(tmp_path / "absent.env"))


def test_paper_is_the_default_mode_with_the_demo_login(tmp_path):
    settings = load({}, tmp_path)
    assert settings.tickguard_mode == "paper" and not settings.live
    assert settings.smartapi_user == DEMO_CREDENTIALS["smartapi_user"]
    assert settings.rest_root == "http://127.0.0.1:8700"
    assert settings.stream_url == "ws://127.0.0.1:8700/smart-stream"
    assert settings.order_update_url == "ws://127.0.0.1:8700/smart-order-update"


def test_live_needs_every_broker_setting(tmp_path):
    with pytest.raises(SettingsError) as caught:
        load({"TICKGUARD_MODE": "live"}, tmp_path)
    assert sorted(name for name, _ in caught.value.problems) == [
        "OPERATORS_FILE", "SMARTAPI_KEY", "SMARTAPI_PASS", "SMARTAPI_USER", "TOTP_SECRET", "WEBHOOK_SECRET",
    ]


def test_live_points_at_angel_one_unless_overridden(tmp_path):
    settings = load(LIVE, tmp_path)
    assert settings.rest_root == "https://apiconnect.angelone.in"
    assert settings.stream_url == "wss://smartapisocket.angelone.in/smart-stream"
    local = load({**LIVE, "SMARTAPI_ROOT": "http://127.0.0.1:9"}, tmp_path)
    assert local.rest_root == "http://127.0.0.1:9"


def test_paper_url_moves_every_endpoint(tmp_path):
    settings = load({"PAPER_URL": "http://127.0.0.1:9999/"}, tmp_path)
    assert settings.rest_root == "http://127.0.0.1:9999"
    assert settings.stream_url == "ws://127.0.0.1:9999/smart-stream"


def test_all_problems_are_reported_together(tmp_path):
    with pytest.raises(SettingsError) as caught:
        load({"PAPER_PORT": "eighty", "PAPER_RATE_LIMITS": "maybe", "TICKGUARD_MODE": "demo"}, tmp_path)
    names = {name for name, _ in caught.value.problems}
    assert names == {"PAPER_PORT", "PAPER_RATE_LIMITS", "TICKGUARD_MODE"}
    assert "eighty" in str(caught.value)


def test_out_of_range_port_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="PAPER_PORT"):
        load({"PAPER_PORT": "70000"}, tmp_path)


@pytest.mark.parametrize("raw, expected", [("1", True), ("true", True), ("ON", True), ("0", False), ("no", False)])
def test_booleans(tmp_path, raw, expected):
    assert load({"PAPER_RATE_LIMITS": raw}, tmp_path).paper_rate_limits is expected


def test_partial_broker_settings_in_paper_mode_are_refused(tmp_path):
    with pytest.raises(SettingsError, match="SMARTAPI_PASS"):
        load({"SMARTAPI_USER": "X1"}, tmp_path)


def test_secrets_never_appear_in_repr_or_errors(tmp_path):
    settings = load(LIVE, tmp_path)
    text = repr(settings) + str(settings)
    for name in SECRET_FIELDS:
        if getattr(settings, name):
            assert getattr(settings, name) not in text
    with pytest.raises(SettingsError) as caught:
        load({**LIVE, "TOTP_SECRET": "not base32 at all!"}, tmp_path)
    assert "not base32 at all!" not in str(caught.value)
    assert "TOTP_SECRET" in str(caught.value)


def test_dotenv_file_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("PAPER_PORT=8123\nPAPER_SEED=42\n")
    settings = load_settings({"PAPER_SEED": "5"}, env_file=str(env_file))
    assert settings.paper_port == 8123
    assert settings.paper_seed == 5


def test_env_example_documents_every_setting():
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.M))
    assert {name.upper() for name in Settings.__struct_fields__} <= documented


def test_env_example_loads_as_valid_settings(tmp_path):
    settings = load_settings({}, env_file=str(ROOT / ".env.example"))
    assert settings.tickguard_mode == "paper"


def test_adapter_config_follows_the_settings(tmp_path):
    from service.brokers import config_from_settings

    settings = load({"STREAM_STALL_S": "0.5", "ENTRY_TTL_S": "2", "PAPER_PORT": "8711", "STREAM_SOCKETS": "2"}, tmp_path)
    config = config_from_settings(settings)
    assert config.root == "http://127.0.0.1:8711" and config.stream_url.endswith(":8711/smart-stream")
    assert (config.stream_stall_s, config.entry_ttl_s, config.clientcode) == (0.5, 2.0, "P0001")
    assert config.stream_sockets == 2 and load({}, tmp_path).stream_sockets == 3
    assert settings.smartapi_pass not in repr(config)


@pytest.mark.parametrize("raw", ["0", "4", "two"])
def test_stream_sockets_are_one_to_three(tmp_path, raw):
    with pytest.raises(SettingsError, match="STREAM_SOCKETS"):
        load({"STREAM_SOCKETS": raw}, tmp_path)


def test_paper_defaults_to_the_demo_webhook_secret_and_round_the_clock_hours(tmp_path):
    settings = load({}, tmp_path)
    assert settings.webhook_secret == "paper-webhook-secret" and settings.market_hours == "always"
    live = load(LIVE, tmp_path)
    assert live.market_hours == "exchange"
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET"):
        load({**LIVE, "WEBHOOK_SECRET": "short"}, tmp_path)


def test_recording_is_off_by_default_and_its_folder_sits_beside_the_sqlite_file(tmp_path):
    settings = load({"TICKGUARD_DB": str(tmp_path / "state" / "tg.db")}, tmp_path)
    assert (settings.record_ticks, settings.record_queue) == (False, 100_000)
    assert settings.record_dir == str(tmp_path / "state" / "recordings")
    assert load({"DATABASE_URL": "postgresql://tg@127.0.0.1/tg"}, tmp_path).record_dir == "recordings"
    chosen = load({"RECORD_TICKS": "true", "RECORD_DIR": str(tmp_path / "ticks"), "RECORD_QUEUE": "5000"}, tmp_path)
    assert (chosen.record_ticks, chosen.record_dir, chosen.record_queue) == (True, str(tmp_path / "ticks"), 5_000)


def test_recording_settings_are_checked_together(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(SettingsError) as caught:
        load({"RECORD_TICKS": "maybe", "RECORD_DIR": str(tmp_path / "a-file"), "RECORD_QUEUE": "10"}, tmp_path)
    assert sorted(name for name, _ in caught.value.problems) == ["RECORD_DIR", "RECORD_QUEUE", "RECORD_TICKS"]
    assert dict(caught.value.problems)["RECORD_DIR"] == f"{tmp_path / 'a-file'} is not a folder"
