"""Fast-forward (kalab.fastforward): a steady state that repeats exactly is jumped over, and the result
is the plain simulation's; what cannot be answered is refused at once, never with a traceback.

The property tests compare, on scenarios small enough to simulate in full, the fast-forwarded run
(``World(..., fast_forward=True)``) with the plain one: the same fates, times, latest times, causes,
and the same events -- every summarised run expanded back into its cycles, each one period later.
"""

import time
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kalab
from kalab import fastforward as ff
from kalab.errors import ScenarioError
from kalab.scenario import Traffic, load
from kalab.simulate import World

KA111 = {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 1, "TCP_KEEPINTVL": 1, "TCP_KEEPCNT": 9}
TOL = 1e-6


def plain_and_fast(sc):
    s = load(sc)
    return World(s, fast_forward=False).run(), World(s, fast_forward=True).run()


def expand(result):
    """The fast-forwarded timeline with every ``repeated`` event replaced by its cycles: copies of
    the cycle just before it, each one period later (``latest_s`` unknown inside the span)."""
    out, reps = [], [r for r in result.repeats if r.events_per_cycle]
    for e in result.events:
        if e.kind == "repeated" and e.layer == "sim":
            r = reps.pop(0)
            assert (r.from_s, r.summary) == (e.t_s, e.detail)
            cycle = out[-r.events_per_cycle:]
            assert len(cycle) == r.events_per_cycle
            for j in range(1, r.cycles + 1):
                out.extend(x._replace(t_s=x.t_s + j * r.period_s, latest_s=None) for x in cycle)
        else:
            out.append(e)
    assert not reps
    return out


def instants(events):
    """Events grouped by instant: the order inside one instant is the engine's tie rule, compared as a set
    (a plain run's own float rounding may order two exactly simultaneous sums either way)."""
    out = []
    for e in events:
        if out and abs(e.t_s - out[-1][0].t_s) <= 1e-9 * max(1.0, abs(e.t_s)):
            out[-1].append(e)
        else:
            out.append([e])
    return out


def assert_same_run(plain, fast):
    for side in ("client", "server"):
        a, b = plain.side(side), fast.side(side)
        assert (a.fate, a.by, a.sees, a.exit_code) == (b.fate, b.by, b.sees, b.exit_code), side
        for x, y in ((a.at_s, b.at_s), (a.latest_s, b.latest_s)):
            assert (x is None) == (y is None) and (x is None or abs(x - y) <= TOL), (side, a, b)
    got = instants(expand(fast))
    want = instants(plain.events)
    assert len(got) == len(want)
    for a, b in zip(want, got):
        assert sorted(e[1:5] for e in a) == sorted(e[1:5] for e in b), (a, b)
        assert abs(a[0].t_s - b[0].t_s) <= TOL, (a, b)
        if all(e.latest_s is not None for e in b):       # outside a summarised span: the same latest times
            assert all(abs(x - y) <= TOL for x, y in zip(sorted(e.latest_s for e in a), sorted(e.latest_s for e in b)))


# ---------------------------------------------------------------------------- scenarios

def host(role, draw):
    h = {}
    os_ = draw(st.sampled_from(["linux"] * 5 + ["macos", "freebsd", "solaris", "windows"]))
    h["os"] = os_
    if os_ == "linux":
        h["hz"] = draw(st.sampled_from([250, 100, 300, 1000]))
        if draw(st.booleans()):
            h["socket"] = {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": draw(st.integers(1, 20)),
                           "TCP_KEEPINTVL": draw(st.integers(1, 8)), "TCP_KEEPCNT": draw(st.integers(1, 5))}
            if draw(st.integers(0, 4)) == 0:
                h["socket"]["TCP_USER_TIMEOUT"] = draw(st.integers(1000, 30000))
    if draw(st.booleans()):
        h["monotime_phase_s"] = draw(st.sampled_from([0.25, 0.5, 0.7, 0.999]))
    if role == "client" and draw(st.booleans()):
        h["app"] = {"kind": "ssh", "options": {"ServerAliveInterval": draw(st.integers(1, 6)),
                                               "ServerAliveCountMax": draw(st.integers(0, 3)),
                                               "TCPKeepAlive": draw(st.sampled_from(["yes", "no"]))}}
    if role == "server" and draw(st.booleans()):
        h["app"] = {"kind": "sshd", "version": draw(st.sampled_from(["9.6", "9.2", "8.1", "7.4"])),
                    "options": {"ClientAliveInterval": draw(st.integers(0, 6)),
                                "ClientAliveCountMax": draw(st.integers(0, 3))}}
    return h


