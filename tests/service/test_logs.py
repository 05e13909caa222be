from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import uvicorn
from hypothesis import assume, given
from hypothesis import strategies as st

import service.logs
from service.logs import (
    MASK,
    UVICORN_LOG_CONFIG,
    UVICORN_LOGGERS,
    JsonFormatter,
    Redactor,
    configure_logging,
)

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
JWT = "eyJhbGciOiJIUzUxMiJ9.eyJ1c2VybmFtZSI6IkExMjM0NTYifQ.c2lnbmF0dXJlLXBhcnQ_-x"


@contextmanager
def logging_restored() -> Iterator[None]:
    """The root and uvicorn loggers put back as they were, whatever a test configured meanwhile."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    uvicorn_saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate)
                     for name in UVICORN_LOGGERS}
    try:
        yield
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        for name, (handlers, propagate) in uvicorn_saved.items():
            logging.getLogger(name).handlers[:] = handlers
            logging.getLogger(name).propagate = propagate


@contextmanager
def json_logs(level: str = "INFO", secrets: tuple[str, ...] = ()) -> Iterator[tuple[io.StringIO, Redactor]]:
    """configure_logging into a StringIO; the root and uvicorn loggers are put back afterwards."""
    stream = io.StringIO()
    with logging_restored():
        yield stream, configure_logging(level, secrets=secrets, stream=stream)


def lines(stream: io.StringIO) -> list[dict]:
    out = [json.loads(line) for line in stream.getvalue().splitlines()]  # U+2028 and kin split too
    for line in out:
        assert TS.match(line["ts"]) and line["level"] and line["logger"] and "msg" in line
    return out


def strings(value) -> Iterator[str]:
    """Every string in a decoded JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_each_record_is_one_json_line_with_fields_extras_and_exception():
    with json_logs() as (stream, _):
        log = logging.getLogger("tickguard.test")
        log.info("exit sent for %s", "SBIN-EQ", extra={"trade_id": 7, "tag": "tg7X1", "legs": [1, 2]})
        try:
            raise RuntimeError("broker said no")
        except RuntimeError:
            log.exception("exit failed", extra={"trade_id": 7})
    sent, failed = lines(stream)
    assert sent == {"ts": sent["ts"], "level": "INFO", "logger": "tickguard.test", "msg": "exit sent for SBIN-EQ",
                    "trade_id": 7, "tag": "tg7X1", "legs": [1, 2]}
    assert failed["level"] == "ERROR" and failed["trade_id"] == 7
    assert failed["exc"].startswith("Traceback") and failed["exc"].endswith("RuntimeError: broker said no")


def test_extra_fields_named_like_ours_do_not_overwrite_them():
    with json_logs() as (stream, _):
        logging.getLogger("tickguard.test").warning("halted", extra={"level": 3, "ts": "later"})
    (line,) = lines(stream)
    assert line["level"] == "WARNING" and line["level_"] == 3 and line["ts_"] == "later"


def test_configuring_twice_keeps_one_handler_and_the_same_redactor():
    with json_logs(secrets=("first-secret-value",)) as (first, redactor):
        again = io.StringIO()
        assert configure_logging("DEBUG", stream=again) is redactor
        ours = [h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)]
        assert len(ours) == 1
        logging.getLogger("tickguard.test").debug("token first-secret-value")
        assert first.getvalue() == ""
        assert lines(again)[0]["msg"] == f"token {MASK}"


def test_unknown_level_is_refused():
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        configure_logging("LOUD")


def test_records_below_the_level_are_never_formatted():
    formatted = []

    class Costly:
        def __str__(self) -> str:
            formatted.append(1)
            return "costly"

    with json_logs("INFO") as (stream, _):
        logging.getLogger("tickguard.test").debug("state %s", Costly())
    assert stream.getvalue() == "" and formatted == []


@dataclass
class Session:
    clientcode: str
    jwt_token: str
    feedToken: str


def test_values_under_secret_keys_are_masked_recursively():
    extra = {
        "alert": {"symbolname": "SBIN", "token": "tv-secret", "symboltoken": "3045"},
        "headers": [{"Authorization": "Basic abc", "X-PrivateKey": "key", "Content-Type": "json"}],
        "login": {"password": "pw", "pin": 1234, "totp": "123456", "api_key": "k", "smartapi_pass": "p",
                  "webhook_secret": "w", "refreshToken": "r", "empty_token": ""},
        "session": Session("A123456", "not-a-jwt", "feed"),
    }
    with json_logs() as (stream, _):
        logging.getLogger("tickguard.test").info("login", extra=extra)
    (line,) = lines(stream)
    assert line["alert"] == {"symbolname": "SBIN", "token": MASK, "symboltoken": "3045"}
    assert line["headers"] == [{"Authorization": MASK, "X-PrivateKey": MASK, "Content-Type": "json"}]
    assert set(line["login"].values()) == {MASK, ""} and line["login"]["empty_token"] == ""
    assert line["session"] == {"clientcode": "A123456", "jwt_token": MASK, "feedToken": MASK}


