"""Reading what users hand kalab, with every size bounded (docs/scenarios.md, "Limits").

* Files: regular files only -- a FIFO with no writer would block for ever, ``/dev/zero`` would be
  read until memory runs out -- of at most :data:`MAX_SCENARIO_BYTES` (scenarios) or
  :data:`MAX_CONFIG_BYTES` (sysctl dumps, ssh/sshd configs, each Include counted).
* JSON: nested at most :data:`MAX_DEPTH` levels (the contract needs 4), numbers at most
  :data:`MAX_NUMBER_CHARS` characters, no key twice in one object (``json`` keeps the last one
  silently; kalab refuses, naming the key and both lines).

The depth is checked by a linear pre-scan of the text rather than by catching ``RecursionError``
around ``json.loads``: the decoder's own limit is the interpreter's recursion limit (about 1,000
levels here, different elsewhere), and a document that parses at 900 levels can still exhaust the
stack later (``copy.deepcopy``, ``json.dumps``, ``repr``).  The same scan finds the line numbers of
duplicate keys (``object_pairs_hook`` sees the keys, not where they are) and the key of an
over-long number (``int()`` of more than 4,300 digits raises ``ValueError`` inside the decoder).
"""

from __future__ import annotations

import json
import os
import re
import stat
from typing import Any

from .errors import ScenarioError, show

#: The largest scenario file or text [bytes].
MAX_SCENARIO_BYTES = 1 << 20
#: The largest config file (sysctl dump, ssh_config, sshd_config) and the most all the files of one
#: config may add up to through Include [bytes].
MAX_CONFIG_BYTES = 16 << 20
#: The deepest nesting of JSON objects and lists accepted (the scenario contract itself needs 4).
MAX_DEPTH = 32
#: The longest number in a JSON text [characters] (every valid value has fewer than 20).
MAX_NUMBER_CHARS = 100


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n:,} bytes"


