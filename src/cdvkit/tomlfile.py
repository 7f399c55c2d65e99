"""Reading a TOML file a user names (a config file, a prompts file): every way it can be
unreadable is one line naming the file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


def read_toml(path: str | Path, what: str, error: type[ValueError] = ValueError) -> dict[str, Any]:
    """The parsed ``path``; raises ``error`` naming ``what`` (e.g. "config file") and the file
    when it is missing, a folder, not UTF-8, unreadable or not TOML."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{what} {p} not found") from None
    except IsADirectoryError:
        raise error(f"{what} {p} is a directory, not a TOML file") from None
    except UnicodeDecodeError:
        raise error(f"{what} {p} is not UTF-8 text (is it a TOML file?)") from None
    except OSError as exc:
        raise error(f"{what} {p} cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} {p} is not valid TOML: {exc}") from None
