"""The one error type for bad input: it names the key, the value and what is allowed."""

from __future__ import annotations

import difflib
from typing import Any, Iterable


class ScenarioError(ValueError):
    """A scenario (or CLI argument) that kalab refuses.

    Attributes
    ----------
    key: dotted path of the offending key, e.g. ``client.socket.TCP_KEEPIDLE``
    value: the value given (``None`` for a missing or unknown key)
    allowed: what would have been accepted, e.g. ``"1..32767 s (MAX_TCP_KEEPIDLE)"``
    hint: an extra sentence, e.g. ``"did you mean 'TCP_KEEPINTVL'?"``
    """

    def __init__(self, key: str, message: str, *, value: Any = None, allowed: str | None = None,
                 hint: str | None = None) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        self.hint = hint
        text = f"{key}: {message}" if key else message
        if allowed:
            text += f"; allowed: {allowed}"
        if hint:
            text += f"; {hint}"
        super().__init__(text)


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest valid name to a typo (case-insensitive), or None."""
    cands = list(candidates)
    lower = {c.lower(): c for c in cands}
    if name.lower() in lower:
        return lower[name.lower()]
    match = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.6)
    return lower[match[0]] if match else None


def unknown_key(path: str, name: str, valid: Iterable[str]) -> ScenarioError:
    valid = sorted(valid)
    guess = closest(name, valid)
    hint = f"did you mean {guess!r}?" if guess else None
    where = f"{path}.{name}" if path else name
    return ScenarioError(where, "unknown key", allowed=", ".join(valid) if len(valid) <= 12 else None,
                         hint=hint)
