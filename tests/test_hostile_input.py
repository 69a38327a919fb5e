"""Hostile and careless input (issue 12): a clean one-line refusal every time, every size bounded.

Each test pins one rule and says it in its docstring.  The fuzz tests over all of them are in
``tests/test_fuzz_input.py``; ``benchmarks/fuzz.py`` runs 10^5 mutated inputs.
"""

from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
import pytest

from kalab import ScenarioError
from kalab.cli import goal_from_args, main
from kalab.configs import ConfigError, read_ssh_config, read_sshd_config, read_sysctl
from kalab.configs.openssh import MAX_INCLUDE_FILES, parse_ssh_config
from kalab.configs.sysctl import parse_sysctl
from kalab.inputs import MAX_CONFIG_BYTES, MAX_DEPTH, MAX_SCENARIO_BYTES
from kalab.scenario import load, load_file, loads, with_value
from kalab.sweep import sweep

BASE = {"client": {}, "server": {}}


def huge_int(digits: int) -> int:
    return 10 ** (digits - 1)


def refused(data, match: str | None = None) -> ScenarioError:
    with pytest.raises(ScenarioError, match=match) as e:
        load(data)
    assert len(str(e.value)) < 600 and "\n" not in str(e.value)
    return e.value


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- numbers

@pytest.mark.parametrize("data,key", [
    ({"client": {"sysctl": {"net.ipv4.tcp_retries2": huge_int(401)}}, "server": {}}, "net.ipv4.tcp_retries2"),
    ({**BASE, "traffic": [{"at_s": 1, "bytes": huge_int(401)}]}, "traffic.0.bytes"),
    ({**BASE, "traffic": [{"at_s": 1, "every_s": 1, "count": huge_int(401)}]}, "traffic.0.count"),
    ({"client": {"socket": {"TCP_KEEPCNT": huge_int(401)}}, "server": {}}, "TCP_KEEPCNT"),
    ({"client": {"os": "windows", "sysctl": {"KeepAliveTime": huge_int(401)}}, "server": {}}, "KeepAliveTime"),
    ({**BASE, "until_s": huge_int(5000)}, "until_s"),
    ({"client": {"app": {"kind": "ssh", "options": {"ServerAliveCountMax": huge_int(5000)}}}, "server": {}},
     "ServerAliveCountMax"),
    ({"client": {"app": {"kind": "ssh", "options": {"ServerAliveInterval": "9" * 5000}}}, "server": {}},
     "ServerAliveInterval"),
    ({"client": {"kernel": "9" * 5000 + ".1"}, "server": {}}, "client.kernel"),
    ({"client": {}, "server": {"os": "sco-openserver", "app": {"kind": "telnetd", "flags": ["-K", "9" * 400]}}},
     "server.app.flags"),
    ({"client": {"sysctl": {"net.ipv4.ip_local_port_range": [1, float("inf")]}}, "server": {}},
     "ip_local_port_range"),
    ({"client": {"hz": huge_int(5000)}, "server": {}}, "client.hz"),
])
def test_numbers_too_big_for_a_float_or_for_str_are_refused_naming_the_key(data, key):
    """A number is range-checked exactly before any float() or str() of it: 10^400 (OverflowError
    in float()) and 5,000-digit ints (ValueError in str()) are refused naming the key, and the
    message shows the value's size, never its 5,000 digits."""
    e = refused(data)
    assert key in str(e)
    assert "9999999999" not in str(e)[200:] and "0000000000000000000000000" not in str(e)


def test_a_huge_value_is_shown_cut_with_its_size():
    """An error never prints a 100 kB value: strings and lists are cut and their size said."""
    e = refused({"client": {"os": "x" * 100_000}, "server": {}}, "client.os")
    assert "100,000 characters" in str(e) and len(str(e)) < 600
    e = refused({"name": ["x"] * 100_000, **BASE}, "name")
    assert len(str(e)) < 600


# ---------------------------------------------------------------- JSON

