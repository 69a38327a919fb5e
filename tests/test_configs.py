"""Reading real configuration: sysctl dumps, ssh_config / ssh -G, sshd_config / sshd -T.

The files under tests/data/configs are real-world shaped: comments, odd spacing, '=' separators,
quotes, Host and Match blocks, Includes relative to the including file, drop-in directories; the
``ssh -G``, ``sshd -T`` and ``sysctl -a`` outputs were captured from Debian's OpenSSH 9.2 and Linux 6.18.
"""

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalab import ScenarioError
from kalab.configs import ConfigError, read_ssh_config, read_sshd_config, read_sysctl
from kalab.configs.build import build, parse_fault
from kalab.configs.openssh import parse_ssh_config, parse_sshd_config
from kalab.configs.sysctl import parse_sysctl

D = os.path.join(os.path.dirname(__file__), "..", "examples", "configs")


def f(name):
    return os.path.join(D, name)


@pytest.mark.parametrize("host,want", [
    # conf.d/10-db.conf is included first: its CountMax wins; the Interval comes from the *.prod block.
    ("db1.prod.example.org", {"ServerAliveInterval": 15, "ServerAliveCountMax": 5}),
    # excluded from *.prod by the negated pattern; quoted "45"; the exec Match is never run.
    ("legacy.prod.example.org", {"ServerAliveInterval": 45, "TCPKeepAlive": False, "ServerAliveCountMax": 3}),
    # Match user/host sees the User and HostName set earlier for this host.
    ("bastion", {"ServerAliveInterval": 30, "ConnectTimeout": 7, "ServerAliveCountMax": 3}),
    ("WEB.prod.example.org", {"ServerAliveInterval": 15, "ServerAliveCountMax": 2}),
    ("elsewhere", {"ServerAliveInterval": 60, "ServerAliveCountMax": 3}),
])
def test_ssh_config_first_value_wins_per_host(host, want):
    c = read_ssh_config(f("ssh/config"), host, user="alice")
    assert c.options == want


def test_ssh_config_reports_where_each_value_came_from_and_what_it_did_not_use():
    c = read_ssh_config(f("ssh/config"), "db1.prod.example.org", user="alice")
    assert str(c.origins["ServerAliveCountMax"]).endswith("conf.d/10-db.conf:3")
    assert str(c.origins["ServerAliveInterval"]).endswith("ssh/config:12")
    problems = [str(p) for p in c.problems]
    assert any(":15: Match exec is not run" in p for p in problems)
    assert any(":28: unknown keyword 'serveraliveintreval' (did you mean ServerAliveInterval?)" in p for p in problems)
    assert c.other["controlmaster"] == "auto"


def test_ssh_G_output_is_the_final_answer_for_its_host():
    c = read_ssh_config(f("ssh-G.txt"), "ignored")
    assert c.host == "db.example.org"
    assert c.options == {"TCPKeepAlive": True, "ServerAliveCountMax": 3, "ServerAliveInterval": 20,
                         "ConnectTimeout": 0, "RequestTTY": "auto", "SessionType": "default"}
    assert c.problems == ()


def test_sshd_config_drop_in_first_match_blocks_override():
    assert read_sshd_config(f("sshd_config")).options == {"ClientAliveInterval": 120, "ClientAliveCountMax": 3,
                                                          "TCPKeepAlive": True}
    c = read_sshd_config(f("sshd_config"), match={"user": "backup"})
    assert c.options["ClientAliveInterval"] == 10 and c.options["ClientAliveCountMax"] == 0
    assert any("Match address" in str(p) and "not applied" in str(p) for p in c.problems)
    c = read_sshd_config(f("sshd_config"), match={"user": "carol", "address": "198.51.100.7"})
    assert c.options["ClientAliveCountMax"] == 9


def test_sshd_time_formats_and_sshd_T():
    c = parse_sshd_config("ClientAliveInterval 1h30m\nclientalivecountmax=2\n")
    assert c.options == {"ClientAliveInterval": 5400, "ClientAliveCountMax": 2}
    assert parse_sshd_config("ClientAliveInterval 5M\n").options["ClientAliveInterval"] == 300
    assert read_sshd_config(f("sshd-T.txt")).options == {"ClientAliveInterval": 300, "ClientAliveCountMax": 3,
                                                         "TCPKeepAlive": True, "UnusedConnectionTimeout": 0}


