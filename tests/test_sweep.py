"""sweep(): every grid point equals what simulate() says for that scenario.

The vectorized families are proven here against the event simulator on random scenarios and
grids; points outside them are simulated, which is exact by construction.
"""

import contextlib
import math
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kalab
from kalab import ScenarioError, sweep
from kalab.scenario import with_value


def assert_equal_to_simulate(base, axes, res, indices=None):
    keys = list(axes)
    for idx in np.ndindex(*res.shape) if indices is None else indices:
        sc = base
        for k, i in zip(keys, idx):
            v = np.asarray(list(axes[k]))[i]
            sc = with_value(sc, k, v.item() if hasattr(v, "item") else v)
        r = kalab.simulate(sc)
        for side in ("client", "server"):
            want, got = r.side(side), res[side]
            assert got["fate"][idx] == want.fate, (side, idx, sc)
            assert got["by"][idx] == want.by, (side, idx, sc)
            assert got["timing_sensitive"][idx] == want.timing_sensitive, (side, idx, want.timing_detail, sc)
            for field in ("at_s", "latest_s"):
                w, g = getattr(want, field), got[field][idx]
                assert (w is None and math.isnan(g)) or (w is not None and g == pytest.approx(w, abs=1e-6)), \
                    (side, field, idx, g, w, sc)


@contextlib.contextmanager
def every_block_moved(chunk_points=None):
    """kalab.families.grid.versus moves the pivot axes outermost only in blocks of MOVE_MIN_POINTS
    points and more, and the property tests' grids are smaller: this runs them through that layout
    too (and, with ``chunk_points``, cuts the grid into many blocks, which reuse the same scratch
    arrays)."""
    from kalab.families import grid
    ks = sys.modules["kalab.sweep"]
    old = grid.MOVE_MIN_POINTS, ks.CHUNK_POINTS
    grid.MOVE_MIN_POINTS = 0
    ks.CHUNK_POINTS = chunk_points or ks.CHUNK_POINTS
    try:
        yield
    finally:
        grid.MOVE_MIN_POINTS, ks.CHUNK_POINTS = old


def assert_same_when_moved(base, axes, res, idle):
    """The same bytes, every field, when every block is computed in versus's moved layout: the grid
    again with one more axis first, TCP_KEEPIDLE at the base's own value ``idle``, so that the
    compared-against axes (the outage's) are never the outermost and versus moves them."""
    with every_block_moved():
        moved = sweep(base, {"client.socket.TCP_KEEPIDLE": [idle]} | dict(axes))
    for side in ("client", "server"):
        for f in ("at_s", "latest_s", "by", "fate", "timing_sensitive"):
            got = np.asarray(moved.codes(side)[f])[0]
            assert got.tobytes() == np.asarray(res.codes(side)[f]).tobytes(), (side, f)


def keepalive_base(fault, sock, sysctl, rtt_ms, until):
    return {"client": {"socket": dict(sock, SO_KEEPALIVE=1), "sysctl": sysctl}, "server": {},
            "path": {"rtt_ms": rtt_ms}, "faults": [fault], "until_s": until}


faults = st.one_of(
    st.builds(lambda a, d: {"kind": "link_down", "at_s": a, "for_s": d}, st.integers(0, 20),
              st.one_of(st.none(), st.integers(1, 400))),
    st.builds(lambda a: {"kind": "host_crash", "side": "server", "at_s": a}, st.integers(1, 20)),
    st.builds(lambda a, d: {"kind": "host_reboot", "side": "server", "at_s": a, "down_s": d}, st.integers(1, 20),
              st.integers(1, 300)),
)


@given(fault=faults, ut=st.one_of(st.none(), st.integers(0, 400_000)),
       idle=st.lists(st.integers(1, 600), min_size=1, max_size=3, unique=True),
       intvl=st.lists(st.integers(1, 120), min_size=1, max_size=3, unique=True),
       cnt=st.lists(st.integers(1, 12), min_size=1, max_size=2, unique=True),
       rtt=st.sampled_from([0.1, 1.0, 30.0]), until=st.sampled_from([3000, 100_000]),
       via_sysctl=st.booleans())
def test_keepalive_family_equals_simulate(fault, ut, idle, intvl, cnt, rtt, until, via_sysctl):
    sock = {} if ut is None else {"TCP_USER_TIMEOUT": ut}
    base = keepalive_base(fault, sock, {}, rtt, until)
    if via_sysctl:
        axes = {"client.sysctl.net.ipv4.tcp_keepalive_time": idle, "client.sysctl.net.ipv4.tcp_keepalive_intvl": intvl,
                "client.sysctl.net.ipv4.tcp_keepalive_probes": cnt}
    else:
        axes = {"client.socket.TCP_KEEPIDLE": idle, "client.socket.TCP_KEEPINTVL": intvl,
                "client.socket.TCP_KEEPCNT": cnt}
    res = sweep(base, axes)
    assert res.stats["points"] == len(idle) * len(intvl) * len(cnt)
    assert_equal_to_simulate(base, axes, res)


