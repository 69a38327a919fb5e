"""What travels: a TCP :class:`Segment` between two hosts, carrying the programs' :class:`Msg`\\ s.

Both the stack (:mod:`kalab.stack`) and the programs (:mod:`kalab.apps`) use these; neither needs
the other's module for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(eq=False)
class Msg:
    """An application-level message carried in TCP bytes (an SSH packet, a request...)."""

    kind: str                 # "data", "line" (typing with Enter), "alive_req", "alive_reply", "channel_close"
    nbytes: int
    reply_bytes: int = 0
    #: channel_close: why sshd closed the session's channel (a ``by``) and the exit status ssh gets
    cause: str | None = None
    exit_code: int | None = None


@dataclass(eq=False, slots=True)
class Segment:
    """One TCP segment.  Sequence numbers are byte counts (ISS 0; the SYN and the FIN take one each);
    ``msgs`` are the messages whose last byte it carries, as ``((end_seq, Msg), ...)``."""

    src: str
    dst: str
    seq: int
    ack: int | None
    length: int = 0
    syn: bool = False
    fin: bool = False
    rst: bool = False
    label: str = "ack"        # what the timeline calls it: data, keepalive, retransmit, tlp, ...
    msgs: tuple = field(default_factory=tuple)   # ((end_seq, Msg), ...)

    def describe(self) -> str:
        flags = "".join(f for f, on in (("S", self.syn), ("F", self.fin), ("R", self.rst)) if on) or "."
        return f"{self.label} [{flags}] seq={self.seq} len={self.length}"


__all__ = ["Msg", "Segment"]
