"""The one error type for bad input: it names the key, the value and what is allowed."""

from __future__ import annotations

import difflib
import reprlib
from typing import Any, Iterable

#: The longest value shown in an error message [characters]; longer ones are cut with their size.
MAX_SHOWN = 80
#: Messages are cut to this many characters (a safety net: values are shown through :func:`show`).
MAX_MESSAGE = 400


class _Repr(reprlib.Repr):
    """reprlib with ints shown by size past 30 digits (``repr`` of a 5,000-digit int raises ValueError)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = self.maxother = self.maxlong = MAX_SHOWN
        self.maxlevel = 3

    def repr_int(self, x, level):
        if x.bit_length() > 100:
            return f"<an integer of about {int(x.bit_length() * 0.30103) + 1:,} digits>"
        return repr(x)

    def repr_str(self, x, level):
        if len(x) <= MAX_SHOWN:
            return repr(x)
        return repr(x[:MAX_SHOWN - 20]) + f"... ({len(x):,} characters)"


_REPR = _Repr()


def show(value: Any) -> str:
    """``repr(value)`` safe for error messages: short (long strings and lists cut, with their size),
    never failing (a 5,000-digit int, a list nested 10,000 deep, a self-containing dict)."""
    try:
        return _REPR.repr(value)
    except Exception:   # (a hostile __repr__)
        return f"<a {type(value).__name__}>"


def _printable(text: str) -> str:
    """One line, printable anywhere: a newline, a control character or a lone surrogate in a key or
    value (from a JSON key, say) is shown escaped."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    return text if len(text) <= limit else text[:limit - 30] + f"... ({len(text):,} characters)"


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
        key, message = _printable(clip(str(key), MAX_SHOWN + 40)), _printable(clip(str(message)))
        detail = message
        if allowed:
            detail += f"; allowed: {allowed}"
        if hint:
            detail += f"; {hint}"
        #: The message without the key (to say it again under another name, e.g. the CLI option).
        self.detail = detail
        super().__init__(f"{key}: {detail}" if key else detail)


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
