from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

pytest_plugins = ["tests.support.paper", "tests.support.service"]

hypothesis_settings.register_profile("default", deadline=None, max_examples=100)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def tmp_db(tmp_path: Path) -> Path:
    return tmp_path / "paper.db"