@pytest.mark.parametrize("where", ["description", "client.app.options.User"])
def test_json_nested_past_the_limit_is_refused_naming_where(where):
    """JSON nested deeper than MAX_DEPTH (32) levels is refused, naming where, as text and as a dict
    -- the decoder's own limit is the interpreter's stack (RecursionError at about 1,000)."""
    for depth in (MAX_DEPTH + 1, 500, 100_000):
        deep = "[" * depth + "]" * depth
        if where == "description":
            text = '{"client": {}, "server": {}, "description": ' + deep + "}"
        else:
            text = '{"client": {"app": {"kind": "ssh", "options": {"User": ' + deep + '}}}, "server": {}}'
        with pytest.raises(ScenarioError, match=rf"{where}.*nested deeper than {MAX_DEPTH}"):
            loads(text)
    value: list = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(ScenarioError, match=r"^description\.0\.0\.0\.\.\.: nested deeper"):
        load({**BASE, "description": value})
    loops: dict = {**BASE}
    loops["description"] = loops
    with pytest.raises(ScenarioError, match="nested deeper"):
        load(loops)


def test_a_json_key_given_twice_is_refused_naming_it_and_both_lines():
    """Duplicate keys: JSON keeps the last silently; kalab refuses, naming the key and both lines."""
    text = '{\n "client": {"socket": {"TCP_KEEPIDLE": 5,\n  "TCP_KEEPIDLE": 7}},\n "server": {}\n}'
    with pytest.raises(ScenarioError, match=r"client\.socket\.TCP_KEEPIDLE: duplicate key: on lines 2 and 3"):
        loads(text)
    with pytest.raises(ScenarioError, match=r"^server: duplicate key: on lines 1 and 1"):
        loads('{"client": {}, "server": {}, "se\\u0072ver": {}}')


def test_a_json_number_of_thousands_of_digits_is_refused_naming_the_key():
    """A 5,000-digit JSON number would make the decoder raise ValueError: refused with its key."""
    with pytest.raises(ScenarioError, match=r"^until_s: a value of 5,000 characters \(line 1\)"):
        loads('{"client": {}, "server": {}, "until_s": ' + "9" * 5000 + "}")


def test_scenario_text_over_the_size_limit_is_refused():
    """A scenario text is at most 1 MiB (documented in docs/scenarios.md, Limits)."""
    with pytest.raises(ScenarioError, match="too long; allowed: at most 1 MiB"):
        loads(" " * (MAX_SCENARIO_BYTES + 1))


@pytest.mark.parametrize("data,key", [
    ({**BASE, "name": "a\udc80b"}, "name"),
    ({**BASE, "description": "\ud800"}, "description"),
    ({"client": {"app": {"kind": "ssh", "options": {"User": "\udfff"}}}, "server": {}}, "client.app.options.User"),
])
def test_lone_surrogates_are_refused_at_load_naming_the_key(data, key):
    """A lone surrogate is not text (printing it raises UnicodeEncodeError): refused at load."""
    refused(data, rf"^{key}: contains a lone surrogate")


# ---------------------------------------------------------------- silent misreadings

def test_versions_are_strings_and_a_number_is_refused_with_the_reason():
    """``"kernel": 6.10`` as a JSON number is 6.1: refused with that hint; the string is read."""
    e = refused({"client": {"kernel": 6.10}, "server": {}}, "client.kernel")
    assert "the JSON number 6.10 is 6.1" in str(e)
    assert load({"client": {"kernel": "6.10"}, "server": {}}).client.kernel == (6, 10)
    refused({"client": {}, "server": {"app": {"kind": "sshd", "version": 9.6}}}, "server.app.version")
    for bad in ("9", "9.", "٩.6", "9.6p1", "+9.6", " 9.6"):
        refused({"client": {}, "server": {"app": {"kind": "sshd", "version": bad}}}, "server.app.version")


@pytest.mark.parametrize("text,want", [("1h30m", 5400), ("90", 90), ("5M", 300), ("none", 0),
                                       ("1.5h", None), ("5x", None), ("-5", None), ("1 h", None), ("", None)])
