"""Fixtures for the SmartAPI adapter's stream clients: the SDK oracle and a running paper exchange."""
from __future__ import annotations

import pytest

from tests.paper.conftest import DEMO, RunningPaper, paper, paper_factory, smartapi_module  # noqa: F401


@pytest.fixture(scope="session")
def sdk_parse(smartapi_module):  # noqa: F811
    """`SmartWebSocketV2._parse_binary_data` on an instance built without __init__ (which writes ./logs)."""
    from SmartApi.smartWebSocketV2 import SmartWebSocketV2

    return SmartWebSocketV2.__new__(SmartWebSocketV2)._parse_binary_data