@given(idle=st.integers(1, 200), cnt=st.integers(1, 9), outages=st.lists(st.integers(1, 2000), min_size=1,
       max_size=5, unique=True), starts=st.lists(st.integers(0, 250), min_size=1, max_size=3, unique=True))
def test_outage_axes_equal_simulate(idle, cnt, outages, starts):
    base = keepalive_base({"kind": "link_down", "at_s": 1, "for_s": 10},
                          {"TCP_KEEPIDLE": idle, "TCP_KEEPINTVL": 10, "TCP_KEEPCNT": cnt}, {}, 1.0, 50_000)
    axes = {"faults.0.for_s": outages, "faults.0.at_s": starts}
    res = sweep(base, axes)
    assert_equal_to_simulate(base, axes, res)
    assert_same_when_moved(base, axes, res, idle)


def check_family(base, axes, family):
    res = sweep(base, axes)
    assert res.stats["family"] == family
    assert_equal_to_simulate(base, axes, res)
    return res


@given(ut=st.one_of(st.none(), st.integers(1, 400_000)), r2=st.lists(st.integers(1, 15), min_size=1, max_size=3,
       unique=True), send=st.lists(st.integers(1, 100), min_size=1, max_size=3, unique=True),
       outage=st.one_of(st.none(), st.lists(st.integers(1, 3000), min_size=1, max_size=4, unique=True)),
       a=st.integers(0, 10), rtt=st.sampled_from([0.1, 1.0, 30.0]), until=st.sampled_from([500, 100_000]))
def test_retransmission_family_equals_simulate(ut, r2, send, outage, a, rtt, until):
    """Data in flight into a dead link: RTO backoff, TLP, tcp_retries2 or TCP_USER_TIMEOUT; transient outages survived."""
    base = {"client": {"socket": {} if ut is None else {"TCP_USER_TIMEOUT": ut}}, "server": {},
            "path": {"rtt_ms": rtt}, "traffic": [{"at_s": 1, "from": "client"}],
            "faults": [{"kind": "link_down", "at_s": a}], "until_s": until}
    axes = {"client.sysctl.net.ipv4.tcp_retries2": r2, "traffic.0.at_s": [s + a for s in send]}
    if outage is not None:
        axes["faults.0.for_s"] = outage
    check_family(base, axes, "retransmission")

@given(ut=st.one_of(st.none(), st.integers(1, 400_000)), r2=st.lists(st.integers(1, 15), min_size=1, max_size=3,
       unique=True), send=st.lists(st.integers(0, 100), min_size=1, max_size=3, unique=True),
       down=st.lists(st.integers(1, 3000), min_size=1, max_size=4, unique=True), a=st.integers(1, 10),
       kind=st.sampled_from(["host_crash", "host_reboot"]), rtt=st.sampled_from([0.1, 1.0, 30.0]),
       until=st.sampled_from([500, 100_000]))
def test_retransmission_family_with_a_crashed_or_rebooted_server_equals_simulate(ut, r2, send, down, a, kind, rtt,
                                                                                 until):
    """Data in flight to a server that crashed (silent for good) or rebooted (the first segment after it
    is back is answered with RST): the same schedule, a different end."""
    fault = {"kind": kind, "side": "server", "at_s": a}
    if kind == "host_reboot":
        fault["down_s"] = 10
    base = {"client": {"socket": {} if ut is None else {"TCP_USER_TIMEOUT": ut}}, "server": {},
            "path": {"rtt_ms": rtt}, "traffic": [{"at_s": a, "from": "client"}], "faults": [fault], "until_s": until}
    axes = {"client.sysctl.net.ipv4.tcp_retries2": r2, "traffic.0.at_s": [s + a for s in send]}
    if kind == "host_reboot":
        axes["faults.0.down_s"] = down
    check_family(base, axes, "retransmission")


@given(interval=st.lists(st.integers(1, 400), min_size=1, max_size=3, unique=True),
       count=st.lists(st.integers(0, 6), min_size=1, max_size=3, unique=True),
       outage=st.one_of(st.none(), st.lists(st.integers(1, 5000), min_size=1, max_size=4, unique=True)),
       a=st.integers(0, 3), r2=st.one_of(st.none(), st.integers(3, 15)), tcpka=st.booleans(),
       until=st.sampled_from([600, 20_000]))
