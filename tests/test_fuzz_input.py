"""Fuzz: hostile input ends in a ScenarioError (the API) or a one-line exit 2 (the CLI), nothing else.

Bounded examples (well under a minute in all); ``benchmarks/fuzz.py`` runs 10^5 inputs under a
memory cap and a time limit.  The rule each test pins is in its docstring.
"""

from __future__ import annotations

import json
from argparse import Namespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalab import ScenarioError
from kalab.cli import goal_from_args, main
from kalab.configs.openssh import parse_ssh_config, parse_sshd_config
from kalab.configs.sysctl import parse_sysctl
from kalab.scenario import load, loads, with_value
from kalab.sweep import sweep

FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))

SEEDS = [
    {"client": {}, "server": {}},
    {"client": {"socket": {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 10, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 3}},
     "server": {}, "faults": [{"kind": "link_down", "at_s": 1}], "until_s": 100},
    {"client": {"app": {"kind": "ssh", "options": {"ServerAliveInterval": "5", "ServerAliveCountMax": 2}}},
     "server": {"app": {"kind": "sshd", "version": "9.6"}}, "faults": [{"kind": "host_crash", "at_s": 3,
                                                                        "side": "server"}], "until_s": 100},
    {"client": {"kernel": "6.1", "sysctl": {"net.ipv4.ip_local_port_range": "32768 60999"}},
     "server": {"os": "sco-openserver", "app": {"kind": "telnetd", "flags": ["-k", "5"]}},
     "traffic": [{"at_s": 1, "every_s": 10, "count": 3}], "path": {"middleboxes": [{"preset": "aws-nat"}]},
     "until_s": 60},
    # issue 15: sshd's idle timers, the shell's TMOUT, logind
    {"client": {"app": {"kind": "ssh", "version": "9.2", "options": {"SessionType": "default", "RequestTTY": "yes"}}},
     "server": {"app": {"kind": "sshd", "version": "9.2", "options": {"ChannelTimeout": "session:*=5",
                                                                      "UnusedConnectionTimeout": 3},
                        "shell": {"name": "bash", "TMOUT": 4, "command_s": 1}},
                "logind": {"StopIdleSessionSec": 9}},
     "traffic": [{"at_s": 1, "bytes": 1, "line": True}], "until_s": 30},
]

#: Values a careless or hostile user gives: too big, not finite, wrong type, not text, nested.
HOSTILE = st.one_of(
    st.integers(), st.integers(min_value=10**300, max_value=10**301), st.just(10**5000), st.just(-(10**400)),
    st.floats(), st.booleans(), st.none(), st.text(max_size=20), st.sampled_from(
        ["\udc80", "1.5h", "7_200", "٣", "9", "6.10", "1e400", "-1", "none", "x" * 10_000, "9" * 5000, "1h30m",
         "32768 60999", "1 2 3", "-n", "-K", "nan", "Infinity"]),
    st.lists(st.integers(), max_size=3), st.lists(st.floats(), max_size=3),
    st.just([[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))

KEYS = st.sampled_from([
    "name", "description", "until_s", "start", "client.os", "client.kernel", "client.hz", "client.monotime_phase_s",
    "client.sysctl.net.ipv4.tcp_retries2", "client.sysctl.net.ipv4.ip_local_port_range",
    "client.sysctl.net.ipv4.tcp_keepalive_time", "client.socket.TCP_KEEPCNT", "client.socket.TCP_USER_TIMEOUT",
    "client.app", "client.app.kind", "client.app.version", "client.app.options",
    "client.app.options.ServerAliveInterval", "client.app.options.ConnectTimeout", "client.app.options.User",
    "server.app.flags", "server.app.version", "server.os", "path", "path.rtt_ms", "path.middleboxes",
    "traffic", "faults", "until_s.x", "client.socket", "server",
    "server.app.options.ChannelTimeout", "server.app.options.UnusedConnectionTimeout", "server.app.shell",
    "server.app.shell.TMOUT", "server.app.shell.name", "server.app.shell.command_s", "server.logind",
    "server.logind.StopIdleSessionSec", "server.logind.systemd", "client.app.options.SessionType",
    "client.app.options.RequestTTY", "traffic.0.line", "client.logind"])


def mutate(data: dict, key: str, value) -> dict | None:
    try:
        return with_value(data, key, value)
    except ScenarioError:
        return None


def assert_clean(e: ScenarioError) -> None:
    text = str(e)
    assert "\n" not in text and len(text) < 700, text


@FAST
@given(seed=st.sampled_from(SEEDS), edits=st.lists(st.tuples(KEYS, HOSTILE), min_size=1, max_size=3))
def test_the_scenario_loader_only_raises_scenario_error(seed, edits):
    """load() on a scenario with hostile values anywhere: a Scenario or a one-line ScenarioError."""
    data = seed
    for key, value in edits:
        data = mutate(data, key, value) or data
    try:
        load(data)
    except ScenarioError as e:
        assert_clean(e)


@FAST
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_scenario_text_mutations_only_raise_scenario_error(seed, data):
    """loads() on JSON text with bytes cut, doubled, replaced, or nested: one-line ScenarioError."""
    text = json.dumps(seed, indent=1)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(text)))
        j = data.draw(st.integers(i, min(len(text), i + 20)))
        piece = data.draw(st.sampled_from(['"', "{", "[" * 600, "]", ",", ":", "1" * 5000, "\\ud800", "\\u0000",
                                           text[i:j], text[i:j] * 3, "", "-", "1e999", '"client": {}, ']))
        text = text[:i] + piece + text[j:]
    try:
        loads(text)
    except ScenarioError as e:
        assert_clean(e)


