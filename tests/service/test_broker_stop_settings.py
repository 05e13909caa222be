"""Who decides whether a trade gets a broker-side backup stop: BROKER_STOP (backup in live mode, off in
paper unless set), a strategy's `broker_stop`, an account's `brokerstop` — the account's word wins."""
from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import msgspec
import pytest

from service.accounts.lists import parse_accountslist
from service.alerts.plan import _broker_stop_word
from service.alerts.strategies import Strategy
from service.errors import SettingsError
from service.execution.backstop_levels import BackupConfig, Buffer, backup_for
from service.runtime import backup_config
from service.trades import TradeRecord, TradeSpec, TradeState
from tests.service.test_settings import LIVE, load


def test_backup_is_the_default_in_live_mode_and_off_in_paper(tmp_path):
    assert load({}, tmp_path).broker_stop == "off"
    assert load(LIVE, tmp_path).broker_stop == "backup"
    assert load({"BROKER_STOP": "backup"}, tmp_path).broker_stop == "backup"
    assert load({**LIVE, "BROKER_STOP": "off"}, tmp_path).broker_stop == "off"


def test_the_settings_become_executions_config(tmp_path):
    settings = load({"BROKER_STOP": "backup", "BROKER_STOP_BUFFER": "1.50", "BROKER_STOP_STEP": "0.5",
                     "BROKER_STOP_MIN_S": "2", "EXIT_PROTECTION_PCT": "0.8"}, tmp_path)
    assert backup_config(settings) == BackupConfig(mode="backup", buffer=Buffer(pct=None, paise=150),
                                                   step_pct=Decimal("0.5"), min_s=2.0, protection_pct=Decimal("0.8"))


@pytest.mark.parametrize("env, name", [({"BROKER_STOP": "always"}, "BROKER_STOP"),
                                       ({"BROKER_STOP_BUFFER": "25%"}, "BROKER_STOP_BUFFER"),
                                       ({"BROKER_STOP_BUFFER": "two ticks"}, "BROKER_STOP_BUFFER"),
                                       ({"BROKER_STOP_STEP": "0"}, "BROKER_STOP_STEP"),
                                       ({"BROKER_STOP_MIN_S": "-1"}, "BROKER_STOP_MIN_S")])
def test_bad_values_are_named(tmp_path, env, name):
    with pytest.raises(SettingsError) as raised:
        load(env, tmp_path)
    assert name in str(raised.value)


def test_an_account_says_brokerstop_false():
    accounts, errors = parse_accountslist({"accountslist": [
        {"accountId": "A", "fund": 1000, "brokerstop": False}, {"accountId": "B", "fund": 1000, "brokerstop": "true"},
        {"accountId": "C", "fund": 1000}, {"accountId": "D", "fund": 1000, "brokerstop": 1}]})
    assert [(a.account_id, a.broker_stop) for a in accounts] == [("A", False), ("B", True), ("C", None)]
    assert "brokerstop" in errors["row 3 (D)"]


def test_a_strategy_sets_its_buffer_and_word():
    strategy = msgspec.convert({"broker_stop": True, "broker_stop_buffer": "0.5%"}, Strategy)
    assert (strategy.broker_stop, strategy.broker_stop_buffer) == (True, "0.5%")
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"broker_stop_buffer": "half"}, Strategy)


def trade(**spec) -> TradeRecord:
    return TradeRecord(id=1, alert_id=None, account="A", strategy="s", exchange="NSE", token="3045",
                       tradingsymbol="SBIN-EQ", side="LONG", product="INTRADAY", state=TradeState.OPEN, filled=1,
                       stop=79_000, spec=TradeSpec(**spec))


@pytest.mark.parametrize("account, strategy, setting, gets", [
    (None, None, "backup", True), (None, None, "off", False),
    (None, True, "off", True), (None, False, "backup", False),
    (False, True, "backup", False), (True, False, "off", True),
])
def test_the_accounts_word_wins_then_the_strategys_then_the_setting(account, strategy, setting, gets):
    word = _broker_stop_word(SimpleNamespace(broker_stop=account),
                             None if strategy is None else Strategy(broker_stop=strategy, broker_stop_buffer="1"))
    buffer, why = backup_for(trade(**word), BackupConfig(mode=setting))
    assert (buffer is not None) == gets, why
    if gets and strategy is not None:
        assert buffer == Buffer(pct=None, paise=100)  # the strategy's buffer
