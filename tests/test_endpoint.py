"""The TCP endpoint on its own (kalab.stack.Endpoint), against a fake host that implements only the
Kernel interface -- the time, kernel timers, transmit, log -- and a program that records what the
socket tells it.  No World, no path, no middleboxes: if the endpoint reached for anything else, these
tests would fail with an AttributeError."""

import math

import pytest

import kalab
from kalab.engine import DELIVER, TIMER, Engine
from kalab.mechanisms import tcp_keepalive as ka
from kalab.scenario import load
from kalab.stack import Endpoint, Kernel, SocketUser
from kalab.units import ceil_ticks
from kalab.wire import Msg, Segment

KA = {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 5, "TCP_KEEPINTVL": 2, "TCP_KEEPCNT": 3}


def settings(**host):
    """A host's settings as the scenario loader makes them (``hz``, ``socket``, ``sysctl``...)."""
    return load({"client": host, "server": {}}).client


class FakeHost:
    """Exactly the Kernel interface, on its own engine; what it sends is kept in ``sent`` and, if
    wired to a peer, delivered ``one_way_s`` later."""

    def __init__(self, side, settings, engine, one_way_s=0.0005):
        self.side, self.settings, self.clock = side, settings, engine
        self._hz, self._one_way_s = settings.hz, one_way_s
        self.sent: list[tuple[float, Segment]] = []
        self.logged: list[tuple[float, str, str]] = []
        self.peer_endpoint: Endpoint | None = None    # (the wire, for two fake hosts)

    def mono(self, t):
        return t

    def jiffies(self, t):
        return math.floor(t * self._hz + 1e-6)

    def kernel_timer(self, delay_s, fn, *args, deadline_late_s=None):
        ticks = max(1, ceil_ticks(delay_s, self._hz))
        return self.clock.at((self.jiffies(self.clock.now) + ticks) / self._hz, TIMER, fn, *args)

    def transmit(self, seg):
        self.sent.append((self.clock.now, seg))
        if self.peer_endpoint is not None:
            self.clock.at_fixed(self.clock.now + self._one_way_s, DELIVER, self.peer_endpoint.receive, seg)

    def log(self, layer, kind, detail=""):
        self.logged.append((self.clock.now, layer, kind))

    def link_up_t(self):
        return None


class Program:
    """Exactly the SocketUser interface: records each call with its time."""

    def __init__(self, engine):
        self.engine, self.calls = engine, []

    def established(self):
        self.calls.append((self.engine.now, "established"))

    def readable(self, msgs):
        self.calls.append((self.engine.now, "readable", [(m.kind, m.nbytes) for m in msgs]))

    def eof(self):
        self.calls.append((self.engine.now, "eof"))

    def error(self, errno, by):
        self.calls.append((self.engine.now, "error", errno, by))


def members(protocol):
    return {n for n in vars(protocol) if not n.startswith("_")} | set(protocol.__annotations__)


def test_the_fakes_are_exactly_the_interfaces():
    """The fakes have what the interfaces name and nothing else public, so a test passing here shows
    the endpoint needs nothing more of its host and its program."""
    e = Engine(100)
    fake = FakeHost("client", settings(), e)
    assert {n for n in vars(FakeHost) | vars(fake) if not n.startswith("_")} - {"sent", "logged", "peer_endpoint"} \
        == members(Kernel)
    assert {n for n in vars(Program) if not n.startswith("_")} == members(SocketUser)


def one(state="ESTABLISHED", until=1000.0, **host):
    e = Engine(until)
    k = FakeHost("client", settings(**host), e)
    user = Program(e)
    ep = Endpoint(k, state, 0.001, user)
    return e, k, user, ep


def kinds(k, kind):
    return [t for t, _, x in k.logged if x == kind]


