"""What crosses the bus between the roles: order commands to a login's executor, trade versions out.

Commands (stream `<CLUSTER>_CMD`, a work queue, subject `<cluster>.cmd.<LOGIN>`):

    Enter    an accepted alert's entry for one trade        intake  -> executor   (from the outbox)
    Close    close a trade (an alert's signal, an operator)  intake  -> executor   (from the outbox)
    Reduce   exit a part of a trade                          intake  -> executor   (from the outbox)
    Exit     the stop engine fired                            guard   -> executor   (with its lease token)

Each carries a deterministic message id (`msg_id`): JetStream drops a second publication of the same
id within the stream's duplicate window, so a command re-published after a crash is not sent twice;
the executor's handling is idempotent beyond that window too (it acts only on the state it finds).

Trade versions (stream `<CLUSTER>_EVT`, subject `<cluster>.evt.trade.<shard>.<id>`): every stored
version of a trade, published by the process that stored it — guards follow their shard's, intakes
all of them (the browser feed), executors their login's. A version number orders them: a consumer
keeps the newest it has seen and ignores older ones, so replays and races are harmless.
"""
from __future__ import annotations

import logging
import zlib

import msgspec

from service.trades import TradeRecord
from streams import ExitIntent

__all__ = ["Close", "Command", "Enter", "Exit", "Reduce", "decode_command", "encode", "login_part", "read_trade", "trade_login",
           "shard_of", "trade_shard"]


class Enter(msgspec.Struct, frozen=True, tag="enter"):
    trade: int
    fund: int  # the account's fund per trade, paise
    quantity: int | None  # asked for by the alert (units), else sized from the fund
    accepted_ms: int  # when the alert was committed: an entry older than ENTRY_TTL_S expires instead

    def msg_id(self) -> str:
        return f"enter-{self.trade}"


class Close(msgspec.Struct, frozen=True, tag="close"):
    trade: int
    reason: str  # SIGNAL | MANUAL
    cause: str  # what asked for it: "alert-<id>" or "operator-<ms>", part of the message id

    def msg_id(self) -> str:
        return f"close-{self.trade}-{self.cause}"


class Reduce(msgspec.Struct, frozen=True, tag="reduce"):
    trade: int
    units: int
    reason: str
    cause: str

    def msg_id(self) -> str:
        return f"reduce-{self.trade}-{self.cause}"


class Exit(msgspec.Struct, frozen=True, tag="exit"):
    intent: ExitIntent
    lease: str  # the guard shard's lease that fired it
    token: int  # its fencing token: an executor refuses a token older than the newest it knows
    fired: int  # the guard leader's count of intents for this trade (a re-armed trade may fire again)

    def msg_id(self) -> str:
        return f"exit-{self.intent.trade_id}-{self.token}-{self.fired}"


Command = Enter | Close | Reduce | Exit

log = logging.getLogger("tickguard.cluster")
_encoder = msgspec.json.Encoder()
_commands = msgspec.json.Decoder(Command)
_trades = msgspec.json.Decoder(TradeRecord)


def encode(value: object) -> bytes:
    return _encoder.encode(value)


def decode_command(data: bytes) -> Command:
    """A command off the bus; a malformed one raises `msgspec.ValidationError` / `DecodeError`."""
    return _commands.decode(data)


def decode_trade(data: bytes) -> TradeRecord:
    return _trades.decode(data)


def read_trade(subject: str, data: bytes) -> TradeRecord | None:
    """A trade version off the bus; None (logged) when it does not decode."""
    try:
        return _trades.decode(data)
    except msgspec.MsgspecError:
        log.error("undecodable trade version on the bus", extra={"subject": subject})
        return None


def login_part(login: str) -> str:
    """A client code as a subject part (client codes are letters and digits)."""
    return login.upper()


def trade_login(trade: TradeRecord, default_login: str) -> str:
    """The login whose executor a trade's commands go to: its account's own, or the default one."""
    return login_part(trade.spec.login) if trade.spec.login else default_login


def shard_of(exchange: str, token: str, shards: int) -> int:
    """The guard shard that watches an instrument: stable across processes and releases (CRC-32)."""
    return zlib.crc32(f"{exchange}:{token}".encode()) % shards


def trade_shard(trade: TradeRecord, shards: int) -> int:
    """The shard of a trade: its basis instrument's (an option guarded on its underlying goes with it)."""
    basis = trade.spec.basis
    return shard_of(basis.exchange, basis.token, shards) if basis else shard_of(trade.exchange, trade.token, shards)