def test_ssh_alive_family_equals_simulate(interval, count, outage, a, r2, tcpka, until):
    """ServerAlive (whole seconds), its messages' own retransmission death, transient outages, the server's keepalive."""
    base = {"client": {"app": {"kind": "ssh", "options": {"ServerAliveInterval": 15, "TCPKeepAlive": tcpka}}},
            "server": {"app": {"kind": "sshd", "options": {"TCPKeepAlive": tcpka}},
                       "sysctl": {"net.ipv4.tcp_keepalive_time": 900}},
            "faults": [{"kind": "link_down", "at_s": a}], "until_s": until}
    if r2 is not None:
        base["client"]["sysctl"] = {"net.ipv4.tcp_retries2": r2}
    axes = {"client.app.options.ServerAliveInterval": interval, "client.app.options.ServerAliveCountMax": count}
    if outage is not None:
        axes["faults.0.for_s"] = outage
    check_family(base, axes, "ssh_alive")


@given(interval=st.lists(st.integers(1, 400), min_size=1, max_size=3, unique=True),
       count=st.lists(st.integers(0, 6), min_size=1, max_size=3, unique=True),
       down=st.lists(st.integers(1, 5000), min_size=1, max_size=4, unique=True), a=st.integers(1, 3),
       kind=st.sampled_from(["host_crash", "host_reboot"]), r2=st.one_of(st.none(), st.integers(3, 15)),
       rtt=st.sampled_from([1.0, 50.0]), until=st.sampled_from([600, 20_000]))
def test_ssh_alive_family_with_a_crashed_or_rebooted_server_equals_simulate(interval, count, down, a, kind, r2, rtt,
                                                                            until):
    """ServerAlive against a crashed server (as a link lost for good) or a rebooted one, whose RST
    answers the first keepalive message that reaches it once it is back."""
    fault = {"kind": kind, "side": "server", "at_s": a}
    if kind == "host_reboot":
        fault["down_s"] = 10
    base = {"client": {"app": {"kind": "ssh", "options": {"ServerAliveInterval": 15}}},
            "server": {"app": {"kind": "sshd"}}, "path": {"rtt_ms": rtt}, "faults": [fault], "until_s": until}
    if r2 is not None:
        base["client"]["sysctl"] = {"net.ipv4.tcp_retries2": r2}
    axes = {"client.app.options.ServerAliveInterval": interval, "client.app.options.ServerAliveCountMax": count}
    if kind == "host_reboot":
        axes["faults.0.down_s"] = down
    check_family(base, axes, "ssh_alive")


@given(interval=st.lists(st.integers(1, 300), min_size=1, max_size=3, unique=True),
       count=st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True),
       version=st.sampled_from(["7.4", "8.1", "8.9", "9.2", "9.3", "9.6"]), a=st.integers(0, 3),
       r2=st.lists(st.integers(3, 15), min_size=1, max_size=2, unique=True), client=st.sampled_from(["plain", "ssh"]),
       until=st.sampled_from([900, 20_000]))
def test_sshd_alive_family_equals_simulate(interval, count, version, a, r2, client, until):
    """ClientAlive per OpenSSH version (9.2-9.4 probe every 2 I; CountMax 0), with the probes' retransmission death."""
    base = {"client": {"app": {"kind": client}}, "server": {"app": {"kind": "sshd", "version": version,
                                                                     "options": {"ClientAliveInterval": 10}}},
            "faults": [{"kind": "link_down", "at_s": a}], "until_s": until}
    axes = {"server.app.options.ClientAliveInterval": interval, "server.app.options.ClientAliveCountMax": count,
            "server.sysctl.net.ipv4.tcp_retries2": r2}
    check_family(base, axes, "sshd_alive")

@given(interval=st.lists(st.integers(1, 300), min_size=1, max_size=3, unique=True),
       count=st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True),
       version=st.sampled_from(["7.4", "8.1", "9.2", "9.6"]), a=st.integers(1, 3),
       kind=st.sampled_from(["host_crash", "host_reboot"]),
       down=st.lists(st.integers(1, 3000), min_size=1, max_size=3, unique=True), rtt=st.sampled_from([1.0, 50.0]),
       until=st.sampled_from([900, 20_000]))
def test_sshd_alive_family_with_a_crashed_or_rebooted_client_equals_simulate(interval, count, version, a, kind, down,
                                                                             rtt, until):
    """ClientAlive towards a client that crashed (silent for good) or rebooted (its RST answers the
    first probe that reaches it once it is back)."""
    fault = {"kind": kind, "side": "client", "at_s": a}
    if kind == "host_reboot":
        fault["down_s"] = 10
    base = {"client": {"app": {"kind": "ssh"}}, "server": {"app": {"kind": "sshd", "version": version,
                                                                    "options": {"ClientAliveInterval": 10}}},
            "path": {"rtt_ms": rtt}, "faults": [fault], "until_s": until}
    axes = {"server.app.options.ClientAliveInterval": interval, "server.app.options.ClientAliveCountMax": count}
    if kind == "host_reboot":
        axes["faults.0.down_s"] = down
    check_family(base, axes, "sshd_alive")


