"""sweep(): every grid point equals what simulate() says for that scenario.

The vectorized families are proven here against the event simulator on random scenarios and
grids; points outside them are simulated, which is exact by construction.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kalab
from kalab import ScenarioError, sweep
from kalab.scenario import with_value


def assert_equal_to_simulate(base, axes, res):
    keys = list(axes)
    for idx in np.ndindex(*res.shape):
        sc = base
        for k, i in zip(keys, idx):
            v = np.asarray(list(axes[k]))[i]
            sc = with_value(sc, k, v.item() if hasattr(v, "item") else v)
        r = kalab.simulate(sc)
        for side in ("client", "server"):
            want, got = r.side(side), res[side]
            assert got["fate"][idx] == want.fate, (side, idx, sc)
            assert got["by"][idx] == want.by, (side, idx, sc)
            for field in ("at_s", "latest_s"):
                w, g = getattr(want, field), got[field][idx]
                assert (w is None and math.isnan(g)) or (w is not None and g == pytest.approx(w, abs=1e-6)), \
                    (side, field, idx, g, w, sc)


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
    assert_equal_to_simulate(base, axes, sweep(base, axes))


@pytest.mark.parametrize("base,axes", [
    ({"client": {"app": {"kind": "ssh", "options": {"ServerAliveInterval": 15}}}, "server": {"app": {"kind": "sshd"}},
      "faults": [{"kind": "link_down", "at_s": 1}], "until_s": 3000},
     {"client.app.options.ServerAliveInterval": [5, 15], "client.app.options.ServerAliveCountMax": [0, 3]}),
    ({"client": {}, "server": {"app": {"kind": "sshd", "version": "9.2", "options": {"ClientAliveInterval": 10}}},
      "faults": [{"kind": "link_down", "at_s": 1}], "until_s": 3000},
     {"server.app.options.ClientAliveCountMax": [1, 3]}),
    ({"client": {}, "server": {}, "traffic": [{"at_s": 2, "from": "client"}],
      "faults": [{"kind": "link_down", "at_s": 1}], "until_s": 3000},
     {"client.sysctl.net.ipv4.tcp_retries2": [3, 5], "client.socket.TCP_USER_TIMEOUT": [0, 20000]}),
    ({"client": {"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 100}}, "server": {},
      "path": {"middleboxes": [{"preset": "aws-nat"}]}, "until_s": 3000},
     {"client.socket.TCP_KEEPIDLE": [100, 400]}),
])
def test_points_outside_the_families_are_simulated(base, axes):
    res = sweep(base, axes)
    assert res.stats["simulated"] == res.stats["points"]
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
])
def test_bad_axes_get_the_same_errors_as_scenarios(axes, key, fragment):
    with pytest.raises(ScenarioError) as e:
        sweep({"client": {"socket": {"SO_KEEPALIVE": 1}}, "server": {}}, axes)
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
        for field in ("by", "fate"):
            assert (mem[side][field] == disk[side][field]).all()