def test_openssh_times_have_one_grammar_in_scenarios_and_config_files(text, want):
    """ServerAliveInterval "1.5h" is refused in a scenario as ssh refuses it in ssh_config: both go
    through convtime() (OpenSSH misc.c)."""
    sc = {"client": {"app": {"kind": "ssh", "options": {"ServerAliveInterval": text}}}, "server": {}}
    conf = f"Host *\n ServerAliveInterval {text}\n"
    if want is None:
        refused(sc, "ServerAliveInterval")
        if text.strip():
            with pytest.raises(ConfigError, match="ServerAliveInterval"):
                parse_ssh_config(conf, "h")
    else:
        assert load(sc).client.app.alive_interval_s == want
        assert parse_ssh_config(conf, "h").options["ServerAliveInterval"] == want


@pytest.mark.parametrize("value", [[1.5, 2.7], [True, True], [1, float("inf")], "7_200 8000", "٣٢٧٦٨ 60999",
                                   [1], [2, 1], ["1", 2.0], "1 2 3"])
def test_port_ranges_are_two_whole_port_numbers(value):
    """ip_local_port_range: two whole numbers 1..65535, low <= high; int() would truncate 1.5, take
    True as 1, and read "7_200"."""
    refused({"client": {"sysctl": {"net.ipv4.ip_local_port_range": value}}, "server": {}}, "ip_local_port_range")


def test_port_ranges_as_linux_prints_them_are_read():
    """The shapes Linux and kalab's docs use are read."""
    for value in ([32768, 60999], "32768 60999", "32768\t60999"):
        load({"client": {"sysctl": {"net.ipv4.ip_local_port_range": value}}, "server": {}})


@pytest.mark.parametrize("value", ["7_200", "+7200", "٧٢٠٠", "7200.0", "1" * 30])
def test_sysctl_dump_integers_are_read_as_the_kernel_reads_them(value):
    """A dump's integer is ASCII digits with an optional minus: "7_200", "+7200", Arabic-Indic digits
    (all taken by Python's int()) are refused with file and line."""
    with pytest.raises(ConfigError, match="dump:1: net.ipv4.tcp_keepalive_time"):
        parse_sysctl(f"net.ipv4.tcp_keepalive_time = {value}\n", "dump")


def test_unknown_telnetd_flags_are_refused():
    """telnetd flags kalab does not know are refused (it cannot tell whether they change keepalive)."""
    e = refused({"client": {}, "server": {"app": {"kind": "telnetd", "flags": ["-x"]}}}, "server.app.flags")
    assert "unknown telnetd flag '-x'" in str(e) and "-n" in str(e)
    load({"client": {}, "server": {"app": {"kind": "telnetd", "flags": ["-h", "-n"]}}})
    for bad in (["-K", "7_200"], ["-K", "0"], ["-K", "2147483648"], ["-K"], ["-k", "٣"]):
        refused({"client": {}, "server": {"os": "sco-openserver", "app": {"kind": "telnetd", "flags": bad}}},
                "server.app.flags")


# ---------------------------------------------------------------- files

def _fifo(tmp_path):
    p = tmp_path / "fifo"
    os.mkfifo(p)
    return str(p)