def test_an_unanswered_keepalive_probes_at_jiffies_and_gives_up_with_an_rst():
    """TCP_KEEPIDLE 5, TCP_KEEPINTVL 2, TCP_KEEPCNT 3: probes at 5, 7, 9 s, death at 11 s (the
    mechanism's closed form), an RST out, ETIMEDOUT to the program -- once."""
    e, k, user, ep = one(socket=KA)
    e.at(0.0, TIMER, ep.start_established)
    e.run(1000)
    assert kinds(k, "keepalive_probe") == [5.0, 7.0, 9.0]
    assert user.calls == [(11.0, "error", "ETIMEDOUT", "tcp.keepalive")]
    assert float(ka.linux_keepalive_death_s(5, 2, 3)) == 11.0
    probes = [s for _, s in k.sent if s.label == "keepalive"]
    assert all(s.seq == ep.snd_una - 1 and not s.length for s in probes)   # seq = snd_una - 1, no data
    assert k.sent[-1][1].rst and ep.state == "CLOSED"


def test_keepalive_counts_from_the_last_segment_received_at_hz_100():
    """An ACK received at 3.0005 s restarts idleness: first probe 5 s later, on a 10 ms jiffy."""
    e, k, user, ep = one(socket=KA, hz=100)
    e.at(0.0, TIMER, ep.start_established)
    e.at(3.0, TIMER, ep.send, Msg("data", 10))
    e.at(3.0005, DELIVER, lambda: ep.receive(Segment("server", "client", ep.rcv_nxt, ep.snd_nxt)))
    e.run(1000)
    assert kinds(k, "keepalive_probe")[0] == pytest.approx(8.0, abs=0.01 + 1e-9)
    assert user.calls[-1][1:] == ("error", "ETIMEDOUT", "tcp.keepalive")


def test_a_peers_keepalive_probe_is_answered_and_does_not_count_as_received():
    """A probe (seq = rcv_nxt - 1) fails the sequence check: dup ACK only, idleness untouched."""
    e, k, user, ep = one(socket=KA)
    e.at(0.0, TIMER, ep.start_established)
    e.at(4.0, DELIVER, lambda: ep.receive(Segment("server", "client", ep.rcv_nxt - 1, ep.snd_nxt,
                                                  label="keepalive")))
    e.run(1000)
    assert [(t, s.label, s.ack) for t, s in k.sent][0] == (4.0, "ack", 1)
    assert kinds(k, "keepalive_probe") == [5.0, 7.0, 9.0]


def test_unacknowledged_data_is_retransmitted_with_backoff_until_tcp_retries2():
    """TLP, then RTOs doubling from 200 ms (tcp_rto_min) on a 1 ms path; the endpoint gives up
    the way a full simulation behind a cut link does, at the same times."""
    sysctl = {"net.ipv4.tcp_retries2": 5}
    e, k, user, ep = one(sysctl=sysctl)
    e.at(0.0, TIMER, ep.start_established)
    e.at(1.0, TIMER, ep.send, Msg("data", 100))
    e.run(1000)
    labels = [s.label for _, s in k.sent]
    assert labels == ["data", "tlp"] + ["retransmit"] * 5
    assert user.calls[-1][1:] == ("error", "ETIMEDOUT", "tcp.retransmission")
    full = kalab.simulate({"client": {"sysctl": sysctl}, "server": {}, "until_s": 1000,
                           "traffic": [{"at_s": 1, "bytes": 100}], "faults": [{"kind": "link_down", "at_s": 0.5}]})
    assert [t for t, _ in k.sent] == [x.t_s for x in full.events if x.side == "client" and
                                      x.kind in ("data_sent", "tlp", "retransmit")]
    assert user.calls[-1][0] == full.client.at_s


def test_an_rst_is_reported_as_econnreset_or_econnrefused():
    e, k, user, ep = one()
    e.at(0.0, TIMER, ep.start_established)
    e.at(2.0, DELIVER, lambda: ep.receive(Segment("server", "client", ep.rcv_nxt, None, rst=True, label="rst")))
    e.run(100)
    assert user.calls == [(2.0, "error", "ECONNRESET", "tcp.reset_received")] and not ep.alive
    e, k, user, ep = one(state="CLOSED")
    e.at(0.0, TIMER, ep.connect)
    e.at(0.001, DELIVER, lambda: ep.receive(Segment("server", "client", 0, 1, rst=True, label="middlebox_rst")))
    e.run(100)
    assert user.calls == [(0.001, "error", "ECONNREFUSED", "middlebox.reset")]


