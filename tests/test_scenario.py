"""The scenario contract: it loads, and bad input gets a clear error naming key, value and range."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kalab
from kalab import ScenarioError
from kalab.scenario import load, loads

DESIGN_EXAMPLE = json.loads((__import__("pathlib").Path(__file__).parent.parent / "examples" /
                             "design-contract-example.json").read_text())


def test_design_md_example_loads_and_keeps_every_key():
    sc = load(DESIGN_EXAMPLE)
    assert sc.client.app.alive_interval_s == 15 and sc.client.tcp.keepalive_enabled is False
    assert sc.path.middleboxes[0].idle_timeout_s == 350
    assert sc.source == DESIGN_EXAMPLE


def test_only_client_and_server_are_required():
    sc = load({"client": {}, "server": {}})
    assert sc.until_s == 86400 and sc.path.rtt_s == 0.001 and sc.client.tcp.keepalive_idle_s == 7200
    with pytest.raises(ScenarioError, match="^server: is required"):
        load({"client": {}})


def test_socket_options_override_sysctls():
    sc = load({"client": {"sysctl": {"net.ipv4.tcp_keepalive_time": 600}, "socket": {"TCP_KEEPIDLE": 30}},
               "server": {}})
    assert sc.client.tcp.keepalive_idle_s == 30


def test_user_timeout_is_in_milliseconds():
    assert load({"client": {"socket": {"TCP_USER_TIMEOUT": 30000}}, "server": {}}).client.tcp.user_timeout_s == 30


@pytest.mark.parametrize("bad,key,fragment", [
    ({"client": {"socket": {"TCP_KEEPIDEL": 5}}}, "client.socket.TCP_KEEPIDEL", "did you mean 'TCP_KEEPIDLE'"),
    ({"client": {"socket": {"TCP_KEEPIDLE": 0}}}, "client.socket.TCP_KEEPIDLE", "1..32767 s (MAX_TCP_KEEPIDLE)"),
    ({"client": {"socket": {"TCP_KEEPIDLE": 40000}}}, "client.socket.TCP_KEEPIDLE", "1..32767"),
    ({"client": {"socket": {"TCP_KEEPCNT": 128}}}, "client.socket.TCP_KEEPCNT", "1..127"),
    ({"client": {"socket": {"TCP_KEEPCNT": 2.5}}}, "client.socket.TCP_KEEPCNT", "whole number"),
    ({"client": {"socket": {"TCP_KEEPIDLE": 2.5}}}, "client.socket.TCP_KEEPIDLE", "whole number"),
    ({"client": {"os": "macos", "sysctl": {"net.inet.tcp.keepidle": 1.5}}}, "client.sysctl.net.inet.tcp.keepidle",
     "whole number"),
    ({"client": {"socket": {"TCP_USER_TIMEOUT": -1}}}, "client.socket.TCP_USER_TIMEOUT", "val < 0 is EINVAL"),
    ({"client": {"socket": {"TCP_KEEPIDLE": math.nan}}}, "client.socket.TCP_KEEPIDLE", "finite"),
    ({"client": {"socket": {"TCP_KEEPIDLE": math.inf}}}, "client.socket.TCP_KEEPIDLE", "finite"),
    ({"client": {"socket": {"TCP_KEEPIDLE": "5"}}}, "client.socket.TCP_KEEPIDLE", "got str '5'"),
    ({"client": {"socket": {"TCP_KEEPIDLE": True}}}, "client.socket.TCP_KEEPIDLE", "got bool True"),
    ({"client": {"sysctl": {"net.ipv4.tcp_keepalive_tme": 5}}}, "client.sysctl.net.ipv4.tcp_keepalive_tme",
     "did you mean 'net.ipv4.tcp_keepalive_time'"),
    ({"client": {"os": "linx"}}, "client.os", "did you mean 'linux'"),
    ({"client": {"os": "macos", "sysctl": {"net.ipv4.tcp_keepalive_time": 5}}}, "client.sysctl.net.ipv4.tcp_keepalive_time",
     "unknown key"),
    ({"client": {"app": {"kind": "ssh", "options": {"ServerAliveIntervall": 5}}}},
     "client.app.options.ServerAliveIntervall", "did you mean 'ServerAliveInterval'"),
    ({"client": {"app": {"kind": "ssh", "options": {"TCPKeepAlive": "maybe"}}}}, "client.app.options.TCPKeepAlive",
     "'yes' or 'no'"),
    ({"client": {"app": {"kind": "sshd"}}}, "client.app.kind", "server program"),
    ({"client": {"hz": 512}}, "client.hz", "100, 250, 300, 1000"),
    ({"path": {"rtt_ms": -1}}, "path.rtt_ms", "out of range"),
    ({"path": {"middleboxes": [{"preset": "aws-nta"}]}}, "path.middleboxes.0.preset", "did you mean 'aws-nat'"),
    ({"faults": [{"kind": "link_dwn", "at_s": 1}]}, "faults.0.kind", "did you mean 'link_down'"),
    ({"faults": [{"kind": "sleep", "side": "client", "at_s": 1}]}, "faults.0.for_s", "required"),
    ({"faults": [{"kind": "host_crash", "at_s": 1}]}, "faults.0.side", "required"),
    ({"traffic": [{"at_s": -1}]}, "traffic.0.at_s", "out of range"),
    ({"until_s": 0}, "until_s", "out of range"),
    ({"untl_s": 10}, "untl_s", "did you mean 'until_s'"),
])
def test_bad_input_names_key_value_and_range(bad, key, fragment):
    sc = {"client": {}, "server": {}}
    for k, v in bad.items():
        sc[k] = v if k not in ("client", "server") else v
    with pytest.raises(ScenarioError) as exc:
        load(sc)
    assert exc.value.key == key
    assert fragment in str(exc.value)


def test_malformed_json_reports_line_and_column():
    with pytest.raises(ScenarioError, match="line 3, column 14"):
        loads('{\n "client": {},\n    "server" {}\n}')


def test_a_failed_load_changes_nothing():
    """Nothing is half-applied: the input dict is untouched and no Scenario comes back."""
    sc = {"client": {"socket": {"TCP_KEEPIDLE": 5}}, "server": {"socket": {"TCP_KEEPCNT": 999}}}
    before = json.dumps(sc, sort_keys=True)
    with pytest.raises(ScenarioError):
        load(sc)
    assert json.dumps(sc, sort_keys=True) == before


def test_ssh_keywords_are_case_insensitive_and_take_time_formats():
    sc = load({"client": {"app": {"kind": "ssh", "options": {"serveraliveinterval": "1m", "ConnectTimeout": "10s"}}},
               "server": {}})
    assert sc.client.app.alive_interval_s == 60 and sc.client.app.connect_timeout_s == 10


def test_conflicting_so_keepalive_and_tcpkeepalive_is_a_warning_not_an_error():
    sc = load(DESIGN_EXAMPLE)
    assert any("SO_KEEPALIVE" in w for w in sc.warnings)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20)
known_keys = st.sampled_from(["client", "server", "path", "traffic", "faults", "until_s", "start", "name", "os",
                              "socket", "sysctl", "app", "kind", "options", "TCP_KEEPIDLE", "SO_KEEPALIVE",
                              "at_s", "for_s", "side", "middleboxes", "preset", "rtt_ms", "from", "bytes"])
scenario_like = st.recursive(
    json_values,
    lambda children: st.dictionaries(known_keys, children, max_size=6),
    max_leaves=40)


@given(scenario_like)
def test_fuzzed_scenarios_load_or_raise_scenario_error_only(data):
    """Whatever the input, the loader either returns a Scenario or raises ScenarioError -- never anything else."""
    try:
        sc = load(data if isinstance(data, dict) else {"client": data, "server": {}})
    except ScenarioError:
        return
    kalab.simulate(sc)


@given(st.text(max_size=200))
def test_fuzzed_json_text_gives_clean_errors(text):
    try:
        loads(text)
    except ScenarioError:
        pass