@given(idle=st.lists(st.integers(1, 900), min_size=1, max_size=4, unique=True),
       timeout=st.lists(st.integers(60, 900), min_size=1, max_size=3, unique=True),
       cnt=st.integers(1, 9), intvl=st.integers(1, 90), on_expiry=st.sampled_from(["drop", "rst"]),
       ut=st.one_of(st.none(), st.integers(1000, 900_000)), rtt=st.sampled_from([1.0, 80.0]),
       until=st.sampled_from([1200, 50_000]))
def test_middlebox_family_equals_simulate(idle, timeout, cnt, intvl, on_expiry, ut, rtt, until):
    """A NAT idle timer against keepalive: refreshed by probes, dropping or resetting once expired."""
    sock = {"SO_KEEPALIVE": 1, "TCP_KEEPINTVL": intvl, "TCP_KEEPCNT": cnt}
    if ut is not None:
        sock["TCP_USER_TIMEOUT"] = ut
    base = {"client": {"socket": sock}, "server": {}, "path": {"rtt_ms": rtt, "middleboxes": [
        {"kind": "nat", "idle_timeout_s": 300, "on_expiry": on_expiry}]}, "until_s": until}
    axes = {"client.socket.TCP_KEEPIDLE": idle, "path.middleboxes.0.idle_timeout_s": timeout}
    check_family(base, axes, "middlebox")