def _within(seconds: float, fn, *a, **kw):
    """Run fn; fail (not hang) if it takes longer than ``seconds``."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn(*a, **kw)
        except BaseException as e:     # noqa: BLE001 - handed back to the test
            box["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{fn.__name__} still running after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_only_regular_files_are_read_and_up_to_a_documented_size(tmp_path):
    """/dev/zero, /dev/urandom, a FIFO with no writer and a directory are refused at once (not read
    until memory runs out, not waited on for ever); a file over the limit is refused unread."""
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(MAX_CONFIG_BYTES + 1)          # sparse: nothing is written
    for path, what in (("/dev/zero", "character device"), ("/dev/urandom", "character device"),
                       (_fifo(tmp_path), "FIFO"), (str(tmp_path), "directory"), (str(big), "too big")):
        for reader in (load_file, read_sysctl, lambda p: read_ssh_config(p, "h"), read_sshd_config):
            with pytest.raises(ScenarioError, match=what):
                _within(5, reader, path)


@pytest.mark.parametrize("option", ["--client-sysctl", "--server-sysctl", "--ssh-config", "--server-sshd-config"])
def test_cli_names_the_option_of_a_file_it_cannot_read(capsys, tmp_path, option):
    """``kalab explain --client-sysctl /dev/zero``: exit 2, one line naming the option and the path."""
    code, _out, err = _within(10, cli, capsys, "explain", option, _fifo(tmp_path), "--host", "h")
    assert code == 2 and err.startswith(f"kalab: error: {option}: ") and "FIFO" in err and err.count("\n") == 1
    code, _out, err = cli(capsys, "simulate", "/dev/zero")
    assert code == 2 and "/dev/zero: is a character device" in err and err.count("\n") == 1


def test_ssh_config_include_cycles_are_refused_at_once(tmp_path):
    """A file including itself three times took > 20 s and 131,081 lines; three files under a glob
    that include ``*.conf`` likewise.  A cycle is refused at once with file:line, as ssh refuses it."""
    (tmp_path / "config").write_text("Include config\nInclude config\nInclude config\n")
    t = time.perf_counter()
    with pytest.raises(ConfigError, match=r"config:1: Include: 'config' is a cycle"):
        read_ssh_config(str(tmp_path / "config"), "h")
    d = tmp_path / "conf.d"
    d.mkdir()
    for name in "abc":
        (d / f"{name}.conf").write_text("Include *.conf\n")
    (tmp_path / "main").write_text("Include conf.d/*.conf\n")
    with pytest.raises(ConfigError, match=r"a.conf:1: Include: '\*.conf' is a cycle"):
        read_sshd_config(str(tmp_path / "main"))
    assert time.perf_counter() - t < 2


def test_ssh_config_include_reads_a_bounded_number_of_files(tmp_path):
    """Without a cycle, a diamond of Includes (each file including the next level three times)
    would read 3^16 files: at most MAX_INCLUDE_FILES (256) files are read, then it is refused."""
    for i in range(16):
        (tmp_path / f"l{i}").write_text(f"Include l{i + 1}\n" * 3)
    (tmp_path / "l16").write_text("ServerAliveInterval 5\n")
    t = time.perf_counter()
    with pytest.raises(ConfigError, match=f"more than {MAX_INCLUDE_FILES} files"):
        read_ssh_config(str(tmp_path / "l0"), "h")
    assert time.perf_counter() - t < 5


def test_an_include_of_something_unreadable_is_reported(tmp_path):
    """An Include matching /dev/zero, a directory or a FIFO is reported with file:line and skipped
    (it was skipped silently), and nothing blocks."""
    (tmp_path / "sub").mkdir()
    fifo = _fifo(tmp_path)
    (tmp_path / "config").write_text(f"Include /dev/zero\nInclude sub\nInclude {fifo}\nServerAliveInterval 7\n")
    c = _within(5, read_ssh_config, str(tmp_path / "config"), "h")
    assert c.options == {"ServerAliveInterval": 7}
    problems = "\n".join(map(str, c.problems))
    assert "config:1: Include '/dev/zero'" in problems and "character device" in problems
    assert "config:2: Include 'sub'" in problems and "directory" in problems
    assert "config:3: Include" in problems and "FIFO" in problems


def test_a_long_sysctl_line_is_read_in_linear_time():
    """The sysctl line pattern backtracked quadratically: a 100 kB line took 62 s."""
    for line in ("a" + " " * 100_000 + "b", "a = " + " " * 100_000 + "b", "a" * 100_000, "x:" + ":" * 100_000):
        t = time.perf_counter()
        parse_sysctl(line + "\n")
        assert time.perf_counter() - t < 1
    d = parse_sysctl("net.ipv4.tcp_keepalive_time = 60\n/proc/sys/net/ipv4/tcp_keepalive_intvl:5\n"
                     "net.ipv4.tcp_keepalive_probes 3\nkernel.domainname =\n")
    assert d.values == {"net.ipv4.tcp_keepalive_time": 60, "net.ipv4.tcp_keepalive_intvl": 5,
                        "net.ipv4.tcp_keepalive_probes": 3} and d.problems == ()


# ---------------------------------------------------------------- sweep

SWEEP_BASE = {"client": {"socket": {"SO_KEEPALIVE": 1}}, "server": {}, "faults": [{"kind": "link_down", "at_s": 1}],
              "until_s": 100_000}


@pytest.mark.parametrize("axes,match", [
    ({}, "^axes: needs at least one axis"),
    (["client.socket.TCP_KEEPIDLE"], "^axes: must be a dict"),
    ({"client.socket.TCP_KEEPIDLE": 5}, "^client.socket.TCP_KEEPIDLE: an axis is a list"),
    ({"client.socket.TCP_KEEPIDLE": None}, "^client.socket.TCP_KEEPIDLE: an axis is a list"),
    ({"client.socket.TCP_KEEPIDLE": "60"}, "^client.socket.TCP_KEEPIDLE: an axis is a list"),
    ({"until_s.x": [1, 2]}, "^until_s.x: until_s is 100000, not an object"),
    ({"client.socket.TCP_KEEPIDLE": [1, 10**400]}, "^client.socket.TCP_KEEPIDLE: <an integer of about 401 digits>"),
    ({"client.socket.TCP_KEEPIDLE": np.ones((2, 2))}, "one-dimensional"),
    ({"client.socket.TCP_KEEPIDLE": range(10**30)}, "too long"),
])
def test_sweep_arguments_are_refused_naming_the_argument(axes, match):
    """sweep(sc, {}), an axis given as a scalar or None, axes as a list, a key below a number:
    a ScenarioError naming the argument, not a raw ValueError/TypeError/AttributeError."""
    with pytest.raises(ScenarioError, match=match):
        sweep(SWEEP_BASE, axes)


def test_sweep_out_must_be_a_directory(tmp_path):
    """``out=`` an existing file: refused naming ``out`` (was FileExistsError)."""
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ScenarioError, match="^out: .* exists and is not a directory"):
        sweep(SWEEP_BASE, {"client.socket.TCP_KEEPIDLE": [1, 2]}, out=str(f))


def test_sweep_sizes_the_grid_from_the_axes_lengths_first():
    """The point count is the product of the axes' lengths in exact integers, before any axis is
    materialised: range(1, 10**8 + 1) is refused at once (was 203 s and 7 GB), and four axes of
    65,536 values are 2^64 points (the int64 product wrapped to 0 and skipped the check)."""
    t = time.perf_counter()
    with pytest.raises(ScenarioError, match=r"100,000,000 points.*out=DIR"):
        sweep(SWEEP_BASE, {"client.socket.TCP_KEEPIDLE": range(1, 10**8 + 1)})
    keys = ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_USER_TIMEOUT")
    with pytest.raises(ScenarioError, match=r"18,446,744,073,709,551,616 points"):
        sweep(SWEEP_BASE, {f"client.socket.{k}": range(1, 65537) for k in keys})
    assert time.perf_counter() - t < 1


def test_with_value_below_a_number_names_the_key():
    """A dotted key that goes below a number or a string is refused naming the key."""
    with pytest.raises(ScenarioError, match="^until_s.x: "):
        with_value({**BASE, "until_s": 5}, "until_s.x", 1)


# ---------------------------------------------------------------- recommend

def _args(**kw):
    from argparse import Namespace
    d = dict(detect_within="30s", survive_outage=None, nat_idle=None, side="both", max_probes_per_hour=None,
             rtt_ms=50.0, sshd_version="9.6", json=False)
    d.update(kw)
    return Namespace(**d)


@pytest.mark.parametrize("kw,option", [
    ({"sshd_version": "9"}, "--sshd-version"), ({"sshd_version": "9.6.x"}, "--sshd-version"),
    ({"detect_within": "1w"}, "--detect-within"), ({"detect_within": "9" * 5000}, "--detect-within"),
    ({"survive_outage": "2d"}, "--survive-outage"), ({"nat_idle": "0"}, "--nat-idle"),
    ({"max_probes_per_hour": float("nan")}, "--max-probes-per-hour"), ({"rtt_ms": float("inf")}, "--rtt-ms"),
])
def test_recommend_refuses_a_goal_naming_the_option_typed(kw, option):
    """A goal kalab cannot answer is refused naming the option the user typed, never an internal
    key (``--sshd-version 9`` was ``ValueError: not enough values to unpack``)."""
    with pytest.raises(ScenarioError, match=f"^{option}: ") as e:
        goal_from_args(_args(**kw))
    assert len(str(e.value)) < 600


def test_recommend_answers_the_documented_limits(capsys):
    """``--detect-within 1d`` (the documented upper limit) is answered: settings within setsockopt's
    limits (TCP_KEEPIDLE <= 32767 s; it failed on an internal key); ``--nat-idle 36500d`` too."""
    from kalab.recommend.candidates import _keepalive_candidates
    goal = goal_from_args(_args(detect_within="1d", nat_idle="36500d"))
    for s in _keepalive_candidates(goal, "tcp-keepalive"):
        assert s["idle"] <= 32767 and s["intvl"] <= 32767
    code, out, err = cli(capsys, "recommend", "--detect-within", "1d", "--nat-idle", "36500d", "--side", "server")
    assert code == 0 and err == "" and "== server: tcp-keepalive" in out


# ---------------------------------------------------------------- the CLI

@pytest.mark.parametrize("argv,option", [
    (["explain", "--until", "5000d"], "--until"),
    (["explain", "--fault", "link_down@9999999999"], "--fault"),
    (["explain", "--fault", "link_down@10+9999999999", "--until", "100"], "--fault"),
    (["explain", "--rtt-ms", "nan"], "--rtt-ms"),
    (["explain", "--ssh-version", "9"], "--ssh-version"),
    (["explain", "--sshd-version", "99.1"], "--sshd-version"),
])
def test_explain_errors_name_the_option_typed(capsys, argv, option):
    """A value from an option that the scenario refuses is reported under the option's name."""
    code, _out, err = cli(capsys, *argv)
    assert code == 2 and err.startswith(f"kalab: error: {option}: ") and err.count("\n") == 1


