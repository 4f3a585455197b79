"""Server settings, the user data folder and the access token.

The data folder is ``$SHOTBRIDGE_HOME`` when set, else the platform's user data folder: Linux
``$XDG_DATA_HOME/shotbridge`` (``~/.local/share/shotbridge``), macOS
``~/Library/Application Support/ShotBridge``, Windows ``%APPDATA%\\ShotBridge``. The add-on finds
the token file by the same rule (``blender_addon/client.py``), so keep the two in step.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("shotbridge.server")

HOME_ENV = "SHOTBRIDGE_HOME"
DISK_LIMIT_ENV = "SHOTBRIDGE_DISK_LIMIT"
TOKEN_NAME = "token"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7862
DEFAULT_DISK_LIMIT = 20 * 1024**3
DEFAULT_MAX_BODY = 256 * 1024**2
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def default_data_dir(environ: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """The user data folder by the rule in the module docstring."""
    environ = os.environ if environ is None else environ
    platform = platform or sys.platform
    if environ.get(HOME_ENV):
        return Path(environ[HOME_ENV]).expanduser()
    home = Path(environ.get("HOME") or Path.home())
    if platform == "darwin":
        return home / "Library" / "Application Support" / "ShotBridge"
    if platform == "win32":
        return Path(environ.get("APPDATA") or home / "AppData" / "Roaming") / "ShotBridge"
    return Path(environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "shotbridge"


def parse_size(text: str | int) -> int:
    """Bytes from ``"20G"``, ``"500M"``, ``"1.5T"`` or a plain integer (binary units)."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"{text!r} is not a size (e.g. 20G, 500M, 1073741824)")
    return int(float(match[1]) * _UNITS[match[2].upper()])


def ensure_token(data_dir: Path) -> str:
    """The token in ``<data_dir>/token``, created (mode 0600) on first start."""
    path = data_dir / TOKEN_NAME
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.is_file():
        _write_token(path)
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        logger.warning("%s was readable by other users; making it 0600", path)
        path.chmod(0o600)
    token = path.read_text(encoding="utf-8").strip()
    if not token:  # emptied by hand: a new one
        path.unlink()
        return ensure_token(data_dir)
    return token


def _write_token(path: Path) -> None:
    """Write a new token beside ``path`` (0600 from the start) and link it into place, so a
    reader never sees an empty file and two servers starting at once agree on one token."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(secrets.token_urlsafe(32) + "\n")
    try:
        os.link(partial, path)
    except FileExistsError:
        pass  # another process was first: keep its token
    except OSError:  # a file system without hard links
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


@dataclass
class Settings:
    """What a server instance needs; ``Settings.from_env()`` gives the defaults."""

    data_dir: Path
    """Token, job database, job folders and ``models.toml`` live here."""
    disk_limit_bytes: int = DEFAULT_DISK_LIMIT
    """Job folders above this size lose their oldest outputs first (never a running job's)."""
    devices: tuple[str, ...] | None = None
    """One worker per device; None = one per CUDA GPU, or one on the CPU."""
    preload: tuple[str, ...] = ("smoke-test",)
    """Models loaded at start-up (in the lifespan handler); the others load on first use."""
    max_body_bytes: int = DEFAULT_MAX_BODY
    """Largest request body accepted (413 above)."""
    models_config: Path | None = None
    """The models config; None = ``$SHOTBRIDGE_MODELS_CONFIG``, else ``<data_dir>/models.toml``."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, then ``SHOTBRIDGE_HOME``/``SHOTBRIDGE_DISK_LIMIT``, then ``overrides``."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {"data_dir": default_data_dir(environ)}
        if environ.get(DISK_LIMIT_ENV):
            values["disk_limit_bytes"] = parse_size(environ[DISK_LIMIT_ENV])
        values.update({key: value for key, value in overrides.items() if value is not None})
        values["data_dir"] = Path(values["data_dir"])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]

    @property
    def token_path(self) -> Path:
        return self.data_dir / TOKEN_NAME

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "jobs.sqlite3"