def test_sshd_idle_timers_are_read_with_their_line():
    """ChannelTimeout (type=interval pairs on one line) and UnusedConnectionTimeout (issue 15)."""
    from kalab.configs.common import ConfigError
    c = parse_sshd_config("ChannelTimeout session:*=15m direct-tcpip=1h\nUnusedConnectionTimeout 5m\n")
    assert c.options == {"ChannelTimeout": "session:*=15m direct-tcpip=1h", "UnusedConnectionTimeout": 300}
    with pytest.raises(ConfigError, match="ChannelTimeout.*type=interval"):
        parse_sshd_config("ClientAliveInterval 5\nChannelTimeout session:*\n")


@pytest.mark.parametrize("value", ["1.5h", "+5", "-5", "5x", "h", "5mm", "1h30m "])
def test_time_values_sshd_refuses_are_errors_with_file_and_line(value):
    """sshd_config(5) TIME FORMATS are digits with an optional s/m/h/d/w each (misc.c convtime):
    a fraction, a sign or a stray letter makes sshd refuse to start, so kalab refuses it too."""
    from kalab.configs.common import ConfigError
    with pytest.raises(ConfigError) as e:
        parse_sshd_config(f"Port 22\nClientAliveInterval \"{value}\"\n", "etc/sshd_config")
    assert e.value.key == "etc/sshd_config:2: ClientAliveInterval" and "5m, 1h30m" in str(e.value)


@pytest.mark.parametrize("value", ["5_0", "٣", "3.0", "three"])
def test_counts_take_what_strtonum_takes(value):
    """ServerAliveCountMax is read by strtonum(): ASCII digits with an optional sign, nothing else."""
    with pytest.raises(ConfigError):
        parse_ssh_config(f"ServerAliveCountMax {value}\n", "h")
    assert parse_ssh_config("ServerAliveCountMax +4\n", "h").options["ServerAliveCountMax"] == 4


@pytest.mark.parametrize("name,os_name,values", [
    ("sysctl-a-linux.txt", "linux", {"net.ipv4.tcp_keepalive_time": 7200, "net.ipv4.tcp_retries2": 15,
                                     "net.ipv4.ip_local_port_range": "32768 60999"}),
    ("proc-sys-dump.txt", "linux", {"net.ipv4.tcp_keepalive_intvl": 75, "net.ipv4.tcp_fin_timeout": 60}),
    ("sysctl-macos.txt", "macos", {"net.inet.tcp.keepidle": 7200000, "net.inet.tcp.keepcnt": 8,
                                   "net.inet.tcp.msl": 15000}),
    ("sysctl-freebsd.txt", "freebsd", {"net.inet.tcp.keepidle": 600000, "net.inet.tcp.always_keepalive": 1}),
])
def test_sysctl_dumps_of_every_os(name, os_name, values):
    d = read_sysctl(f(name))
    assert d.os == os_name and not d.os_guessed
    for k, v in values.items():
        assert d.values[k] == v


def test_sysctl_noise_is_reported_with_line_numbers_not_fatal():
    d = read_sysctl(f("sysctl-a-linux.txt"))
    assert [p.origin.line for p in d.problems] == [97, 98]
    assert "kernel.hostname" in d.ignored


def test_out_of_range_value_names_file_line_key_and_range():
    with pytest.raises(ConfigError) as e:
        parse_sysctl("net.ipv4.tcp_keepalive_probes = 300\n", "dump.txt")
    assert "dump.txt:1: net.ipv4.tcp_keepalive_probes" in str(e.value) and "0..255" in str(e.value)
    with pytest.raises(ConfigError, match=r"cfg:2: ServerAliveInterval.*'soon'"):
        parse_ssh_config("Host *\n ServerAliveInterval soon\n", "h", "cfg")
    with pytest.raises(ConfigError, match="sshd:1: ClientAliveCountMax"):
        parse_sshd_config("ClientAliveCountMax -1\n", "sshd")


def test_include_cycles_and_nesting_past_openssh_depth_are_refused(tmp_path):
    """ssh and sshd refuse an Include cycle and nesting deeper than 16 ("Too many recursive
    configuration includes"): so does kalab, naming the Include line and the cycle."""
    (tmp_path / "config").write_text("Include config\nServerAliveInterval 9\n")
    with pytest.raises(ConfigError, match=r"config:1: Include: 'config' is a cycle: .*config -> .*config"):
        read_ssh_config(str(tmp_path / "config"), "h")
    for i in range(18):
        (tmp_path / f"c{i}").write_text(f"Include c{i + 1}\n")
    (tmp_path / "c18").write_text("ServerAliveInterval 9\n")
    with pytest.raises(ConfigError, match=r"c16:1: Include: files nested deeper than 16"):
        read_ssh_config(str(tmp_path / "c0"), "h")
    assert read_ssh_config(str(tmp_path / "c2"), "h").options == {"ServerAliveInterval": 9}


