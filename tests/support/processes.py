"""Processes a test starts (`tickguard …` as a subprocess), killed and their pipes closed at teardown."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

__all__ = ["processes"]


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
