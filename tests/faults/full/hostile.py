"""Hostile input at volume: the quick suite's strategies with thousands of examples against tickguard as
a real process. Invalid → 4xx and the store unchanged; valid → 202 and exactly one trade; never a 5xx.
Failures are counted, not raised, so one finding does not stop the run."""
from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.faults.full.procs import Paper, Tickguard
from tests.faults.full.tally import Tally
from tests.faults.test_hostile_input import alert_like, invalid_alerts, json_values, valid_alerts

CONTENT_TYPES = ["application/json", "text/plain", "application/octet-stream", "application/x-www-form-urlencoded",
                 "multipart/form-data", "application/json; charset=utf-16", ""]


def run(workdir: Path, tally: Tally, bodies: int = 10_000, seed: int = 11) -> None:
    paper = Paper(workdir).start()
    paper.price(800)  # the valid alerts are priced around SBIN's 800, inside the price check's 5 %
    paper.price(1400, token="2885")
    tg = Tickguard(workdir, paper.url).start()
    db = sqlite3.connect(f"file:{workdir / 'tickguard.db'}?mode=ro", uri=True)
    names = itertools.count()

    def counts() -> tuple[int, int]:
        return tuple(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("alerts", "trades"))

    def send(path: str, content: bytes, content_type: str = "application/json"):
        reply = tg.http.post(path, content=content, headers={"Content-Type": content_type})
        tally.add("hostile bodies")
        if reply.status_code >= 500:
            tally.bad("5xx seen", f"{path} {content[:200]!r} ({content_type}) -> {reply.status_code} {reply.text[:200]}")
        return reply

    def post(body) -> tuple:
        before = counts()
        return before, send("/opentrade", json.dumps(body, allow_nan=True).encode())

    def changed(before, reply, what) -> None:
        if counts() != before:
            tally.bad("alerts lost", f"{what}: {reply.status_code} {reply.text[:200]} changed the store")

    profile = settings(max_examples=1, deadline=None, database=None, derandomize=True,
                       suppress_health_check=list(HealthCheck))
    share = {"valid": bodies * 25 // 100, "invalid": bodies * 30 // 100, "json": bodies * 30 // 100}
    share["bytes"] = bodies - sum(share.values())

    @settings(profile, max_examples=share["valid"])
    @given(valid_alerts())
    def valid(body):
        body["strategyname"] = f"{body['strategyname']}-{next(names)}"  # the signal policy is not under test here
        (alerts, trades), reply = post(body)
        if reply.status_code != 202 or len(reply.json().get("trades", [])) != 1 or counts() != (alerts + 1, trades + 1):
            tally.bad("alerts lost", f"valid {body} -> {reply.status_code} {reply.text[:200]}, store {counts()} "
                                     f"was {(alerts, trades)}")
        else:
            tally.add("alerts acknowledged")

    @settings(profile, max_examples=share["invalid"])
    @given(invalid_alerts())
    def invalid(body):
        before, reply = post(body)
        if reply.status_code != 422:
            tally.bad("alerts lost", f"invalid {body} -> {reply.status_code} {reply.text[:200]}")
        changed(before, reply, f"invalid {body}")

    @settings(profile, max_examples=share["json"])
    @given(st.one_of(alert_like, json_values))
    def arbitrary(body):
        before, reply = post(body)
        if 400 <= reply.status_code < 500:
            changed(before, reply, f"arbitrary {body!r}")

    @settings(profile, max_examples=share["bytes"])
    @given(st.binary(max_size=300), st.sampled_from(CONTENT_TYPES), st.sampled_from(["/opentrade", "/chartink"]))
    def raw(content, content_type, path):
        before = counts()
        reply = send(path, content, content_type)
        if not 400 <= reply.status_code < 500:
            tally.bad("alerts lost", f"bytes {content[:100]!r} ({content_type}) to {path} -> {reply.status_code}")
        changed(before, reply, f"bytes {content[:100]!r}")

    try:
        for check in (valid, invalid, arbitrary, raw):
            check()
            print(f"hostile {check.__name__}: {tally.figures['hostile bodies']} bodies so far", flush=True)
    finally:
        db.close()
        tg.stop()
        paper.stop()
