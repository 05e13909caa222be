"""The settings file (`.env`, or the file `TICKGUARD_ENV_FILE` names), read or refused in one line.

The file is optional: without it the environment alone is read. A file that is there but cannot be
read (no permission, a directory, not UTF-8 text) stops the start with a `SettingsError` naming the
file — never a traceback, never a silent start on defaults the operator did not mean.
"""
from __future__ import annotations

import io
from pathlib import Path

from dotenv import dotenv_values

from service.errors import SettingsError

__all__ = ["read_env_file"]


def read_env_file(path: str, *, setting: str) -> dict[str, str]:
    """The file's values; {} when there is no such file. `setting` names it in an error."""
    file = Path(path)
    if not file.exists():
        return {}
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SettingsError([(setting, f"{path}: not UTF-8 text")]) from None
    except OSError as exc:
        raise SettingsError([(setting, f"{path}: cannot be read ({exc.strerror or type(exc).__name__})")]) from None
    return {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}
