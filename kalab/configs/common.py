"""What every config reader shares: where a value came from, and what could not be read."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ScenarioError, clip
from ..inputs import MAX_CONFIG_BYTES, read_regular_file


@dataclass(frozen=True)
class Origin:
    """Where a setting was read: ``file:line`` (``line`` 0 for a value given on the command line)."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Problem:
    """Something reported but not fatal: an unknown keyword, a line that is not ``key value``."""

    origin: Origin
    text: str

    def __str__(self) -> str:
        return clip(f"{self.origin}: {self.text}")


class ConfigError(ScenarioError):
    """A value kalab would use, but cannot: names the file and line as well as the key and range."""

    def __init__(self, origin: Origin, key: str, message: str, **kw) -> None:
        self.origin = origin
        super().__init__(f"{origin}: {key}", message, **kw)


def read_text(path: str) -> str:
    """A config file's text (undecodable bytes replaced: config files are mostly ASCII): a regular
    file of at most :data:`~kalab.inputs.MAX_CONFIG_BYTES`, else a :class:`ScenarioError` naming it."""
    return read_regular_file(path, MAX_CONFIG_BYTES, "config").decode("utf-8", errors="replace")