def test_an_unanswered_syn_follows_tcp_syn_retries():
    """Linux 6.1, tcp_syn_retries 2 from a 1 s initial RTO: SYNs at 0, 1, 3 s, ETIMEDOUT at 7 s;
    on 6.18 (tcp_syn_linear_timeouts) the times a full simulation gives."""
    e, k, user, ep = one(state="CLOSED", kernel="6.1", sysctl={"net.ipv4.tcp_syn_retries": 2})
    e.at(0.0, TIMER, ep.connect)
    e.run(100)
    assert [(t, s.label) for t, s in k.sent] == [(0.0, "syn"), (1.0, "syn"), (3.0, "syn")]
    assert user.calls == [(7.0, "error", "ETIMEDOUT", "tcp.syn_timeout")]
    e, k, user, ep = one(state="CLOSED", sysctl={"net.ipv4.tcp_syn_retries": 2})
    e.at(0.0, TIMER, ep.connect)
    e.run(100)
    full = kalab.simulate({"start": "connect", "client": {"sysctl": {"net.ipv4.tcp_syn_retries": 2}}, "server": {},
                           "faults": [{"kind": "link_down", "at_s": 0}], "until_s": 100})
    assert [t for t, _ in k.sent] == [x.t_s for x in full.events if x.kind in ("syn_sent", "syn_retransmit")]
    assert user.calls == [(full.client.at_s, "error", "ETIMEDOUT", "tcp.syn_timeout")]


def pair(**host):
    """Two endpoints on two fake hosts, wired back to back (0.5 ms each way), on one engine."""
    e = Engine(1000)
    kc, ks = FakeHost("client", settings(**host), e), FakeHost("server", settings(**host), e)
    uc, us = Program(e), Program(e)
    c = Endpoint(kc, "CLOSED", 0.001, uc)
    s = Endpoint(ks, "SYN_RECV", 0.001, us)
    kc.peer_endpoint, ks.peer_endpoint = s, c
    return e, (kc, uc, c), (ks, us, s)


def test_a_handshake_data_and_a_close_between_two_endpoints():
    e, (kc, uc, c), (ks, us, s) = pair()
    e.at(0.0, TIMER, c.connect)
    e.at(0.0005, TIMER, lambda: s.accept(kc.sent[0][1]))     # the listener's new socket answers the SYN
    e.at(1.0, TIMER, c.send, Msg("data", 10, reply_bytes=3))
    e.at(1.0, TIMER, c.send, Msg("data", 20))
    e.at(2.0, TIMER, c.close)
    e.run(10)
    assert uc.calls == [(0.001, "established")]
    assert us.calls == [(0.0015, "established"), (1.0005, "readable", [("data", 10)]),
                        (1.0005, "readable", [("data", 20)]), (2.0005, "eof")]
    assert (c.state, s.state) == ("FIN_WAIT_2", "CLOSE_WAIT")           # the server has not closed yet
    e.at(20.0, TIMER, s.close)
    e.run(1000)
    assert (c.state, s.state) == ("CLOSED", "CLOSED")                  # LAST_ACK acknowledged; TIME_WAIT over
    assert kinds(kc, "time_wait") == [20.0005]
    assert kinds(kc, "time_wait_end")[0] == pytest.approx(80.0005, abs=1 / 250)   # 60 s, to the next jiffy
    assert len(uc.calls) == 1                                          # an orderly close: no error to anyone


def test_the_programs_and_the_stack_share_only_the_wire():
    """apps.py does not import stack.py (Msg and Segment are in wire.py); every fault kind has its
    entry in the dispatch table."""
    import ast
    import importlib
    from pathlib import Path

    from kalab.scenario import FAULT_KINDS
    tree = ast.parse((Path(kalab.__file__).parent / "apps.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "stack" not in imported and "wire" in imported
    assert set(importlib.import_module("kalab.simulate").FAULTS) == set(FAULT_KINDS)