@st.composite
def scenarios(draw):
    until = draw(st.sampled_from([200, 500]))
    sc = {"client": host("client", draw), "server": host("server", draw), "until_s": until,
          "path": {"rtt_ms": draw(st.sampled_from([1, 0.5, 3, 10]))}}
    if draw(st.integers(0, 3)) == 0:
        box = {"kind": "nat", "idle_timeout_s": draw(st.sampled_from([20, 60, 200])),
               "on_expiry": draw(st.sampled_from(["drop", "rst"]))}
        if draw(st.booleans()):
            box["unack_timeout_s"] = draw(st.sampled_from([5, 15]))
        sc["path"]["middleboxes"] = [box]
    traffic = []
    for _ in range(draw(st.integers(0, 2))):
        t = {"at_s": draw(st.integers(0, 100_000)) / 1000, "from": draw(st.sampled_from(["client", "server"]))}
        if draw(st.integers(0, 4)):
            t["every_s"] = draw(st.sampled_from([0.25, 0.5, 0.7, 1, 2, 5, 60]))
            if draw(st.booleans()):
                t["count"] = draw(st.integers(2, 150))
        if draw(st.booleans()):
            t["reply_bytes"] = draw(st.sampled_from([10, 1000]))
        traffic.append(t)
    sc["traffic"] = traffic
    faults = []
    if draw(st.booleans()):
        kind = draw(st.sampled_from(["link_down", "host_crash", "host_reboot", "process_kill", "sleep"]))
        f = {"kind": kind, "at_s": draw(st.integers(0, until * 1000)) / 1000}
        if kind == "link_down":
            f["for_s"] = draw(st.sampled_from([None, 5, 60]))
        else:
            f["side"] = draw(st.sampled_from(["client", "server"]))
        if kind == "host_reboot":
            f["down_s"] = draw(st.sampled_from([5, 60]))
        if kind == "sleep":
            f["for_s"] = draw(st.sampled_from([5, 100]))
        faults.append(f)
    sc["faults"] = faults
    return sc


# ---------------------------------------------------------------------------- exactness

@given(sc=scenarios())
def test_a_fast_forwarded_run_is_the_plain_simulation(sc):
    """Fates, times, latest times and causes equal; the events equal outside every summarised span,
    and inside it the plain run lists exactly N copies of the cycle before it, one period apart."""
    try:
        plain, fast = plain_and_fast(sc)
    except ff.GaveUp:        # no exact cycle within the budget: nothing to compare
        return
    assert_same_run(plain, fast)


