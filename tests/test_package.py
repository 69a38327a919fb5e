"""Package hygiene: numpy-only core, pinned presets, units and wheel slack."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalab import format_duration, parse_duration, presets
from kalab.slack import timer_slack_s, timer_slack_s_array, wheel_level


def test_import_kalab_loads_neither_plotly_nor_ipywidgets():
    code = ("import sys, kalab; kalab.simulate({'client': {}, 'server': {}, 'until_s': 5});"
            "bad = [m for m in ('plotly', 'ipywidgets', 'anywidget', 'pandas') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("os,idle,intvl,cnt,tw", [
    ("linux", 7200, 75, 9, 60), ("macos", 7200, 75, 8, 30), ("freebsd", 7200, 75, 8, 60),
    ("windows", 7200, 1, 10, 120), ("solaris", 7200, 75, 9, 60), ("sco-openserver", 7200, 75, 8, 1800)])
def test_os_defaults_are_pinned(os, idle, intvl, cnt, tw):
    s = presets.BY_OS[os]
    assert (s.keepalive_idle_s, s.keepalive_intvl_s, s.keepalive_count, s.time_wait_s) == (idle, intvl, cnt, tw)


def test_freebsd_keeps_every_connection_alive_by_default():
    assert presets.FREEBSD.keepalive_enabled and not presets.MACOS.keepalive_enabled
    assert not presets.LINUX.keepalive_enabled


def test_linux_before_6_5_has_no_linear_syn_timeouts():
    assert presets.os_defaults("linux", (6, 1)).syn_linear_timeouts == 0
    assert presets.os_defaults("linux", (6, 18)).syn_linear_timeouts == 4


@pytest.mark.parametrize("text,seconds", [("2 h 11 min 15 s", 7875), ("1h30m", 5400), ("5m", 300), ("90", 90),
                                          (15, 15), ("1.5s", 1.5), ("2d", 172800)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "abc", "5x", "-5", True])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@given(st.text(st.sampled_from(list("0123456789.smhdwinfa ecSMH-+_e٣")), max_size=16))
def test_parse_duration_fuzz_gives_a_finite_duration_or_a_value_error(text):
    """The parser behind --detect-within, --until and scenario durations: a finite, non-negative number
    of seconds, or ValueError -- never another exception, never inf or NaN."""
    try:
        v = parse_duration(text)
    except ValueError:
        return
    assert np.isfinite(v) and v >= 0


@given(st.integers(0, 10**7) | st.floats(0, 1e6, allow_nan=False).map(lambda x: round(x, 3)))
def test_format_duration_reads_back(seconds):
    """What kalab prints ("2 h 11 min 15 s", "1 min 59.352 s") parses back to the same number of seconds."""
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-3)


@pytest.mark.parametrize("seconds,text", [(7875, "2 h 11 min 15 s"), (0.204, "204 ms"), (61.5, "1 min 1.5 s"),
                                          (None, "never"), (86400, "1 d")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("delay,level,slack", [(0.2, 0, 0.004), (1.0, 1, 0.032), (5, 2, 0.256), (75, 3, 2.048),
                                               (600, 4, 16.384), (7200, 5, 131.072), (36000, 6, 1048.576)])
def test_timer_wheel_granularity_at_hz_250(delay, level, slack):
    """kernel/time/timer.c: level n has 8**n-tick granularity; a timer fires at most that late."""
    assert wheel_level(round(delay * 250), 250) == level
    assert timer_slack_s(delay, 250) == pytest.approx(slack)


def test_slack_array_matches_scalar():
    d = np.geomspace(0.001, 1e6, 200)
    assert np.allclose(timer_slack_s_array(d, 250), [timer_slack_s(x, 250) for x in d])
    assert np.allclose(timer_slack_s_array(d, 1000), [timer_slack_s(x, 1000) for x in d])


def test_latest_s_accumulates_slack_along_the_probe_chain():
    """7875 s nominal; the real kernel may be 131.072 + 9 x 2.048 s later at HZ = 250."""
    import kalab
    r = kalab.simulate({"client": {"socket": {"SO_KEEPALIVE": 1}}, "server": {},
                        "faults": [{"kind": "host_crash", "side": "server", "at_s": 0}]})
    assert r.client.latest_s == pytest.approx(7875 + 131.072 + 9 * 2.048, abs=0.01)
    r1000 = kalab.simulate({"client": {"hz": 1000, "socket": {"SO_KEEPALIVE": 1}}, "server": {},
                            "faults": [{"kind": "host_crash", "side": "server", "at_s": 0}]})
    # At HZ = 1000 the same delays land on coarser levels in seconds (timer.c's "HZ 1000 steps" table):
    # 7200 s -> level 6 (262.144 s), 75 s -> level 4 (4.096 s).
    assert r1000.client.at_s == 7875
    assert r1000.client.latest_s == pytest.approx(7875 + 262.144 + 9 * 4.096, abs=0.01)
