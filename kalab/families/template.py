"""The retransmission template: a schedule the kernel computes step by step, simulated once and shifted.

Where a family's formula is a schedule that the kernel computes step by step (RTO backoff, the
tail loss probe, the ``tcp_retries2`` time model, ``TCP_USER_TIMEOUT`` clamping), it runs the
simulator *once per distinct retransmission setting* on a one-segment scenario and shifts the
answer: the schedule of a segment sent at a jiffy boundary ``t`` is the template's schedule moved
by ``t`` (kernel timers are relative; timer-wheel slack depends on the delay, not the time).  A
sweep over ``tcp_retries2`` x ``TCP_USER_TIMEOUT`` x outage therefore costs one tiny simulation per
(retries2, UT) pair, and numpy for the rest.  Public: :mod:`kalab.recommend` reads retransmission
give-ups from :func:`retx_template` too.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Mapping, NamedTuple

import numpy as np

from .grid import by_code

T_REF_S = 1.0
#: Host keys that shape a retransmission schedule (everything else about the host is dropped).
RETX_HOST_KEYS = ("os", "kernel", "hz", "srtt_ms", "sysctl")


@lru_cache(maxsize=8192)
def _retx_template_json(host_json: str, rtt_ms: float | None) -> tuple:
    host = json.loads(host_json)
    sc = {"client": host, "server": {}, "traffic": [{"at_s": T_REF_S, "from": "client"}],
          "faults": [{"kind": "link_down", "at_s": T_REF_S}], "until_s": 10_000_000}
    if rtt_ms is not None:
        sc["path"] = {"rtt_ms": rtt_ms}
    from ..scenario import load
    from ..simulate import World
    r = World(load(sc)).run()
    c = r.client
    if c.fate != "died" or c.by not in ("tcp.retransmission", "tcp.user_timeout"):  # pragma: no cover - guard
        raise AssertionError(f"retransmission template did not die by retransmission: {c}")
    # The latest timing corner (kalab.timing): every RTO fires one wheel granularity late, and the
    # give-up, whose test is elapsed time, may come one firing sooner.
    w = World(load(sc), at_latest=frozenset({"client"})).run()
    return (c.at_s - T_REF_S, c.latest_s - c.at_s, c.by, _sends(r), tuple(e.latest_s - e.t_s for e in _sent(r)),
            w.client.at_s - T_REF_S, w.client.by, _sends(w))


def _sent(r) -> list:
    return [e for e in r.events if e.side == "client" and e.layer == "tcp" and e.kind in ("data_sent", "tlp", "retransmit")]


def _sends(r) -> tuple:
    return tuple(e.t_s - T_REF_S for e in _sent(r))


def retx_template(scenario_host: Mapping, rtt_ms, overrides: Mapping[str, Any]) -> tuple:
    """One segment sent at a jiffy boundary into a dead path: (death after the send [s], lateness of
    the death [s] beyond the sender's own, by, send times after the first [s], each send's lateness [s],
    the death at the latest timing corner [s], its by, and that corner's send times [s]).

    ``scenario_host`` is the host's part of the scenario (its sysctls, kernel, srtt); ``overrides``
    are dotted host keys (``sysctl.net.ipv4.tcp_retries2``, ``socket.TCP_USER_TIMEOUT``) from the grid.
    """
    host: dict = {k: scenario_host[k] for k in RETX_HOST_KEYS if k in scenario_host}
    # Keepalive is off in the template (data in flight suspends it anyway): its sysctls do not matter.
    host["sysctl"] = {k: v for k, v in host.get("sysctl", {}).items() if "keepalive" not in k}
    sock = scenario_host.get("socket", {})
    host["socket"] = {k: v for k, v in sock.items() if k == "TCP_USER_TIMEOUT"}
    for k, v in overrides.items():
        section, name = k.split(".", 1)
        host.setdefault(section, {})[name] = v
    return _retx_template_json(json.dumps(host, sort_keys=True), None if rtt_ms is None else float(rtt_ms))


def _host(base: Mapping, side: str) -> Mapping:
    return base.get(side, {}) or {}


RETX_AXES = ("sysctl.net.ipv4.tcp_retries2", "socket.TCP_USER_TIMEOUT")


class Retx(NamedTuple):
    """A segment's fate per block point (see :func:`retx`)."""

    death: np.ndarray        # when the sender gives up [s]
    late: np.ndarray         # how much later the kernel may give up, beyond the sender's own lateness [s]
    by: np.ndarray           # by code of the give-up
    first: np.ndarray        # the first (re)transmission at or after ``back`` [s] (inf: none before the give-up)
    first_late: np.ndarray   # its lateness [s]
    last: np.ndarray         # the last (re)transmission before the give-up [s]
    last_before: np.ndarray  # the last (re)transmission strictly before ``before`` [s] (-inf: none; NaN: not asked)
    next_from: np.ndarray    # the sender's next timer firing at or after ``before``: a (re)transmission, else
    #                          the give-up [s] (NaN: not asked)
    prev: np.ndarray         # the (re)transmission before ``first`` [s] (-inf: none)
    prev_late: np.ndarray    # its lateness [s]
    death_lo: np.ndarray     # the give-up's window over the timing corners [s]: from the earlier of the nominal
    death_hi: np.ndarray     # and the latest corner's give-up to the later of that and ``death + late``
    by_steady: np.ndarray    # the give-up's by is the same at the latest corner
    first_w: np.ndarray      # at the latest corner: the first (re)transmission at or after ``back`` [s] (inf: none)
    death_w: np.ndarray      # at the latest corner: the give-up [s]


def retx(base: Mapping, cols: dict, side: str, t0, back, shape: tuple, retries2: int | None = None,
         before=None, t0_late=0.0) -> Retx:
    """For a segment ``side`` sends at ``t0`` into a path that is back at ``back`` (inf: never).

    ``t0_late``: how much later the segment leaves at the latest timing corner (e.g. ssh's poll slack
    when the check that sends it fires late); the ``_w`` fields are that corner's.

    The schedule comes from :func:`retx_template`, once per distinct (retries2, UT, rtt) of the block.
    ``retries2`` forces ``tcp_retries2`` (the orphan bound).  ``before``: a time per point; the last
    send before it is returned too.
    """
    keys = [f"{side}.{k}" for k in RETX_AXES] + ["path.rtt_ms"]
    host = _host(base, side)
    base_rtt = (base.get("path") or {}).get("rtt_ms")
    present = [k for k in keys if k in cols]
    t0 = np.broadcast_to(np.asarray(t0, dtype=float), shape)
    back = np.broadcast_to(np.asarray(back, dtype=float), shape)
    t0_late = np.broadcast_to(np.asarray(t0_late, dtype=float), shape)
    out = Retx(np.empty(shape), np.empty(shape), np.empty(shape, dtype=np.uint8), np.empty(shape), np.empty(shape),
               np.empty(shape), np.full(shape, np.nan), np.full(shape, np.nan), np.empty(shape), np.empty(shape),
               np.empty(shape), np.empty(shape), np.empty(shape, dtype=bool), np.empty(shape), np.empty(shape))
    before = None if before is None else np.broadcast_to(np.asarray(before, dtype=float), shape)

    def fill(mask, vals):
        ov = {k.split(".", 1)[1]: int(v) for k, v in vals.items() if k != "path.rtt_ms"}
        if retries2 is not None:
            ov["sysctl.net.ipv4.tcp_retries2"] = retries2
        dd, ll, bb, sends, sends_late, dd_w, bb_w, sends_w = retx_template(host, vals.get("path.rtt_ms", base_rtt), ov)
        sends, sends_late, sends_w = np.asarray(sends), np.asarray(sends_late), np.asarray(sends_w)
        t = t0[mask]
        out.death[mask], out.late[mask], out.by[mask] = t + dd, ll, by_code(bb)
        tw = t + t0_late[mask]
        out.death_w[mask] = tw + dd_w
        out.death_lo[mask], out.death_hi[mask] = np.minimum(t + dd, tw + dd_w), np.maximum(t + dd + ll, tw + dd_w)
        out.by_steady[mask] = bb_w == bb
        kw = np.searchsorted(sends_w, back[mask] - tw - 1e-9, side="left")
        out.first_w[mask] = np.where(kw < len(sends_w), tw + sends_w[np.minimum(kw, len(sends_w) - 1)], np.inf)
        k = np.searchsorted(sends, back[mask] - t - 1e-9, side="left")
        found = k < len(sends)
        kp = k - 1                                   # the send before the first one after back (-1: none)
        k = np.minimum(k, len(sends) - 1)
        out.first[mask] = np.where(found, t + sends[k], np.inf)
        out.first_late[mask] = np.where(found, sends_late[k], 0.0)
        out.prev[mask] = np.where(kp >= 0, t + sends[np.maximum(kp, 0)], -np.inf)
        out.prev_late[mask] = np.where(kp >= 0, sends_late[np.maximum(kp, 0)], 0.0)
        out.last[mask] = t + sends[-1]
        if before is not None:
            j = np.searchsorted(sends, before[mask] - t - 1e-9, side="left") - 1
            out.last_before[mask] = np.where(j >= 0, t + sends[np.maximum(j, 0)], -np.inf)
            j = j + 1
            out.next_from[mask] = np.where(j < len(sends), t + sends[np.minimum(j, len(sends) - 1)], t + dd)

    if not present:
        fill(Ellipsis, {})
        return out
    combos = np.stack([np.broadcast_to(cols[k], shape).astype(float).ravel() for k in present], axis=-1)
    uniq, inv = np.unique(combos, axis=0, return_inverse=True)
    inv = inv.reshape(shape)
    for u, row in enumerate(uniq):
        fill(inv == u, dict(zip(present, row)))
    return out


#: The retransmission settings of the client a family may sweep.
RETX_AXES_CLIENT = {f"client.{k}" for k in RETX_AXES}