def test_jwts_bearer_values_and_query_strings_are_masked_everywhere():
    with json_logs() as (stream, _):
        log = logging.getLogger("tickguard.test")
        log.info("session %s", JWT, extra={"auth": f"Bearer {JWT}", "nested": {"h": "(bearer abc.def)"}})
        log.info("POST /opentrade?token=abc&x=1 from http://10.0.0.1:8000/chartink?signal=buy#frag done")
        log.info("what? /health ok? 1/2 is half", extra={"path": "/opentrade?token=abc"})
    session, paths, plain = lines(stream)
    assert session["msg"] == f"session {MASK}"
    assert session["auth"] == f"Bearer {MASK}" and session["nested"] == {"h": f"(Bearer {MASK})"}
    assert paths["msg"] == "POST /opentrade?… from http://10.0.0.1:8000/chartink?… done"
    assert plain["msg"] == "what? /health ok? 1/2 is half" and plain["path"] == "/opentrade?…"


def test_values_written_after_a_secret_name_in_free_text_are_masked():
    login = {"clientcode": "A123456", "password": "my pass", "totp": "123456", "symboltoken": "3045"}
    with json_logs() as (stream, _):
        log = logging.getLogger("tickguard.test")
        log.info("login with %s", login)
        log.info("headers {'Authorization': 'Basic dXNlcjpwdw==', 'X-PrivateKey': 'k1'} webhook_secret=abc def")
        log.info('session {"jwtToken":"opaque","feedToken":"f1"} subscribed token 3045, pinned=3 tokens=4')
    login_line, headers, session = (line["msg"] for line in lines(stream))
    assert login_line == f"login with {{'clientcode': 'A123456', 'password': {MASK}, 'totp': {MASK}, " \
                         "'symboltoken': '3045'}"
    assert headers == f"headers {{'Authorization': {MASK}, 'X-PrivateKey': {MASK}}} webhook_secret={MASK} def"
    assert session == f'session {{"jwtToken":{MASK},"feedToken":{MASK}}} subscribed token 3045, pinned=3 tokens=4'


def test_secrets_added_at_run_time_are_masked_from_then_on():
    with json_logs() as (stream, redactor):
        log = logging.getLogger("tickguard.test")
        log.info("feed token opaque-feed-token-77")
        redactor.add("opaque-feed-token-77")
        redactor.add("")  # blank values protect nothing and must not mask everything
        log.info("feed token opaque-feed-token-77")
    assert [line["msg"] for line in lines(stream)] == ["feed token opaque-feed-token-77", f"feed token {MASK}"]


def test_a_short_pin_is_masked_as_a_word_not_inside_numbers():
    redactor = Redactor(["4321"])
    assert redactor.text("pin 4321, order 143210, price 94321") == f"pin {MASK}, order 143210, price 94321"
    assert redactor.value({"qty": 4321, "price": 14321}) == {"qty": MASK, "price": 14321}


def test_an_encoded_line_that_spells_a_secret_is_withheld():
    # The text holds a newline then "abcdef"; JSON writes that as \nabcdef, which spells the secret.
    with json_logs(secrets=("nabcdef",)) as (stream, _):
        logging.getLogger("tickguard.test").info("x\nabcdef")
    (line,) = lines(stream)
    assert "nabcdef" not in stream.getvalue() and line["msg"].startswith(MASK + " (line withheld")


def test_a_secret_split_by_masking_cannot_reassemble():
    # Masking the inner copy would splice the outer text into the secret again.
    redactor = Redactor(["ab***cd"])
    assert "ab***cd" not in redactor.text("abab***cdcd")


def test_a_failing_write_reports_without_the_record(capsys):
    with json_logs(secrets=("super-secret-pw",)) as (stream, _):
        stream.close()
        logging.getLogger("tickguard.test").info("login with %s", "super-secret-pw")
    err = capsys.readouterr().err
    assert "could not be written" in err and "super-secret-pw" not in err


def test_bad_arguments_keep_the_line_and_mask_the_message():
    # Formatted directly: pytest's own capture handler raises on a record like this.
    record = logging.LogRecord("tickguard.test", logging.INFO, __file__, 1, "login %s %s with super-secret-pw",
                               ("one",), None)
    line = json.loads(JsonFormatter(Redactor(["super-secret-pw"])).format(record))
    assert line["msg"] == f"login %s %s with {MASK} (log arguments did not format: TypeError)"


def test_uvicorn_loggers_write_redacted_json_through_the_root_handler():
    stray = logging.StreamHandler(io.StringIO())
    logging.getLogger("uvicorn.error").addHandler(stray)
    with json_logs(secrets=("wh-secret-1234567",)) as (stream, _):
        assert stray not in logging.getLogger("uvicorn.error").handlers
        logging.getLogger("uvicorn.error").error("Exception in ASGI application: %s", "wh-secret-1234567")
    (line,) = lines(stream)
    assert line == {"ts": line["ts"], "level": "ERROR", "logger": "uvicorn.error",
                    "msg": f"Exception in ASGI application: {MASK}"}