@pytest.mark.parametrize("base,axes", [
    ({"client": {"app": {"kind": "telnet"}}, "server": {"app": {"kind": "telnetd"}},
      "faults": [{"kind": "link_down", "at_s": 1}], "until_s": 9000},
     {"server.sysctl.net.ipv4.tcp_keepalive_time": [100, 400]}),
    ({"client": {"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 100}}, "server": {},
      "faults": [{"kind": "sleep", "side": "client", "at_s": 5, "for_s": 50}], "until_s": 3000},
     {"client.socket.TCP_KEEPIDLE": [30, 100]}),
])
def test_points_outside_the_families_are_simulated(base, axes):
    res = sweep(base, axes)
    assert res.stats["family"] is None and res.stats["simulated"] == res.stats["points"]
    assert_equal_to_simulate(base, axes, res)


def test_result_is_labelled_and_shaped_in_axis_order():
    base = keepalive_base({"kind": "link_down", "at_s": 1, "for_s": None}, {}, {}, 1.0, 100_000)
    res = sweep(base, {"client.socket.TCP_KEEPIDLE": np.arange(1, 11), "client.socket.TCP_KEEPCNT": range(1, 4)})
    assert res.shape == (10, 3) and res["client"]["at_s"].shape == (10, 3)
    assert [a.key for a in res.axes] == ["client.socket.TCP_KEEPIDLE", "client.socket.TCP_KEEPCNT"]
    assert res.axes[0].unit == "s" and res.axes[1].unit == "count"
    assert res["client"]["at_s"][0, 0] == 1 + 75 and res["client"]["by"][0, 0] == "tcp.keepalive"
    assert np.isnan(res["server"]["at_s"]).all() and (res["server"]["fate"] == "half_open").all()


@pytest.mark.parametrize("axes,key,fragment", [
    ({"client.socket.TCP_KEEPIDEL": [1]}, "client.socket.TCP_KEEPIDEL", "did you mean 'TCP_KEEPIDLE'"),
    ({"client.socket.TCP_KEEPIDLE": []}, "client.socket.TCP_KEEPIDLE", "non-empty"),
    ({"client.socket.TCP_KEEPIDLE": [10, 40000]}, "client.socket.TCP_KEEPIDLE", "1..32767"),
    ({"client.socket.TCP_KEEPCNT": [0, 3]}, "client.socket.TCP_KEEPCNT", "1..127"),
    ({"client.socket.TCP_KEEPIDLE": [1, 2.5, 3]}, "client.socket.TCP_KEEPIDLE", "whole number"),
    ({"client.hz": [100, 200, 1000]}, "client.hz", "200"),
    ({"faults.0.for_s": [5, float("nan")]}, "faults.0.for_s", "finite"),
])
def test_bad_axes_get_the_same_errors_as_scenarios(axes, key, fragment):
    """Numeric settings are ranges: the ends and the first fractional value are checked (hz, a choice: all)."""
    with pytest.raises(ScenarioError) as e:
        sweep({"client": {"socket": {"SO_KEEPALIVE": 1}}, "server": {},
               "faults": [{"kind": "link_down", "at_s": 1, "for_s": 10}]}, axes)
    assert e.value.key == key and fragment in str(e.value)


def test_select_and_plots():
    from kalab import plot
    base = keepalive_base({"kind": "host_crash", "side": "server", "at_s": 1}, {}, {}, 1.0, 100_000)
    axes = {"client.socket.TCP_KEEPIDLE": np.arange(1, 31), "client.socket.TCP_KEEPINTVL": np.arange(1, 11),
            "client.socket.TCP_KEEPCNT": [2, 3]}
    res = sweep(base, axes)
    z = res.select("client", "at_s", ["client.socket.TCP_KEEPINTVL", "client.socket.TCP_KEEPIDLE"],
                   {"client.socket.TCP_KEEPCNT": 3})
    assert z.shape == (10, 30) and z[0, 0] == 1 + 3 * 1
    heat = plot.sweep_heatmap(res, "client.socket.TCP_KEEPIDLE", "client.socket.TCP_KEEPINTVL", limits=(30, 60),
                              fixed={"client.socket.TCP_KEEPCNT": 3})
    assert len(heat.data) == 3 and heat.layout.xaxis.title.text == "TCP_KEEPIDLE [s]"
    line = plot.sweep_line(res, "client.socket.TCP_KEEPIDLE", fixed={"client.socket.TCP_KEEPINTVL": 5})
    assert list(line.data[0].y) == list(res.select("client", "at_s", ["client.socket.TCP_KEEPIDLE"],
                                                   {"client.socket.TCP_KEEPINTVL": 5}))


def test_to_pandas_gives_a_frame_or_says_pandas_is_needed():
    """pandas is optional: a DataFrame when it is installed, a clear ImportError otherwise."""
    import importlib.util
    base = keepalive_base({"kind": "link_down", "at_s": 1, "for_s": None}, {}, {}, 1.0, 100_000)
    res = sweep(base, {"client.socket.TCP_KEEPIDLE": [5, 10]})
    if importlib.util.find_spec("pandas") is None:
        with pytest.raises(ImportError, match="pip install pandas"):
            res.to_pandas()
    else:
        df = res.to_pandas()
        assert len(df) == 2 and "client.at_s" in df


def test_out_directory_gives_the_same_answer_memory_mapped(tmp_path):
    """sweep(out=DIR) writes the arrays slab by slab and returns them memory-mapped: same values."""
    base = keepalive_base({"kind": "host_reboot", "side": "server", "at_s": 2, "down_s": 30}, {}, {}, 1.0, 100_000)
    axes = {"client.socket.TCP_KEEPIDLE": [1, 5, 50], "client.socket.TCP_KEEPINTVL": np.arange(1, 40, 3),
            "client.socket.TCP_KEEPCNT": [1, 5]}
    mem = sweep(base, axes)
    disk = sweep(base, axes, out=str(tmp_path), chunk_points=7)
    assert isinstance(disk["client"]["at_s"], np.ndarray) and (tmp_path / "client.at_s.npy").exists()
    assert mem.stats["simulated"] > 0           # at_s 2 > idle 1: some points are simulated
    for side in ("client", "server"):
        for field in ("at_s", "latest_s"):
            np.testing.assert_array_equal(mem[side][field], disk[side][field])
        for field in ("by", "fate", "timing_sensitive"):
            assert (mem[side][field] == disk[side][field]).all()


SSH = {"client": {"app": {"kind": "ssh", "options": {"ServerAliveInterval": 15}}}, "server": {"app": {"kind": "sshd"}},
       "faults": [{"kind": "link_down", "at_s": 1}], "until_s": 20000}


@pytest.mark.parametrize("family,base,axes", [
    ("keepalive", keepalive_base({"kind": "link_down", "at_s": 1, "for_s": 60}, {}, {}, 1.0, 100_000),
     {"client.socket.TCP_KEEPIDLE": range(1, 60), "client.socket.TCP_KEEPCNT": range(1, 10)}),
    ("retransmission", {"client": {}, "server": {}, "traffic": [{"at_s": 1, "from": "client"}],
                        "faults": [{"kind": "link_down", "at_s": 1}], "until_s": 100000},
     {"client.sysctl.net.ipv4.tcp_retries2": range(3, 16), "faults.0.for_s": np.arange(1, 2000, 37)}),
    ("ssh_alive", SSH, {"client.app.options.ServerAliveInterval": range(1, 120, 3),
                        "client.app.options.ServerAliveCountMax": range(0, 11), "faults.0.for_s": np.arange(1, 3000, 61)}),
    ("sshd_alive", {"client": {"app": {"kind": "ssh"}}, "server": {"app": {"kind": "sshd",
                    "options": {"ClientAliveInterval": 10}}}, "faults": [{"kind": "link_down", "at_s": 1}],
                    "until_s": 20000},
     {"server.app.options.ClientAliveInterval": range(1, 300, 7), "server.app.options.ClientAliveCountMax": range(0, 11)}),
    ("middlebox", {"client": {"socket": {"SO_KEEPALIVE": 1}}, "server": {},
                   "path": {"middleboxes": [{"preset": "aws-nat"}]}, "until_s": 20000},
     {"client.socket.TCP_KEEPIDLE": range(1, 1000, 7), "client.socket.TCP_KEEPCNT": range(1, 10)}),
])
def test_common_grids_are_computed_by_their_family(family, base, axes):
    """The closed forms carry the everyday grids (>= 95 % of points); the rest is simulated, exactly."""
    res = sweep(base, axes)
    assert res.stats["family"] == family
    assert res.stats["vectorized"] >= 0.95 * res.stats["points"], res.stats


@st.composite
def any_family_grid(draw):
    """A random scenario and grid from any family -- or from none (then every point is simulated)."""
    kind = draw(st.sampled_from(["keepalive", "reboot", "retransmission", "ssh", "sshd", "nat", "outside"]))
    small = st.lists(st.integers(1, 200), min_size=1, max_size=3, unique=True)
    outage = st.one_of(st.none(), st.integers(1, 2000))
    if kind in ("keepalive", "reboot"):
        fault = ({"kind": "link_down", "at_s": draw(st.integers(0, 5)), "for_s": draw(outage)} if kind == "keepalive"
                 else {"kind": "host_reboot", "side": "server", "at_s": draw(st.integers(1, 5)),
                       "down_s": draw(st.integers(1, 300))})
        sock = {"SO_KEEPALIVE": 1}
        if draw(st.booleans()):
            sock["TCP_USER_TIMEOUT"] = draw(st.integers(1000, 600_000))
        base = {"client": {"socket": sock}, "server": {}, "faults": [fault], "until_s": 50_000}
        return base, {"client.socket.TCP_KEEPIDLE": draw(small), "client.socket.TCP_KEEPINTVL": draw(small),
                      "client.socket.TCP_KEEPCNT": draw(st.lists(st.integers(1, 9), min_size=1, max_size=2, unique=True))}
    peer_fault = st.sampled_from(["link_down", "host_crash", "host_reboot"])

    def lost(side: str, at_s: int) -> dict:
        """A link down (transient or not), or ``side`` crashing or rebooting."""
        k = draw(peer_fault)
        if k == "link_down":
            return {"kind": k, "at_s": at_s, "for_s": draw(outage)}
        f = {"kind": k, "side": side, "at_s": at_s}
        if k == "host_reboot":
            f["down_s"] = draw(st.integers(1, 2000))
        return f

    if kind == "retransmission":
        base = {"client": {}, "server": {}, "traffic": [{"at_s": 5, "from": "client"}],
                "faults": [lost("server", 2)], "until_s": 50_000}
        return base, {"client.sysctl.net.ipv4.tcp_retries2": draw(st.lists(st.integers(1, 15), min_size=1, max_size=3,
                                                                            unique=True)),
                      "client.socket.TCP_USER_TIMEOUT": draw(st.lists(st.integers(0, 900_000), min_size=1, max_size=2,
                                                                       unique=True))}
    if kind == "ssh":
        base = {"client": {"app": {"kind": "ssh"}}, "server": {"app": {"kind": "sshd"}},
                "faults": [lost("server", 1)], "until_s": 20_000}
        return base, {"client.app.options.ServerAliveInterval": draw(small),
                      "client.app.options.ServerAliveCountMax": draw(st.lists(st.integers(0, 5), min_size=1,
                                                                              max_size=3, unique=True))}
    if kind == "sshd":
        base = {"client": {"app": {"kind": "ssh"}}, "server": {"app": {"kind": "sshd", "version": draw(
            st.sampled_from(["8.1", "9.2", "9.6"]))}}, "faults": [lost("client", 1)], "until_s": 20_000}
        return base, {"server.app.options.ClientAliveInterval": draw(small),
                      "server.app.options.ClientAliveCountMax": draw(st.lists(st.integers(0, 5), min_size=1,
                                                                              max_size=3, unique=True))}
    if kind == "nat":
        base = {"client": {"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPINTVL": draw(st.integers(1, 60))}}, "server": {},
                "path": {"middleboxes": [{"preset": draw(st.sampled_from(["aws-nat", "azure-lb", "gcp-cloud-nat"]))}]},
                "until_s": 10_000}
        return base, {"client.socket.TCP_KEEPIDLE": draw(st.lists(st.integers(1, 1500), min_size=1, max_size=4,
                                                                   unique=True))}
    # outside every family: ssh through a NAT, a sleeping laptop
    base = {"client": {"app": {"kind": "ssh", "options": {"ServerAliveInterval": 30}}}, "server": {"app": {"kind": "sshd"}},
            "faults": [{"kind": "sleep", "side": "client", "at_s": 5, "for_s": draw(st.integers(1, 600))}],
            "path": {"middleboxes": [{"preset": "azure-lb"}]}, "until_s": 5000}
    return base, {"client.app.options.ServerAliveInterval": draw(st.lists(st.integers(5, 300), min_size=1, max_size=2,
                                                                          unique=True))}


