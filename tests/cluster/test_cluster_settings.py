"""What the cluster's roles refuse at start, by name: no PostgreSQL, a shard that is not i/n or disagrees
with GUARD_SHARDS, a login the executor has no credentials for, and daily loss limits (a strategy's at
start, an account's at its entry), which a cluster does not enforce yet."""
from __future__ import annotations

import json

import pytest

from service.accounts.model import Account
from service.cluster.executor import ExecutorRole
from service.cluster.guardian import ShardGuard, parse_shard
from service.cluster.intake import IntakeRole
from service.errors import SettingsError
from service.settings import load_settings

PG = "postgresql://127.0.0.1:5432/test"


def settings(tmp_path, **env):
    return load_settings({"DATABASE_URL": PG, "SYMBOLS_DIR": str(tmp_path / "symbols"), **env},
                         env_file=str(tmp_path / "absent.env"))


def fields(error: SettingsError) -> list[str]:
    return [field for field, _reason in error.problems]


@pytest.mark.parametrize("role", [IntakeRole, lambda s: ExecutorRole(s, "P0001"), lambda s: ShardGuard(s, 0, 1)])
def test_every_role_needs_the_shared_postgresql_store(tmp_path, role):
    with pytest.raises(SettingsError) as raised:
        role(settings(tmp_path, DATABASE_URL=""))
    assert fields(raised.value) == ["DATABASE_URL"]


@pytest.mark.parametrize("text", ["2", "0/0", "2/2", "-1/2", "a/b", "1/65", "0/1/2"])
def test_a_shard_is_i_of_n(text):
    with pytest.raises(SettingsError) as raised:
        parse_shard(text)
    assert fields(raised.value) == ["--shard"]


def test_every_role_must_agree_on_the_shard_count(tmp_path):
    assert parse_shard("1/2") == (1, 2)
    with pytest.raises(SettingsError, match="GUARD_SHARDS is 1"):
        ShardGuard(settings(tmp_path), 1, 2)


def test_an_executor_runs_only_for_a_login_it_has(tmp_path):
    with pytest.raises(SettingsError, match="P0009 is neither SMARTAPI_USER nor in CREDENTIALS_FILE"):
        ExecutorRole(settings(tmp_path), "P0009")
    assert ExecutorRole(settings(tmp_path), "p0001").login == "P0001"


def test_daily_loss_limits_are_refused_not_ignored(tmp_path):
    strategies = tmp_path / "strategies.json"
    strategies.write_text(json.dumps({"s1": {"max_daily_loss": 5000}, "s2": {}}))
    with pytest.raises(SettingsError) as raised:
        IntakeRole(settings(tmp_path, STRATEGIES_FILE=str(strategies)))
    assert fields(raised.value) == ["STRATEGIES_FILE"] and "s1 set max_daily_loss" in str(raised.value)
    intake = IntakeRole(settings(tmp_path)).intake
    limited = Account(account_id="A", name="A", fund=1_000_000, max_daily_loss=500_000)
    assert "daily loss limit" in intake.entry_refusal(limited, "s1")
    assert intake.entry_refusal(Account(account_id="B", name="B", fund=1_000_000), "s1") == ""
