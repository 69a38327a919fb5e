"""Run a scenario on the real Linux kernel (and real OpenSSH) in network namespaces.

:func:`run` takes the same scenario as :func:`kalab.simulate` and, once :mod:`kalab.lab.supported`
has admitted it, runs it: the topology (:mod:`kalab.lab.netns`: client, router and server
namespaces; per-namespace sysctls), the router's cut and NAT (:mod:`kalab.lab.router`), the
capture (:mod:`kalab.lab.capture`), the programs (:mod:`kalab.lab.programs`: the socket program
or ``sshd``/``ssh`` of the OpenSSH build each side's ``app.version`` names), then the faults in time
order while reading what the programs say, until every side has reached its end or ``until_s``.  It interprets nothing: what it read goes, as
an :class:`~kalab.lab.measure.Observation`, to :func:`~kalab.lab.measure.measure`, which returns
the result contract plus the wire schedule and metadata.  Root only.

Time: t = 0 is when the connection is established -- the client's ``connect()`` returning (or its
start, for a scenario that starts with ``connect``: for ssh, its first SYN on the wire), or the ssh
session's ready line; the runner
reads CLOCK_MONOTONIC, CLOCK_REALTIME and CLOCK_BOOTTIME together then, so that the measurement
can map program reports and capture times onto t (see :mod:`kalab.lab.measure`).
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
from pathlib import Path

from ..scenario import load
from .capture import Capture, srtt_ms
from .lines import Lines
from .measure import Observation, measure
from .netns import LabStopped, Topology
from .host import openssh_builds
from .programs import (PLAIN_PORT, SSH_PORT, all_settled, reported_t, send_plans, session_command, start_plain,
                       start_ssh_client, start_sshd, typed_text)
from .router import CUTS, IFACES, Router, before_connect, iface_to, schedule
from .supported import admit, openssh_versions


def run(scenario: dict, *, allow_long: bool = False, keep_dir: str | None = None, stop=None) -> dict:
    """Measure a scenario on the real kernel; return the measured result (a dict, the result contract).

    ``stop``: an optional :class:`threading.Event`; setting it (from another thread, e.g. a signal
    handler) ends the run within a fraction of a second with :class:`LabStopped`, after tearing
    everything down -- as any exception or KeyboardInterrupt does (see :mod:`kalab.lab.netns`)."""
    src = copy.deepcopy(scenario)
    sc = load(src)
    ssh = sc.client.app.kind == "ssh"
    horizon = admit(src, ssh=ssh, allow_long=allow_long)
    builds = {}
    if ssh:
        # Each side's OpenSSH build; the scenario as run names the version even where none was given.
        have = openssh_builds()
        for side, v in openssh_versions(src, have).items():
            src[side].setdefault("app", {})["version"] = v
            builds[side] = have[v]
        sc = load(src)
    if stop is not None and stop.is_set():
        raise LabStopped("stopped on request")
    work = Path(keep_dir or tempfile.mkdtemp(prefix="kalab-lab-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        with Topology() as topo:
            return measure(_observe(topo, src, sc, horizon, work, stop, builds))
    finally:
        if keep_dir is None:
            shutil.rmtree(work, ignore_errors=True)


def _observe(topo: Topology, src: dict, sc, horizon: float, work: Path, stop=None,
             builds: dict | None = None) -> Observation:
    """Build the scenario in ``topo``, play it for ``horizon`` seconds from t = 0 (less when every
    side has reached its end), and end every process in both hosts; return what was read.
    ``builds``: each ssh/sshd side's :class:`~kalab.lab.host.OpenSSHBuild`."""
    ssh = sc.client.app.kind == "ssh"
    port = SSH_PORT if ssh else PLAIN_PORT
    # Each new namespace starts from the compile-time defaults: set what the scenario says.
    for side in ("client", "server"):
        for key, value in (src[side].get("sysctl") or {}).items():
            topo.sysctl(side, key, value)
    router = Router(topo)
    router.build(sc.path.middleboxes[0] if sc.path.middleboxes else None)
    lines = Lines(stop)
    capture = Capture(topo, work, lines)
    for iface in IFACES:
        capture.start(iface)

    early = before_connect(sc)   # cuts made before the client connects: its first SYN is lost
    if ssh:
        procs = {"server": start_sshd(topo, src, work, lines, builds["server"])}
        for _ in early:
            router.cut(True)
        t_start = time.monotonic()
        procs["client"] = start_ssh_client(topo, src, work, lines, builds["client"])
        if sc.start == "connect":
            t0 = t_start   # refined to the client's first SYN (measure.py)
        elif session_command(src) is None:
            # ssh -N (SessionType none): no session says it is ready; sshd's log of the accepted key
            # is, and the anchor moves t = 0 to the client's last set-up data before it (measure.py)
            t0, _ = lines.wait_for("server-err", "Accepted publickey for", 20)
        else:
            t0, _ = lines.wait_for("client-out", "kalab-ready", 20)
    else:
        procs = {"server": start_plain(topo, "server", src, lines)}
        lines.wait_for("server", '"listening"', 10)
        for _ in early:
            router.cut(True)
        procs["client"] = start_plain(topo, "client", src, lines)
    # -- t = 0: the three clocks read together, then the programs' own stamp of the moment
    mono0, real0, boot0 = time.monotonic(), time.time(), time.clock_gettime(time.CLOCK_BOOTTIME)
    if not ssh and sc.start == "connect":
        t0, _ = lines.wait_for("client", '"connecting"', 10)
    elif not ssh:
        t0 = reported_t(lines.wait_for("client", '"established"', 10)[1])
        lines.wait_for("server", '"established"', 10)
    real_at_t0 = real0 - (mono0 - t0)
    phase = (boot0 - (mono0 - t0)) % 1.0
    srtt = {side: srtt_ms(topo, side, port) for side in ("client", "server")} if sc.start != "connect" else {}
    if not ssh:
        send_plans(procs, sc, t0, horizon)

    # -- faults, in time order, while reading what the programs say
    deadline = t0 + horizon
    # (CLOCK_MONOTONIC, action, {"side", "index"}); the cuts before connect() count from t = 0.
    faults = [(t0, f.kind, {"side": f.side, "index": i}) for i, f in early]
    actions = schedule(sc)
    # ssh: the client's traffic is typing into the session's terminal (ssh's stdin), at its times
    typing = sorted((at, typed_text(tr.bytes, tr.line, sc.server.app.shell.command_s if sc.server.app.shell else 0))
                    for tr in sc.traffic if ssh and tr.side == "client" for at in tr.times(horizon))
    cut_seen = False
    while True:
        now = time.monotonic()
        if typing and t0 + typing[0][0] <= now:
            _, text = typing.pop(0)
            if procs["client"].poll() is None:
                procs["client"].stdin.write(text)
                procs["client"].stdin.flush()
            continue
        if actions and t0 + actions[0][0] <= now:
            _, what, (i, f) = actions.pop(0)
            if what in CUTS and srtt and not cut_seen:
                # The model keeps srtt constant; what the lost segments' RTO grows from is the
                # estimate at the cut (an RTT sample taken after t = 0 under load moves it).
                cut_seen = True
                srtt.update({k: v for k, v in ((side, srtt_ms(topo, side, port)) for side in srtt) if v})
            faults.append((time.monotonic(), what, {"side": f.side, "index": i}))  # the cut comes first
            router.play(what, f, procs)
            if what == "host_reboot":   # the router's end of the link was rebuilt: capture it again
                capture.start(iface_to(f.side))
            continue
        if now >= deadline:
            break
        nxt = min(deadline, t0 + actions[0][0]) if actions else deadline
        if typing:
            nxt = min(nxt, t0 + typing[0][0])
        lines.poll(min(0.05, nxt - now))
        if all_settled(procs, lines, sc, ssh):
            # Both programs are done; keep watching a little for trailing packets.
            lines.poll(0.3)
            break
    end = time.monotonic()   # observation over: what the teardown causes is not part of the scenario
    exit_codes = {side: p.returncode for side, p in procs.items() if p.poll() is not None}
    # Both hosts' processes at once (the programs and whatever they forked: sshd's session and its
    # command), so that none is orphaned and left to exit on its own (netns.py, issue 12).
    for side in ("client", "server"):
        topo.end_host(side)
    capture.stop()
    return Observation(scenario=sc, source=src, lines=lines.lines, packets=capture.packets(), faults=faults,
                       t0=t0, real_at_t0=real_at_t0, phase=phase, end=end, srtt_ms=srtt,
                       openssh={side: b.ssh_build if side == "client" else b.build
                                for side, b in (builds or {}).items()}, exit_codes=exit_codes)