def test_simulate_refuses_hostile_files_in_one_line(capsys, tmp_path):
    """Every hostile scenario file ends in exit 2 and one line on stderr."""
    texts = ['{"client": {}, "server": {}, "name": "\\udc80"}', "[" * 100_000, '{"client": {}, "client": {}}',
             '{"client": {}, "server": {}, "until_s": ' + "9" * 5000 + "}", "\x00\xff", ""]
    for i, text in enumerate(texts):
        p = tmp_path / f"{i}.json"
        p.write_bytes(text.encode("utf-8", "surrogatepass"))
        code, out, err = cli(capsys, "simulate", str(p))
        assert code == 2 and out == "" and err.startswith("kalab: error: ") and err.count("\n") == 1, err


def test_a_refusal_is_one_line_whatever_the_key_holds():
    """A key or value with a newline, a control character or a lone surrogate is shown escaped:
    the refusal stays one printable line (benchmarks/fuzz.py found a JSON key "a\\nb" that split it)."""
    for text in ('{"client": {}, "server": {}, "a\\nb\\u0007": 1}', '{"client": {"os": "x\\ny"}, "server": {}}',
                 '{"client": {}, "server": {}, "\\udc80": 1}'):
        with pytest.raises(ScenarioError) as e:
            loads(text)
        assert str(e.value).isprintable(), str(e.value)