@given(any_family_grid())
def test_sweep_equals_simulate_on_random_scenarios_of_every_family(grid):
    """The issue's property: random scenarios and grids (keepalive, TCP_USER_TIMEOUT, data in flight,
    ssh/sshd alive, NAT expiry, transient and permanent outages, reboots), point by point."""
    base, axes = grid
    assert_equal_to_simulate(base, axes, sweep(base, axes))


def test_a_result_too_big_for_memory_is_refused_before_anything_is_allocated(tmp_path):
    """Without out=DIR the result lives in memory (38 bytes a point): past the budget (1 GiB) the sweep
    says so and how to proceed, instead of being killed for memory half-way."""
    base = keepalive_base({"kind": "link_down", "at_s": 1, "for_s": None}, {}, {}, 1.0, 100_000)
    axes = {"client.socket.TCP_KEEPIDLE": np.arange(1, 1001), "client.socket.TCP_KEEPINTVL": np.arange(1, 1001),
            "client.socket.TCP_KEEPCNT": np.arange(1, 101)}                       # 10^8 points: 3.5 GiB
    with pytest.raises(ValueError, match=r"100,000,000 points.*3\.5 GiB.*pass out=DIR"):
        sweep(base, axes)
    small = {"client.socket.TCP_KEEPIDLE": [1, 2], "client.socket.TCP_KEEPCNT": [1, 2]}
    with pytest.raises(ValueError, match="out=DIR"):
        sweep(base, small, max_result_bytes=100)
    assert sweep(base, small, out=str(tmp_path), max_result_bytes=100).shape == (2, 2)