STEADY = {
    "answered keepalive probes": {"client": {"socket": KA111}, "server": {}, "until_s": 300},
    "keepalive both ways, different periods": {
        "client": {"socket": dict(KA111, TCP_KEEPIDLE=3)}, "server": {"socket": dict(KA111, TCP_KEEPIDLE=2,
                                                                                      TCP_KEEPINTVL=5)},
        "until_s": 400},
    "ServerAlive behind the kernel's keepalive timer (nested cycles)": {
        "client": {"app": {"kind": "ssh", "options": {"ServerAliveInterval": 1}}},
        "server": {"app": {"kind": "sshd"}, "sysctl": {"net.ipv4.tcp_keepalive_time": 60}}, "until_s": 400},
    "ClientAlive over a 10 ms path (relative waits)": {
        "client": {"app": {"kind": "ssh"}}, "server": {"app": {"kind": "sshd", "options": {"ClientAliveInterval": 3}}},
        "path": {"rtt_ms": 10}, "until_s": 3000},
    "periodic traffic with replies": {"client": {}, "server": {}, "until_s": 300,
                                      "traffic": [{"at_s": 0.3, "every_s": 0.7, "reply_bytes": 10}]},
    "traffic every 4 ms": {"client": {}, "server": {}, "until_s": 3,
                           "traffic": [{"at_s": 0, "every_s": 0.001}]},
    "keepalive through a NAT": {"client": {"socket": dict(KA111, TCP_KEEPIDLE=75, TCP_KEEPINTVL=75)}, "server": {},
                                "path": {"middleboxes": [{"preset": "aws-nat"}]}, "until_s": 50_000},
    "a crash half-way": {"client": {"socket": dict(KA111, TCP_KEEPIDLE=2)}, "server": {}, "until_s": 500,
                         "faults": [{"kind": "host_crash", "side": "server", "at_s": 250.5}]},
    "a close half-way": {"client": {"socket": dict(KA111, TCP_KEEPIDLE=2)}, "server": {}, "until_s": 500,
                         "traffic": [{"at_s": 250.5, "close": True}]},
    "a counted traffic entry that ends": {"client": {}, "server": {}, "until_s": 400,
                                          "traffic": [{"at_s": 0.3, "every_s": 0.5, "count": 300}]},
    "a rare send that waits untouched": {"client": {"socket": KA111}, "server": {}, "until_s": 400,
                                         "traffic": [{"at_s": 100.3, "every_s": 120, "from": "server"}]},
}


@pytest.mark.parametrize("name", STEADY)
def test_a_steady_state_is_jumped_over_and_nothing_else_changes(name):
    plain, fast = plain_and_fast(STEADY[name])
    assert fast.repeats and len(fast.events) < len(plain.events) / 3
    assert_same_run(plain, fast)


def test_lateness_keeps_growing_through_a_jump():
    """A chain of relative kernel timers adds one wheel granularity (32 ms for 1 s at HZ=250) per probe,
    for ever: probe n may go out 0.032 n s late, also after 10^8 cycles were jumped over."""
    r = kalab.simulate({"client": {"socket": KA111}, "server": {}, "until_s": 1e8})
    last = r.events[-1]
    assert (last.kind, last.t_s) == ("keepalive_probe", 1e8)
    assert last.latest_s == pytest.approx(1e8 * 1.032, abs=1e-3)
    assert r.repeats[0].cycles == 99_999_996 and "grow by 0.032 s per cycle" in r.repeats[0].summary


def test_a_jump_stops_before_the_next_fault_and_the_fault_acts_as_at_small_times():
    """A cut at 5e7 s + 0.3: the death after it comes as after the same cut at 100.3 s, to the
    microsecond.  (Not as late at the latest: the probes' lateness has been adding up for 5e7 s.)"""
    def death(cut):
        r = kalab.simulate({"client": {"socket": dict(KA111, TCP_KEEPIDLE=5, TCP_KEEPINTVL=2, TCP_KEEPCNT=3)},
                            "server": {}, "until_s": cut + 100,
                            "faults": [{"kind": "link_down", "at_s": cut, "for_s": None}]})
        return r, r.client.at_s - cut, [(round(e.t_s - cut, 6), e.side, e.kind) for e in r.events if e.t_s >= cut]
    far, near = death(5e7 + 0.3), death(100.3)
    assert far[1] == pytest.approx(near[1], abs=1e-6) and far[2] == near[2] and far[0].client.by == "tcp.keepalive"
    assert far[0].repeats and far[0].repeats[-1].to_s < 5e7 + 0.3