async def app(scope, receive, send):  # a stand-in ASGI app; uvicorn.Config only stores it
    raise NotImplementedError


def test_uvicorn_config_keeps_our_handler_and_strips_access_queries():
    with json_logs() as (stream, _):
        ours = logging.getLogger().handlers[:]
        tickguard = logging.getLogger("tickguard.test")
        uvicorn.Config(app, log_config=UVICORN_LOG_CONFIG, access_log=True, use_colors=False, log_level="info")
        assert logging.getLogger().handlers == ours and not tickguard.disabled
        assert logging.getLogger("uvicorn.access").handlers == []
        # Exactly how uvicorn's httptools/h11 protocols write an access line.
        logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "10.0.0.5:5123", "POST",
                                                 "/opentrade?token=tv-secret", "1.1", 202)
        uvicorn.Config(app, log_config=UVICORN_LOG_CONFIG, access_log=False)
        logging.getLogger("uvicorn.access").info("never written")
        tickguard.info("still here")
    access, still = lines(stream)
    assert access["logger"] == "uvicorn.access"
    assert access["msg"] == '10.0.0.5:5123 - "POST /opentrade?… HTTP/1.1" 202'
    assert still["msg"] == "still here"


SKELETON = '{"ts":"level":"WARNING","ERROR","logger":"msg":"exc":"stack":"}' + service.logs._WITHHELD
printable = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF, blacklist_categories=("Cs",)),
                    max_size=12)
secret_text = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF, blacklist_categories=("Cs",)),
                      min_size=6, max_size=24)


@given(secret=secret_text, before=printable, after=printable,
       where=st.sampled_from(["msg", "arg", "repr_arg", "extra", "extra_key", "exception", "logger_name"]))
def test_a_configured_secret_never_reaches_the_output(secret, before, after, where):
    # Blank secrets and ones made only of mask characters are not secrets worth masking (see Redactor.add),
    # and a line's own skeleton — field names, the level, the withheld-line note — is never masked.
    assume(secret.strip() and secret.strip("*…"))
    assume(secret not in SKELETON)
    text = before + secret + after
    with json_logs(secrets=("another-secret", secret)) as (stream, _):
        log = logging.getLogger("tickguard.test")
        if where == "msg":
            log.warning(text)  # no args, so no %-formatting
        elif where == "arg":
            log.warning("alert from %s rejected", text)
        elif where == "repr_arg":
            log.warning("headers %s", {"X-Source": [text]})
        elif where == "extra":
            log.warning("alert", extra={"body": {"note": [text]}})
        elif where == "extra_key":
            log.warning("alert", extra={"body": {text: 1}})
        elif where == "logger_name":
            logging.getLogger(f"tickguard.{text}").warning("hello")
        else:
            try:
                raise ValueError(text)
            except ValueError:
                log.exception("alert failed")
    output = stream.getvalue()
    assert secret not in output
    if where == "repr_arg":
        assert repr(text)[1:-1] not in output
    for line in lines(stream):
        assert all(secret not in value for value in strings(line))


def test_exported_names():
    assert all(hasattr(service.logs, name) for name in service.logs.__all__)
    assert {"Redactor", "configure_logging", "UVICORN_LOG_CONFIG"} <= set(service.logs.__all__)


@given(texts=st.lists(st.sampled_from(["trade_id", "SBIN-EQ", "token=abc123", "hunter22secret", "A1 hunter22secret",
                                       "Bearer xyz", "/a?b=c"]) | st.text(max_size=40), min_size=1, max_size=30),
       added_after=st.integers(0, 30))
def test_remembered_masks_are_those_of_the_secrets_in_force(texts, added_after):
    """Short texts are remembered masked; a secret added later is masked in a text remembered before it."""
    redactor = Redactor(["first-secret-value"])
    for n, text in enumerate(texts):
        if n == added_after:
            redactor.add("hunter22secret")
        expected = Redactor._mask(redactor._pattern, text)
        assert redactor.text(text) == expected == redactor.text(text)
    if added_after < len(texts):
        assert "hunter22secret" not in redactor.text("A1 hunter22secret")


@given(parts=st.lists(st.sampled_from(["trade 12 closed", "Bearer abc.def", "eyJhbGciOi.eyJzdWIiOi.c2ln", "password=hunter22",
                                       "'pin': '1234'", "https://x.example/y?token=abc", "symboltoken=3045", "hunter22secret",
                                       "apiKey: k-1", " "]) | st.text(max_size=30), max_size=12),
       secret=st.booleans())
def test_one_search_first_masks_exactly_as_the_five_patterns_do(parts, secret):
    """A text is handed back as it is only when no masking pattern touches it: short (remembered) or long."""
    redactor = Redactor(["hunter22secret"] if secret else [])
    text = " ".join(parts)
    for candidate in (text, text + " " + "x" * 130):  # under and over the remembered length
        assert redactor.text(candidate) == Redactor._mask(redactor._pattern, candidate)
