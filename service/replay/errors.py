"""The replay's errors.

    TickguardError
    └── ReplayError            (path, reason): an input the replay cannot read
        ├── VariantsError      (path, problems): a variants file, every problem at once
        └── AlertsFileError    (path, line, reason): a line of an alerts file
"""
from __future__ import annotations

from service.errors import TickguardError

__all__ = ["AlertsFileError", "ReplayError", "VariantsError"]


class ReplayError(TickguardError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class VariantsError(ReplayError):
    def __init__(self, path: str, problems: list[str]) -> None:
        super().__init__(path, "; ".join(problems))
        self.problems = problems


class AlertsFileError(ReplayError):
    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}", reason)
        self.line = line