class TooBig(ScenarioError):
    """A file over the size limit (a :class:`ScenarioError`)."""


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_regular_file(path: Any, limit: int, what: str = "file") -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes; else a one-line
    :class:`ScenarioError` naming the path (``/dev/zero``, a FIFO or a directory is refused at once:
    the file is opened non-blocking and checked with ``fstat`` before anything is read)."""
    key = str(path)
    rule = f"kalab reads a {what} from a regular file of at most {_size(limit)}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise ScenarioError(key, f"cannot read: {e.strerror or e}") from None
    except (ValueError, TypeError) as e:     # an embedded NUL, a path that is not a path
        raise ScenarioError(key, f"cannot read: {e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
            raise ScenarioError(key, f"is {kind}, not a regular file", hint=rule)
        if st.st_size > limit:
            raise TooBig(key, f"is {st.st_size:,} bytes, too big", hint=rule)
        chunks, n = [], 0
        while n <= limit:
            b = os.read(fd, min(1 << 20, limit + 1 - n))
            if not b:
                break
            chunks.append(b)
            n += len(b)
        if n > limit:                            # (it grew while being read)
            raise TooBig(key, f"is more than {limit:,} bytes, too big", hint=rule)
        return b"".join(chunks)
    except OSError as e:
        raise ScenarioError(key, f"cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)


# ---------------------------------------------------------------- JSON

_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\],:]|[^\s"{}\[\],:]+|"', re.S)


def _where(stack: list) -> str:
    return ".".join(str(e[1]) for e in stack if e[1] is not None)


def _outer(where: str) -> str:
    """A deep path shown by its outer keys: ``description.0.0.0...`` (not 500 components)."""
    parts = where.split(".")
    return where if len(parts) <= 5 else ".".join(parts[:4]) + "..."


def _scan(text: str) -> tuple[ScenarioError | None, ScenarioError | None]:
    """One linear pass: (an error to raise before parsing -- too deep, a number too long --,
    a duplicate key to report once the text is known to be JSON)."""
    stack: list[list] = []          # [kind "{" or "[", current key or index, {key: line} for objects]
    dup = None
    line, pos = 1, 0
    prev: tuple[str, int] | None = None     # the last string token (a key if a ':' follows)
    for m in _TOKEN.finditer(text):
        tok = m.group()
        line += text.count("\n", pos, m.start())
        pos = m.start()
        c = tok[0]
        if c == '"':
            if len(tok) == 1:                # an unterminated string: json.loads reports it
                break
            prev = (tok, line)
            continue
        if c in "{[":
            if len(stack) >= MAX_DEPTH:
                where = _outer(_where(stack))
                return ScenarioError(where, f"JSON nested deeper than {MAX_DEPTH} levels (line {line})",
                                     allowed=f"at most {MAX_DEPTH} levels of objects and lists"), None
            stack.append([c, None if c == "{" else 0, {}])
        elif c in "}]":
            if not stack:
                break
            stack.pop()
        elif c == ":":
            if stack and stack[-1][0] == "{" and prev is not None:
                try:
                    key = json.loads(prev[0])
                except ValueError:
                    key = prev[0]
                top = stack[-1]
                top[1] = key
                if key in top[2] and dup is None:
                    where = ".".join(filter(None, (_where(stack[:-1]), str(key))))
                    dup = ScenarioError(where, f"duplicate key: on lines {top[2][key]} and {prev[1]} (JSON "
                                               "would keep the last silently)", hint="give each key once")
                top[2].setdefault(key, prev[1])
        elif c == ",":
            if stack and stack[-1][0] == "[":
                stack[-1][1] += 1
        elif len(tok) > MAX_NUMBER_CHARS and c in "-0123456789":
            return ScenarioError(_where(stack), f"a value of {len(tok):,} characters (line {line}) is not a "
                                                "number kalab reads", value=tok,
                                 allowed=f"numbers of at most {MAX_NUMBER_CHARS} characters"), None
        prev = None
    return None, dup


def parse_json(text: str | bytes, limit: int = MAX_SCENARIO_BYTES, what: str = "scenario") -> Any:
    """``json.loads`` with the limits above; malformed JSON is reported with line and column."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ScenarioError("", f"a {what} is UTF-8 text; byte {e.start} is not") from None
    if not isinstance(text, str):
        raise ScenarioError("", f"a {what} is JSON text, got {type(text).__name__} {show(text)}")
    if len(text) > limit:
        raise ScenarioError("", f"a {what} text of {len(text):,} characters is too long",
                            allowed=f"at most {_size(limit)}")
    early, dup = _scan(text)
    if early is not None:
        raise early
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ScenarioError("", f"malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except (RecursionError, ValueError) as e:    # (the scan refuses both first; kept as a guard)
        raise ScenarioError("", f"not JSON kalab can read: {str(e)[:80]}") from None
    if dup is not None:
        raise dup
    return data


def check_tree(data: Any, path: str = "", max_depth: int = MAX_DEPTH) -> None:
    """Refuse, naming the key, what no JSON text could hold and what would crash later: nesting
    deeper than ``max_depth`` (or a structure that contains itself), a key that is not a string,
    a string with a lone surrogate (it cannot be printed or written as UTF-8).  Iterative."""
    todo: list[tuple[Any, str, int]] = [(data, path, 0)]
    while todo:
        node, where, depth = todo.pop()
        if isinstance(node, str):
            if not node.isascii():
                try:
                    node.encode("utf-8")
                except UnicodeEncodeError as e:
                    raise ScenarioError(where, f"contains a lone surrogate {node[e.start]!r} at character {e.start}, "
                                               "which is not text (it cannot be printed or saved as UTF-8)",
                                        allowed="Unicode text") from None
            continue
        if isinstance(node, dict):
            items = list(node.items())
        elif isinstance(node, (list, tuple)):
            items = list(enumerate(node))
        else:
            continue
        if depth >= max_depth:
            raise ScenarioError(_outer(where), f"nested deeper than {max_depth} levels (or contains itself)",
                                allowed=f"at most {max_depth} levels of objects and lists")
        for k, v in items:
            if isinstance(node, dict):
                if not isinstance(k, str):
                    raise ScenarioError(where, f"keys are strings, got {type(k).__name__} {show(k)}")
                todo.append((k, f"{where}.{k}" if where else k, depth + 1))
            todo.append((v, f"{where}.{k}" if where else str(k), depth + 1))