CONFIG_ALPHABET = st.sampled_from(list("abcHostMatchInclude =\"!*?#:/.,0123456789\t\n-_+ServerAliveClient") +
                                  ["ServerAliveInterval", "ClientAliveCountMax", "Include /dev/zero", "\n",
                                   "net.ipv4.tcp_keepalive_time", "net.ipv4.ip_local_port_range", " = ",
                                   "9" * 400, "1.5h", "٣", "\udc80", "7_200"])


@FAST
@given(text=st.lists(CONFIG_ALPHABET, max_size=60).map("".join))
def test_config_importers_only_raise_config_errors(text):
    """parse_sysctl/parse_ssh_config/parse_sshd_config on any text: a result or a one-line ScenarioError."""
    for parse in (lambda t: parse_sysctl(t, "dump"), lambda t: parse_ssh_config(t, "h", "cfg"),
                  lambda t: parse_sshd_config(t, "sshd", match={"user": "u"})):
        try:
            parse(text)
        except ScenarioError as e:
            assert_clean(e)


DURATIONS = st.one_of(st.none(), st.sampled_from(["30s", "1d", "0", "-5", "1.5h", "9" * 5000, "1e400", "nan",
                                                  "2d", "\udc80", "1 h", "", "36500d", "5m"]),
                      st.text(max_size=8))


@FAST
@given(detect=DURATIONS, outage=DURATIONS, nat=DURATIONS, side=st.sampled_from(["client", "server", "both", "x"]),
       probes=st.one_of(st.none(), st.floats()), rtt=st.floats(),
       version=st.one_of(st.text(max_size=6), st.sampled_from(["9", "9.6", "99.1", "9.6.1", "٩.6", "9" * 5000])))
def test_recommend_arguments_are_a_goal_or_a_scenario_error(detect, outage, nat, side, probes, rtt, version):
    """goal_from_args() on any options: a Goal, or a ScenarioError naming an option (``--...``)."""
    args = Namespace(detect_within=detect, survive_outage=outage, nat_idle=nat, side=side,
                     max_probes_per_hour=probes, rtt_ms=rtt, sshd_version=version, json=False)
    try:
        goal_from_args(args)
    except ScenarioError as e:
        assert_clean(e)
        assert e.key.startswith("--"), e


SWEEP_BASE = SEEDS[1]
AXIS_VALUES = st.one_of(
    st.none(), st.integers(), st.text(max_size=3), st.lists(HOSTILE, max_size=3),
    st.builds(range, st.integers(-5, 5), st.integers(-5, 10**20), st.integers(1, 10**19)),
    st.sampled_from([np.arange(1, 4), np.ones((2, 2)), np.array([]), np.array([1.5, np.nan]), [10**400],
                     [1, "a"], [[1], [1, 2]], range(1, 10**8 + 1), {"a": 1}]))


