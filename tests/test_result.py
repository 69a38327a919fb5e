"""The result contract and determinism (docs/contract.md)."""

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kalab
from kalab.result import BY, FATES

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.json"))


def test_to_dict_is_exactly_the_contract():
    r = kalab.simulate(json.loads(EXAMPLES[0].read_text()))
    d = r.to_dict()
    assert set(d) == {"name", "client", "server", "events", "until_s", "warnings"}
    for side in ("client", "server"):
        assert set(d[side]) == {"fate", "at_s", "latest_s", "by", "sees", "exit_code",
                                "worst", "timing_sensitive", "timing_detail"}          # (timing: docs/contract.md)
        assert set(d[side]["worst"]) == {"fate", "at_s", "latest_s", "by", "sees"}
        assert d[side]["fate"] in FATES
        assert d[side]["by"] is None or d[side]["by"] in BY
    for e in d["events"]:
        assert set(e) == {"t_s", "side", "layer", "kind", "detail", "latest_s"}
    json.dumps(d, allow_nan=False)


def test_result_is_immutable():
    r = kalab.simulate({"client": {}, "server": {}, "until_s": 10})
    with pytest.raises(Exception):
        r.client = None  # type: ignore[misc]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_is_deterministic_and_well_formed(path):
    sc = json.loads(path.read_text())
    a, b = kalab.simulate(sc).to_json(), kalab.simulate(sc).to_json()
    assert a == b
    r = kalab.simulate(sc)
    times = [e.t_s for e in r.events]
    assert times == sorted(times), "events are in time order"
    for side in ("client", "server"):
        res = r.side(side)
        if res.fate == "died":
            assert res.by in BY and res.latest_s >= res.at_s
        else:
            assert res.at_s is None and res.by is None


@given(idle=st.integers(1, 300), intvl=st.integers(1, 60), cnt=st.integers(1, 9), ut=st.integers(0, 60000),
       sai=st.integers(0, 60), cut=st.floats(0, 100), traffic=st.lists(st.floats(0, 200), max_size=4))
def test_same_scenario_same_timeline_byte_for_byte(idle, intvl, cnt, ut, sai, cut, traffic):
    sc = {"client": {"socket": {"TCP_KEEPIDLE": idle, "TCP_KEEPINTVL": intvl, "TCP_KEEPCNT": cnt,
                                "TCP_USER_TIMEOUT": ut},
                     "app": {"kind": "ssh", "options": {"ServerAliveInterval": sai}}},
          "server": {"app": {"kind": "sshd"}},
          "traffic": [{"at_s": round(t, 3), "from": "client"} for t in traffic],
          "faults": [{"kind": "link_down", "at_s": round(cut, 3), "for_s": 30}], "until_s": 2000}
    assert kalab.simulate(sc).to_json() == kalab.simulate(sc).to_json()


def test_same_instant_ties_follow_the_documented_priority():
    """A link that goes down at t drops a segment sent at t (FAULT before APP)."""
    r = kalab.simulate({"client": {}, "server": {}, "traffic": [{"at_s": 5, "from": "client"}],
                        "faults": [{"kind": "link_down", "at_s": 5, "for_s": 1}], "until_s": 20})
    drops = [e for e in r.events if e.kind == "dropped" and e.t_s == 5]
    assert drops and "data" in drops[0].detail


def test_the_same_instant_follows_the_documented_order_whatever_the_rounding():
    """sshd (7.4) waits a relative ClientAliveInterval from the client's last message, ssh sends its next
    one a whole ServerAliveInterval later: with both 6 s they meet at the same instant every time, and
    the message arrives first (arrivals before program timers), so sshd never has to ask itself --
    however binary rounding orders the two sums (29.4995 + 6 vs 35.499 + 0.0005)."""
    r = kalab.simulate({"client": {"monotime_phase_s": 0.501, "app": {"kind": "ssh", "options": {
        "ServerAliveInterval": 6, "TCPKeepAlive": "no"}}},
        "server": {"app": {"kind": "sshd", "version": "7.4", "options": {"ClientAliveInterval": 6}}},
        "until_s": 1000})
    assert not [e for e in r.events if e.side == "server" and e.kind == "alive_sent"]