def test_progress_only_for_sweeps_that_take_a_while(capsys, monkeypatch):
    """The fallback's progress line (stderr) appears once a sweep has run PROGRESS_AFTER_S; quick
    sweeps print nothing; progress=True forces it, progress=False silences it."""
    import sys
    ks = sys.modules["kalab.sweep"]                # (kalab.sweep the function hides the module)
    base = {"client": {"app": {"kind": "ssh"}, "monotime_phase_s": 0.5}, "server": {"app": {"kind": "sshd"}},
            "faults": [{"kind": "link_down", "at_s": 1}], "until_s": 2000}      # outside every family
    axes = {"client.app.options.ServerAliveInterval": np.arange(1, 21)}
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)      # as on a terminal
    sweep(base, axes)
    assert capsys.readouterr().err == ""
    sweep(base, axes, progress=True)
    assert "20/20 grid points, 20 simulated" in capsys.readouterr().err
    monkeypatch.setattr(ks, "PROGRESS_AFTER_S", 0.0)
    sweep(base, axes)
    assert "20/20 grid points" in capsys.readouterr().err
    sweep(base, axes, progress=False)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------- timing (kalab.timing)

@given(idle=st.lists(st.integers(1, 400), min_size=1, max_size=6, unique=True),
       intvl=st.lists(st.integers(1, 90), min_size=1, max_size=2, unique=True),
       timeout=st.lists(st.integers(5, 420), min_size=1, max_size=4, unique=True),
       on_expiry=st.sampled_from(["rst", "drop"]), rtt=st.sampled_from([1.0, 50.0]),
       until=st.sampled_from([60, 2000]))
def test_the_middlebox_family_says_where_the_kernels_lateness_decides_as_simulate_does(idle, intvl, timeout, on_expiry,
                                                                                   rtt, until):
    """The knife-edge: the first probe at keepidle, at the latest one wheel granularity later, against
    the NAT's idle timeout.  timing_sensitive per side, equal to simulate() at every point."""
    base = {"client": {"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPCNT": 3}}, "server": {}, "path": {
        "rtt_ms": rtt, "middleboxes": [{"kind": "nat", "idle_timeout_s": 30, "on_expiry": on_expiry}]}, "until_s": until}
    axes = {"client.socket.TCP_KEEPIDLE": idle, "client.socket.TCP_KEEPINTVL": intvl,
            "path.middleboxes.0.idle_timeout_s": timeout}
    check_family(base, axes, "middlebox")


def test_the_middlebox_family_computes_the_knife_edge_itself():
    """keepidle 20 s behind NATs of 19..24 s (the lab's knife-edge is 21 s): the 20 s timer may fire up to
    22.048 s, so 20.5, 21 and 22 s flip; the family says so without simulating those points."""
    base = {"client": {"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPINTVL": 1, "TCP_KEEPCNT": 3}}, "server": {},
            "path": {"middleboxes": [{"kind": "nat", "idle_timeout_s": 21, "on_expiry": "rst"}]}, "until_s": 40}
    axes = {"client.socket.TCP_KEEPIDLE": [20], "path.middleboxes.0.idle_timeout_s": [19, 20.5, 21, 22, 23, 24]}
    res = check_family(base, axes, "middlebox")
    assert res["client"]["timing_sensitive"][0].tolist() == [False, True, True, True, False, False]
    assert res["client"]["fate"][0].tolist() == ["died", "alive", "alive", "alive", "alive", "alive"]
    assert res.stats["simulated"] == 0