@pytest.mark.parametrize("text,want", [
    ("link_down@60+30", {"kind": "link_down", "at_s": 60, "for_s": 30}),
    ("link_down@2m", {"kind": "link_down", "at_s": 120}),
    ("host_crash:client@10", {"kind": "host_crash", "side": "client", "at_s": 10}),
    ("host_reboot:server@5+20", {"kind": "host_reboot", "side": "server", "at_s": 5, "down_s": 20}),
])
def test_fault_specs(text, want):
    assert parse_fault(text) == want


@pytest.mark.parametrize("text", ["link_down", "link_down:client@5", "meteor@5", "host_reboot@5", "sleep:client@1",
                                  "link_down@soon", "process_kill@1+2"])
def test_bad_fault_specs_are_clean_errors(text):
    with pytest.raises(ScenarioError) as e:
        parse_fault(text)
    assert e.value.key == "--fault"


def test_built_scenario_keeps_sources():
    b = build(client_sysctl=read_sysctl(f("proc-sys-dump.txt")),
              ssh=read_ssh_config(f("ssh/config"), "db1.prod.example.org", user="alice"),
              sshd=read_sshd_config(f("sshd_config")), faults=[parse_fault("link_down@60")])
    assert b.scenario["client"]["app"]["options"]["ServerAliveCountMax"] == 5
    assert str(b.sources["server.app.options.ClientAliveInterval"]).endswith("sshd_config.d/50-cloud.conf:2")
    assert b.scenario["until_s"] == 60 + 3 * 3600


text = st.text(st.sampled_from(list("abcHostMatchIncludeServerAliveIntervalCountMax =\"!*?#:/.,0123456789\t\n-")),
               max_size=300)


@given(text, st.sampled_from(["h", "db1.prod.example.org", "web"]))
def test_ssh_config_parser_fuzz_only_clean_errors(t, host):
    try:
        parse_ssh_config(t, host)
    except ConfigError as e:
        assert e.key.startswith("<ssh_config>:")


@given(text)
def test_sshd_config_parser_fuzz_only_clean_errors(t):
    try:
        parse_sshd_config(t, match={"user": "u"})
    except ConfigError as e:
        assert e.key.startswith("<sshd_config>:")


@given(st.text(st.sampled_from(list("net.ipv4.tcp_keepalive_time_probes = :/proc/sys0123456789\t\n-#;kern.ostype")),
               max_size=300), st.sampled_from([None, "linux", "macos", "freebsd"]))
def test_sysctl_parser_fuzz_only_clean_errors(t, os_name):
    try:
        parse_sysctl(t, os_name=os_name)
    except ConfigError as e:
        assert e.key.startswith("<sysctl>:")


@given(st.text(st.sampled_from(list("link_downhostcrashrebootsleepprocesskill:@+clientserver0123456789.smh ")),
               max_size=40))
def test_fault_spec_parser_fuzz_only_clean_errors(t):
    try:
        fault = parse_fault(t)
    except ScenarioError as e:
        assert e.key == "--fault"
    else:
        try:
            build(faults=[fault])      # what parses goes into a scenario -- or is refused cleanly there
        except ScenarioError as e:
            assert e.key.startswith("faults.0")


@given(st.text(st.sampled_from(list("0123456789smhdwSMHDW.+- x٣")), max_size=12))
def test_convtime_agrees_with_the_time_formats_grammar(text):
    """convtime() accepts exactly ``(digits qualifier?)+`` with bare digits only at the end, and sums them."""
    import re

    from kalab.configs.openssh import convtime
    scale = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if re.fullmatch(r"(?:[0-9]+[smhdwSMHDW]?)+", text):         # (greedy digits: a bare run can only end it)
        want = sum(int(n) * scale[q.lower()] for n, q in re.findall(r"([0-9]+)([smhdwSMHDW]?)", text))
        assert convtime(text) == (want if want <= 2**31 - 1 else None)
    else:
        assert convtime(text) is None