@FAST
@given(axes=st.one_of(st.dictionaries(KEYS, AXIS_VALUES, max_size=3), st.lists(KEYS, max_size=2), st.none(),
                      st.just({f"client.socket.{k}": range(1, 65537) for k in
                               ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_USER_TIMEOUT")})),
       out=st.sampled_from([None, "/dev/null", 5]))
def test_sweep_arguments_are_a_result_or_a_scenario_error(axes, out):
    """sweep() on any axes: a result (small grids) or a ScenarioError, quickly."""
    try:
        res = sweep(SWEEP_BASE, axes, out=out, max_result_bytes=36 * 1000)
    except ScenarioError as e:
        assert_clean(e)
    else:
        assert res.stats["points"] <= 1000


ARGS = st.one_of(st.sampled_from(["--json", "--all", "--host", "h", "--until", "5000d", "--fault",
                                  "link_down@9999999999", "link_down@1+2", "host_crash@1", "--rtt-ms", "nan", "1e400",
                                  "--ssh-version", "9", "--sshd-version", "--middlebox", "aws-nat", "--client-sysctl",
                                  "/dev/zero", "--ssh-config", "/dev/null", "--detect-within", "1d", "30s", "--side",
                                  "--nat-idle", "36500d", "--max-probes-per-hour", "-1", "--sshd-match", "user",
                                  "9" * 5000, "\udc80", "--survive-outage", "2d", "."]),
                 st.text(max_size=6))


@pytest.mark.parametrize("command", ["simulate", "explain", "recommend"])
def test_the_cli_exits_cleanly(command, tmp_path, capsys):
    """main() with hostile arguments exits 0, 1 (recommend: goal unmet) or 2 with one line, never a
    traceback.  (recommend runs only goals that refuse before simulating: keeps this test fast.)"""
    scenario = tmp_path / "s.json"

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(argv=st.lists(ARGS, max_size=5), text=st.sampled_from(['{"client": {}, "server": {}, "until_s": 10}',
                                                                   "[" * 1000, '{"client": 1}', "\x00"]))
    def run(argv, text):
        scenario.write_bytes(text.encode("utf-8", "surrogatepass"))
        args = [command] + ([str(scenario)] if command == "simulate" else []) + argv
        if command == "recommend" and "--detect-within" not in argv:
            args += ["--detect-within", "\udc80"]       # (refused before any simulation)
        elif command == "recommend":
            args += ["--side", "x"]                     # (likewise)
        try:
            code = main(args)
        except SystemExit as e:                         # argparse: its own one-line usage error
            code = e.code
        out, err = capsys.readouterr()
        assert code in (0, 1, 2), (args, code)
        assert "Traceback" not in err
        if code == 2:
            assert err.strip().splitlines()[-1].startswith(("kalab: error:", "kalab simulate: error:",
                                                            "kalab explain: error:", "kalab recommend: error:",
                                                            "kalab: error")), err
    run()


CHANNEL_TIMEOUT_ALPHABET = st.sampled_from(list("session:*?=-_ 0123456789mhsdwglobal\t\n,.\udc80٣x") +
                                           ["session:*", "global", "direct-tcpip", "=", "1h30m", "none"])


@FAST
@given(text=st.one_of(st.lists(CHANNEL_TIMEOUT_ALPHABET, max_size=20).map("".join), HOSTILE),
       version=st.sampled_from([(9, 2), (9, 6), (9, 7), (10, 0)]))
def test_channel_timeout_parser_only_raises_value_error(text, version):
    """sshd_idle.parse_channel_timeout on any input: pairs with whole seconds, or a one-line ValueError;
    through the scenario loader, a ScenarioError naming server.app.options.ChannelTimeout."""
    from kalab.mechanisms.sshd_idle import parse_channel_timeout
    try:
        pairs = parse_channel_timeout(text, version)
    except ValueError as e:
        assert "\n" not in str(e)
    else:
        assert all(isinstance(t, str) and isinstance(v, int) and v >= 0 for t, v in pairs)
    sc = {"client": {}, "server": {"app": {"kind": "sshd", "version": "%d.%d" % version,
                                           "options": {"ChannelTimeout": text}}}}
    try:
        load(sc)
    except ScenarioError as e:
        assert_clean(e)
        assert e.key.startswith("server.app.options.ChannelTimeout"), e