@given(idle=st.integers(5, 200), cnt=st.integers(1, 4), back=st.lists(st.floats(1, 600), min_size=1, max_size=8),
       ut=st.sampled_from([None, 30_000, 90_000]), until=st.sampled_from([100, 400, 5000]))
def test_keepalive_outages_near_a_probes_window_are_timing_sensitive_exactly_as_simulate_says(idle, cnt, back, ut,
                                                                                             until):
    """Outages that end inside a probe's wheel window, user timeouts and run ends near a firing."""
    sock = {"TCP_KEEPIDLE": idle, "TCP_KEEPINTVL": 7, "TCP_KEEPCNT": cnt}
    if ut is not None:
        sock["TCP_USER_TIMEOUT"] = ut
    base = keepalive_base({"kind": "link_down", "at_s": 1, "for_s": 10}, sock, {}, 1.0, until)
    axes = {"faults.0.for_s": sorted(set(round(b, 3) for b in back))}
    res = sweep(base, axes)
    assert_equal_to_simulate(base, axes, res)
    assert_same_when_moved(base, axes, res, idle)


def test_the_region_map_shows_where_timing_decides():
    from kalab.plot import REGION_LABELS, sweep_regions
    base = {"client": {"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPINTVL": 1, "TCP_KEEPCNT": 3}}, "server": {},
            "path": {"middleboxes": [{"kind": "nat", "idle_timeout_s": 21, "on_expiry": "rst"}]}, "until_s": 60}
    fail = dict(base, faults=[{"kind": "link_down", "at_s": 1}])
    axes = {"client.socket.TCP_KEEPIDLE": [18, 20, 25], "path.middleboxes.0.idle_timeout_s": [21, 30]}
    codes = sweep_regions(sweep(fail, axes), sweep(base, axes), "client.socket.TCP_KEEPIDLE",
                          "path.middleboxes.0.idle_timeout_s", detect_within_s=40)
    assert REGION_LABELS[3].startswith("depends on timing")
    assert codes[0].tolist()[1] == 3        # keepidle 20 s behind a 21 s NAT


@pytest.mark.parametrize("fault,pivot", [
    ({"kind": "link_down", "at_s": 1, "for_s": 60}, {"faults.0.for_s": [3, 9.5, 40, 41.02, 88, 120, 300, 1000.25]}),
    ({"kind": "link_down", "at_s": 1, "for_s": 60}, {"path.rtt_ms": [0.2, 5, 80, 300], "until_s": [150, 400, 9000]}),
    ({"kind": "host_reboot", "side": "server", "at_s": 2, "down_s": 60},
     {"faults.0.down_s": [5, 30, 61, 119.5, 400], "path.rtt_ms": [0.2, 30, 250]}),
    ({"kind": "host_reboot", "side": "server", "at_s": 2, "down_s": 60}, {"faults.0.down_s": [5, 30, 61, 119.5, 400]}),
    ({"kind": "host_reboot", "side": "server", "at_s": 2, "down_s": 60},
     {"faults.0.down_s": [5, 30, 61, 119.5, 400], "until_s": [80, 300, 20_000]}),
    ({"kind": "host_crash", "side": "server", "at_s": 2}, {"path.rtt_ms": [1, 40], "until_s": [90, 700, 50_000]}),
])
def test_the_keepalive_family_in_many_moved_blocks_equals_simulate(fault, pivot):
    """The keepalive family's fast path as a large sweep takes it -- the outage, rtt or run's end
    innermost (versus moves them outermost), blocks of a few dozen points reusing the same scratch
    arrays, the last block short -- against simulate at points drawn from the whole grid."""
    base = keepalive_base(fault, {"TCP_USER_TIMEOUT": 0}, {}, 1.0, 20_000)
    axes = {"client.socket.TCP_KEEPIDLE": [1, 4, 10, 29, 60, 200], "client.socket.TCP_KEEPINTVL": [1, 3, 7, 20, 75],
            "client.socket.TCP_KEEPCNT": [1, 2, 5, 9]} | pivot
    whole = sweep(base, axes)
    with every_block_moved(chunk_points=70):
        res = sweep(base, axes)
    assert res.stats["family"] == "keepalive" and res.stats["blocks"] > 10
    for side in ("client", "server"):
        for f in ("at_s", "latest_s", "by", "fate", "timing_sensitive"):
            assert np.asarray(res.codes(side)[f]).tobytes() == np.asarray(whole.codes(side)[f]).tobytes(), (side, f)
    rng = np.random.default_rng(18)
    picks = [tuple(int(rng.integers(n)) for n in res.shape) for _ in range(60)]
    assert_equal_to_simulate(base, axes, res, picks)
