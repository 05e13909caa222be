"""LOG_FORMAT: readable single lines on a terminal, JSON elsewhere, both redacted alike."""
from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from service.logs import MASK, JsonFormatter, TextFormatter, configure_logging
from service.settings import load_settings
from tests.service.test_logs import logging_restored

TEXT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (INFO |WARNING|ERROR) tickguard\.test: ")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@contextmanager
def logs_to(stream: io.StringIO, log_format: str, secrets: tuple[str, ...] = ()) -> Iterator[logging.Handler]:
    with logging_restored():
        configure_logging("INFO", secrets=secrets, stream=stream, log_format=log_format)
        yield logging.getLogger().handlers[-1]


@pytest.mark.parametrize(("stream", "log_format", "formatter"), [
    (Terminal(), "auto", TextFormatter), (io.StringIO(), "auto", JsonFormatter),
    (io.StringIO(), "text", TextFormatter), (Terminal(), "json", JsonFormatter),
])
def test_auto_is_text_on_a_terminal_and_json_elsewhere(stream, log_format, formatter):
    with logs_to(stream, log_format) as handler:
        assert type(handler.formatter) is formatter


def test_a_text_line_is_one_readable_line_with_the_fields_and_no_secret():
    stream = io.StringIO()
    with logs_to(stream, "text", secrets=("s3cret-pin-value",)):
        logging.getLogger("tickguard.test").warning("login with s3cret-pin-value\nand more",
                                                    extra={"trade_id": 7, "reason": "stop hit", "password": "x",
                                                           "price": 800.05})
    (line,) = stream.getvalue().splitlines()
    assert TEXT.match(line), line
    assert line.endswith(f'login with {MASK}\\nand more  trade_id=7 reason="stop hit" password={MASK} price=800.05')


def test_a_traceback_follows_its_text_line_indented_and_masked():
    stream = io.StringIO()
    with logs_to(stream, "text", secrets=("s3cret-pin-value",)):
        try:
            raise RuntimeError("broker said s3cret-pin-value")
        except RuntimeError:
            logging.getLogger("tickguard.test").exception("failed")
    first, *trace = stream.getvalue().splitlines()
    assert TEXT.match(first) and first.endswith("failed")
    assert trace[0] == "    Traceback (most recent call last):" and trace[-1] == f"    RuntimeError: broker said {MASK}"


def test_json_stays_one_object_a_line():
    stream = io.StringIO()
    with logs_to(stream, "json"):
        logging.getLogger("tickguard.test").info("hello", extra={"trade_id": 7})
    (line,) = stream.getvalue().splitlines()
    assert json.loads(line)["trade_id"] == 7


def test_log_format_is_a_setting_with_auto_by_default():
    assert load_settings({}, env_file="/nonexistent/.env").log_format == "auto"
    assert load_settings({"LOG_FORMAT": "text"}, env_file="/nonexistent/.env").log_format == "text"
    with pytest.raises(Exception, match="LOG_FORMAT"):
        load_settings({"LOG_FORMAT": "xml"}, env_file="/nonexistent/.env")