@pytest.mark.parametrize("hz, phase", [(1000, 0.683), (300, 0.1), (250, 0.683), (100, 0.5)])
def test_after_a_jump_to_1e8_s_the_world_acts_as_at_small_times(hz, phase):
    """Jiffies, OpenSSH's whole second and timer arithmetic near 1e8 s (a float's unit in the last place is
    15 ns there): a cut and a crash after ~10^8 s of ssh/sshd alive exchanges and traffic give the
    timeline they give after ~500 s, event for event, to the microsecond."""
    def after(cut):
        r = kalab.simulate({
            "client": {"hz": hz, "monotime_phase_s": phase, "app": {"kind": "ssh", "options": {"ServerAliveInterval": 3}}},
            "server": {"hz": hz, "monotime_phase_s": 0.37, "app": {"kind": "sshd", "options": {"ClientAliveInterval": 2}}},
            "until_s": cut + 200, "traffic": [{"at_s": 0.3, "every_s": 0.7, "from": "server", "reply_bytes": 5}],
            "faults": [{"kind": "link_down", "at_s": cut, "for_s": 3.3},
                       {"kind": "host_crash", "side": "server", "at_s": cut + 20.1}]})
        return [(round(e.t_s - cut, 6), e.side, e.kind, e.detail) for e in r.events if e.t_s >= cut]
    near, far = after(99.7 + 420), after(99.7 + 42 * (99_999_000 // 42))    # same phase of every clock
    assert near == far


# ---------------------------------------------------------------------------- the examples

def answered_or_refused(sc):
    """(result or refusal, CPU seconds, peak bytes): timed without tracemalloc (it slows Python down),
    in this process's CPU time (a shared machine's other work does not count), then run again to
    measure the memory."""
    def run():
        try:
            return kalab.simulate(sc)
        except ScenarioError as e:
            return e
    t0 = time.process_time()
    out = run()
    took = time.process_time() - t0
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, took, peak


def test_an_idle_keepalive_1_1_9_session_for_1e8_s_is_answered_in_under_a_second():
    r, took, peak = answered_or_refused({"client": {"socket": KA111}, "server": {}, "until_s": 1e8})
    assert r.client.fate == "alive" and r.server.fate == "alive"
    assert took < 1.0 and peak < 20e6


def test_server_alive_interval_1_for_1e8_s_is_answered_in_under_a_second():
    r, took, peak = answered_or_refused({"client": {"app": {"kind": "ssh", "options": {"ServerAliveInterval": 1}}},
                                         "server": {"app": {"kind": "sshd"}}, "until_s": 1e8})
    assert r.client.fate == "alive" and r.server.fate == "alive"
    assert any(x.period_s == 7199 for x in r.repeats)     # alive cycles inside the keepalive timer's
    assert took < 1.0 and peak < 20e6


@pytest.mark.parametrize("traffic, answered", [
    ([{"at_s": i / 1000, "every_s": 1} for i in range(1000)], True),           # in step: one 1 s cycle
    ([{"at_s": 0, "every_s": 1 + i / 1000} for i in range(1000)], False),      # never in step
    ([{"at_s": i, "every_s": 1} for i in range(1000)], False),                 # starting one by one
], ids=["in-step", "never-in-step", "staggered-starts"])
def test_1000_repeating_traffic_entries_are_answered_or_refused_in_under_a_second(traffic, answered):
    out, took, peak = answered_or_refused({"client": {}, "server": {}, "traffic": traffic, "until_s": 1e8})
    assert isinstance(out, ScenarioError) != answered
    assert took < 1.0 and peak < 50e6


def test_traffic_every_ms_for_1e8_s_is_answered_without_listing_its_sends():
    out, took, peak = answered_or_refused({"client": {}, "server": {}, "until_s": 1e8,
                                           "traffic": [{"at_s": 0, "every_s": 0.001}]})
    assert out.client.fate == "alive" and out.repeats[0].cycles > 2e10
    assert took < 1.0 and peak < 20e6


def test_traffic_times_are_computed_one_at_a_time():
    tr = Traffic(at_s=0.0, side="client", every_s=0.001)
    tracemalloc.start()
    times = tr.times(1e8)
    assert next(times) == 0.0 and next(times) == 0.001
    # (The send "at 1e8" is 1e11 * 0.001 = 100000000.00000001 in binary: just past until_s, as always.)
    assert tr.send_count(1e8) == 100_000_000_000 and tr.time_of(10**11 - 1) == pytest.approx(1e8 - 0.001)
    assert tracemalloc.get_traced_memory()[1] < 1e6
    tracemalloc.stop()
    assert list(Traffic(at_s=1.0, side="client", every_s=0.5, count=4).times(2.2)) == [1.0, 1.5, 2.0]


# ---------------------------------------------------------------------------- refusals

def test_a_refusal_names_the_estimate_and_the_way_out():
    with pytest.raises(ScenarioError) as e:
        kalab.simulate({"client": {}, "server": {}, "until_s": 86400,
                        "traffic": [{"at_s": 0, "every_s": 1 + i / 1000} for i in range(1000)]})
    err = e.value
    assert err.key == "until_s" and "simulation steps" in str(err) and "at most about" in str(err)
    assert "every_s" in str(err) and "\n" not in str(err)


def test_a_refusal_the_scenario_alone_proves_comes_before_any_simulation(monkeypatch):
    def no_simulation(*a, **k):
        raise AssertionError("simulated before refusing")
    monkeypatch.setattr(ff.Detector, "before", no_simulation)
    monkeypatch.setattr(kalab.engine.Engine, "run", no_simulation)
    with pytest.raises(ScenarioError, match="one by one"):
        kalab.simulate({"client": {}, "server": {}, "traffic": [{"at_s": i, "every_s": 1} for i in range(1000)]})


def test_a_long_run_that_never_settles_is_refused_in_under_a_second():
    """Requests every 4 ms answered with 1000 bytes, a server that sleeps 5 s: queued data keeps the
    state growing, no cycle repeats; about 2 million steps would be needed, so it is refused after
    the fast-forward's budget, not simulated for seconds."""
    out, took, peak = answered_or_refused({
        "client": {"hz": 100, "socket": {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 4, "TCP_KEEPINTVL": 6, "TCP_KEEPCNT": 5}},
        "server": {"hz": 300}, "until_s": 1000,
        "traffic": [{"at_s": 10.156, "every_s": 0.004, "reply_bytes": 1000}],
        "faults": [{"kind": "sleep", "at_s": 52.323, "side": "server", "for_s": 5}]})
    assert isinstance(out, ScenarioError) and "no cycle repeated exactly" in str(out)
    assert took < 1.0 and peak < 50e6


def test_the_step_limit_is_a_refusal_not_a_traceback(monkeypatch):
    monkeypatch.setattr(ff, "MAX_STEPS", 1000)
    sc = load({"client": {"socket": KA111}, "server": {}, "until_s": 300})
    with pytest.raises(ScenarioError, match="until_s"):
        World(sc, fast_forward=False).run()


@given(sc=scenarios())
def test_the_estimate_bounds_the_steps_of_the_plain_simulation(sc):
    """The refusal and the choice of fast-forward rest on it: it is an upper bound."""
    s = load(sc)
    w = World(s, fast_forward=False)
    w.run()
    assert w.engine.steps <= ff.estimate(s).steps


# ---------------------------------------------------------------------------- what the engine guarantees

def test_traffic_keeps_its_place_among_same_instant_events():
    """Scheduled one send at a time, entries still act in list order at the same instant (0.1 * 3 is
    0.30000000000000004 in binary, 0.3 is not: the same instant all the same)."""
    r = kalab.simulate({"client": {}, "server": {}, "until_s": 1,
                        "traffic": [{"at_s": 0.3, "from": "server", "bytes": 7},
                                    {"at_s": 0, "every_s": 0.1, "from": "client", "bytes": 9}]})
    at = [e for e in r.events if e.kind == "send" and abs(e.t_s - 0.3) < 1e-9]
    assert [e.detail for e in at] == ["7 bytes", "9 bytes"]


def test_only_a_fast_forwarded_result_has_repeats():
    r = kalab.simulate({"client": {"socket": KA111}, "server": {}, "until_s": 100})
    assert "repeats" not in r.to_dict() and r.repeats == ()
    r = kalab.simulate({"client": {"socket": KA111}, "server": {}, "until_s": 1e6})
    d = r.to_dict()
    assert [set(x) for x in d["repeats"]] == [{"from_s", "to_s", "period_s", "cycles", "events_per_cycle", "summary"}]
    ev = [e for e in d["events"] if e["kind"] == "repeated"]
    assert len(ev) == 1 and (ev[0]["side"], ev[0]["layer"]) == ("path", "sim")
    assert kalab.simulate({"client": {"socket": KA111}, "server": {}, "until_s": 1e6}).to_json() == r.to_json()
