"""Fuzz kalab with >= 10^5 mutated inputs, through the API and the CLI, under a memory cap and a
per-input time limit; print the counts by outcome (issue 12, "Proof").

    python benchmarks/fuzz.py                       # 100,000 inputs + 300 real CLI processes
    python benchmarks/fuzz.py --n 2000 --subprocesses 20     # a quick look

Each input runs in a worker process whose address space is capped (``RLIMIT_AS``, ``--memory-mib``)
and whose time per input is limited (``--seconds``: an interval timer in the worker, and the parent
kills a worker that does not answer within twice that).  Outcomes:

* ``refused``  -- a one-line :class:`~kalab.errors.ScenarioError` (API), or exit 2 with one
  ``kalab...: error:`` line and no traceback (CLI);
* ``accepted`` -- a result (API), or exit 0/1 (CLI; ``recommend`` exits 1 when a goal is unmet);
* ``traceback`` -- any other exception, a traceback on stderr, a refusal of several lines, another exit code;
* ``over time`` / ``over memory`` -- the limits above (``MemoryError``, or a worker killed).

Kinds of input (all generated from one seed, reproducible): scenario dicts with hostile values
set anywhere, then ``simulate()`` when accepted (``load``); scenario JSON text with bytes cut,
doubled or replaced (``loads``); sysctl dumps, ssh_config and sshd_config texts (``sysctl``,
``ssh_config``, ``sshd_config``); ``recommend`` goals (``recommend``; one in 50 is also answered);
``sweep`` arguments (``sweep``); ``kalab`` command lines run in-process with ``main()`` (``cli``)
and in real processes (``subprocess``).  The first failures of each kind are printed with their
input, to reproduce them.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTCOMES = ("refused", "accepted", "traceback", "over time", "over memory")
#: Share of each in-process kind in --n (the subprocesses come on top).
MIX = {"load": 30, "loads": 22, "sysctl": 6, "ssh_config": 6, "sshd_config": 6, "recommend": 6, "sweep": 6, "cli": 18}


class OverTime(BaseException):
    """The per-input time limit (a BaseException: no ``except Exception`` in kalab can swallow it)."""


# ---------------------------------------------------------------- hostile values and mutations

HOSTILE_STRINGS = ["\udc80", "\ud800x", "1.5h", "7_200", "٣", "9", "6.10", "1e400", "-1", "none", "+5", "0x10",
                   "x" * 100_000, "9" * 5000, "1h30m", "32768 60999", "1 2 3", "-n", "-K", "-k", "nan", "Infinity",
                   "", " ", "\x00", "yes", "no", "linux", "macos", "sco-openserver", "ssh", "sshd", "telnetd",
                   "aws-nat", "drop", "rst", "link_down", "host_crash", "client", "server", "9.2", "5.0", "10.99",
                   "２", "9.6p1", "¹", "\n", "\\", '"', "{}", "[]"]


def hostile(r: random.Random, depth: int = 0):
    c = r.randrange(16)
    if c == 0:
        return r.choice([10**400, -(10**400), 10**5000, 2**63, 2**64 + 1, -1, 0, 1, 2**31, 2**31 - 1, 10**8 + 1])
    if c == 1:
        return r.choice([float("inf"), float("-inf"), float("nan"), 1e308, -0.0, 1e-300, 0.5, 1.5, 6.10, 1e8])
    if c == 2:
        return r.choice([True, False, None])
    if c in (3, 4):
        return r.choice(HOSTILE_STRINGS)
    if c == 5:
        v: object = []
        for _ in range(r.choice([3, 33, 100, 600, 5000])):
            v = [v] if r.random() < 0.5 else {"k": v}
        return v
    if c == 6 and depth < 2:
        return [hostile(r, depth + 1) for _ in range(r.randrange(4))]
    if c == 7 and depth < 2:
        return {r.choice(HOSTILE_STRINGS[:20] + ["kind", "at_s", "x"]): hostile(r, depth + 1) for _ in range(r.randrange(3))}
    if c == 8:
        return r.randint(-10, 10**6)
    if c == 9:
        return r.uniform(-10, 1e6)
    if c == 10:
        return [r.randint(0, 70000), r.randint(0, 70000)]
    if c == 11:
        return ["-k", str(r.randint(-1, 10**10)), "-K", r.choice(HOSTILE_STRINGS), "-N", str(r.randint(0, 300))]
    if c == 12:
        return r.choice(["%d%s" % (r.randint(0, 10**12), r.choice("smhdwxMH. ")) for _ in range(3)])
    if c == 13:
        return "".join(r.choice("0123456789.:_-+ ehms\t") for _ in range(r.randrange(12)))
    return r.randint(0, 100)


def seeds() -> list[dict]:
    out = [json.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.json"))]
    out.append({"client": {}, "server": {}})
    return out


KEY_PATHS = ["name", "description", "until_s", "start", "client", "server", "path", "traffic", "faults",
             "client.os", "client.kernel", "client.hz", "client.monotime_phase_s", "client.srtt_ms", "client.sysctl",
             "client.socket", "client.app", "client.app.kind", "client.app.version", "client.app.options",
             "client.app.flags", "server.os", "server.kernel", "server.app.kind", "server.app.version",
             "server.app.options", "server.app.flags", "path.rtt_ms", "path.middleboxes",
             "path.middleboxes.0.idle_timeout_s", "path.middleboxes.0.preset", "traffic.0.at_s", "traffic.0.bytes",
             "traffic.0.every_s", "traffic.0.count", "traffic.0.from", "faults.0.kind", "faults.0.at_s",
             "faults.0.for_s", "faults.0.side", "faults.0.down_s", "until_s.x", "client.sysctl.x"]


def _paths(node, prefix=""):
    """Every dotted path in a scenario (the mutation targets)."""
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{prefix}.{k}" if prefix else k
            yield p
            if k not in ("sysctl",):
                yield from _paths(v, p)
            else:
                for name in v:
                    yield f"{p}.{name}"
    elif isinstance(node, list):
        for i, v in enumerate(node):
            p = f"{prefix}.{i}"
            yield p
            yield from _paths(v, p)


def mutate_scenario(r: random.Random, seed: dict) -> dict:
    from kalab.errors import ScenarioError
    from kalab.scenario import with_value
    data = seed
    targets = list(_paths(seed)) + KEY_PATHS
    for _ in range(r.randint(1, 3)):
        key = r.choice(targets)
        roll = r.random()
        try:
            if roll < 0.75:
                data = with_value(data, key, hostile(r))
            elif roll < 0.85 and "." not in key and key in data:
                data = {k: v for k, v in data.items() if k != key}
            else:
                data = with_value(data, key, r.choice([10, 60, 3600, 86400, 1e8, 0.001, "5m", "9.6", "6.18", 7]))
        except ScenarioError:
            pass
    return data


FRAGMENTS = ['"', "{", "}", "[", "]", ",", ":", "[" * 600, "]" * 50, "1" * 5000, "\\ud800", "\\u0000", "\\udc80",
             "-", "1e999", "NaN", "Infinity", '"client": {}, ', '"until_s": 1, ', "true", "null", "\x00", "\udc80",
             " " * 1000, "0" * 200, '"x": ' * 40, '{"a":' * 40]


def mutate_text(r: random.Random, text: str) -> str:
    for _ in range(r.randint(1, 4)):
        i = r.randrange(len(text) + 1)
        j = min(len(text), i + r.randrange(30))
        piece = r.choice(FRAGMENTS + [text[i:j], text[i:j] * 2, "", text[i:j][::-1]])
        text = text[:i] + piece + text[j:]
    return text


CONFIG_WORDS = {
    "sysctl": ["net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
               "net.ipv4.tcp_retries2", "net.ipv4.ip_local_port_range", "net.inet.tcp.keepidle", "kern.ostype",
               "/proc/sys/net/ipv4/tcp_retries2", "sysctl: permission denied", " = ", ":", " ", "\t", "#", ";",
               "7200", "7_200", "-1", "+5", "٣", "9" * 400, "Darwin", "FreeBSD", "32768 60999", "\n", "\n", "\n"],
    "ssh_config": ["Host", "Match", "Include", "ServerAliveInterval", "ServerAliveCountMax", "ConnectTimeout",
                   "TCPKeepAlive", "HostName", "User", "all", "host", "exec", "originalhost", "!", "*", "?", "h",
                   "=", " ", "\t", '"', "#", "5", "1h30m", "1.5h", "none", "yes", "no", "9" * 400, "-3", "٣",
                   "/dev/zero", "/tmp", "*.conf", "~/x", "\n", "\n", "\n"],
    "sshd_config": ["Match", "Include", "ClientAliveInterval", "ClientAliveCountMax", "TCPKeepAlive", "User", "Group",
                    "Address", "Host", "LocalPort", "All", "alice", "198.51.100.0/24", "1.2.3.4/99", "!", "*", ",",
                    " ", "=", '"', "#", "5", "5m", "1.5h", "9" * 400, "yes", "no", "/dev/zero", "\n", "\n", "\n"],
}


def config_text(r: random.Random, kind: str) -> str:
    words = CONFIG_WORDS[kind]
    base = {"sysctl": "examples/configs/sysctl-a-linux.txt", "ssh_config": "examples/configs/ssh-G.txt",
            "sshd_config": "examples/configs/sshd-T.txt"}[kind]
    if r.random() < 0.3:
        lines = (ROOT / base).read_text().splitlines()
        i = r.randrange(len(lines))
        lines[i:i + 1] = ["".join(r.choice(words) for _ in range(r.randrange(6)))]
        return "\n".join(lines[:r.randrange(len(lines) + 1)] if r.random() < 0.3 else lines)
    return "".join(r.choice(words) + r.choice(["", " ", " "]) for _ in range(r.randrange(40)))


DURATIONS = [None, "30s", "1d", "0", "-5", "1.5h", "9" * 5000, "1e400", "nan", "2d", "\udc80", "1 h", "", "36500d",
             "5m", "1m", "2m", "10s", "90", "1h", "24h", "86401"]


def recommend_args(r: random.Random) -> dict:
    return dict(detect_within=r.choice(DURATIONS[1:] + [r.choice(HOSTILE_STRINGS)]),
                survive_outage=r.choice(DURATIONS), nat_idle=r.choice(DURATIONS),
                side=r.choice(["client", "server", "both", "x", ""]),
                max_probes_per_hour=r.choice([None, None, 1.0, 60.0, -1.0, 0.0, float("nan"), float("inf"), 1e308]),
                rtt_ms=r.choice([50.0, 1.0, 0.0, -1.0, 1e4, 1e5, float("nan"), float("inf")]),
                sshd_version=r.choice(["9.6", "9.2", "8.1", "9", "99.1", "9.6.1", "٩.6", "9" * 5000, "", "5.0"]),
                json=r.random() < 0.5)


SWEEP_KEYS = ["client.socket.TCP_KEEPIDLE", "client.socket.TCP_KEEPINTVL", "client.socket.TCP_KEEPCNT",
              "client.sysctl.net.ipv4.tcp_retries2", "faults.0.for_s", "faults.0.at_s", "until_s", "client.os",
              "client.hz", "until_s.x", "client.app.options.ServerAliveInterval", "path.rtt_ms", "name", "x.y",
              "faults.9.at_s", "faults.²", "client.socket.TCP_USER_TIMEOUT"]


def sweep_args(r: random.Random):
    import numpy as np

    def values():
        c = r.randrange(12)
        return [None, 5, "abc", [hostile(r)], range(1, r.choice([3, 10, 10**8 + 1, 10**30])),
                np.arange(1, r.randrange(2, 6)), np.ones((2, 2)), np.array([]), [1, float("nan")],
                (i for i in range(1, 4)), [1, "a"], [r.randint(1, 100) for _ in range(r.randrange(1, 5))]][c]
    roll = r.random()
    if roll < 0.05:
        axes: object = r.choice([{}, [], None, "client.os", 5])
    elif roll < 0.1:
        axes = {k: range(1, 65537) for k in SWEEP_KEYS[:4]}
    else:
        axes = {r.choice(SWEEP_KEYS): values() for _ in range(r.randint(1, 3))}
    out = r.choice([None] * 8 + ["FILE", "DIR", 5])
    return axes, out


def cli_argv(r: random.Random, files: dict) -> list[str]:
    cmd = r.choice(["simulate", "simulate", "explain", "explain", "recommend", "bogus", ""])
    argv = [cmd] if cmd else []
    if cmd == "simulate":
        argv.append(r.choice([files["scenario"], files["scenario"], "/dev/zero", files["fifo"], files["dir"],
                              "/nonexistent", "\udc80", files["big"]]))
        argv += r.sample(["--json", "--all"], r.randrange(3))
    elif cmd == "explain":
        opts = {"--client-sysctl": [files["sysctl"], "/dev/zero", files["fifo"], files["dir"], files["big"]],
                "--server-sysctl": [files["sysctl"], "/dev/urandom"],
                "--ssh-config": [files["ssh_config"], files["fifo"], "/dev/zero"],
                "--server-sshd-config": [files["sshd_config"], files["dir"]],
                "--host": ["h", "\udc80", "*"], "--ssh-version": ["9.6", "9", "6.10", "9" * 5000],
                "--sshd-version": ["9.2", "99.1", "x"], "--sshd-match": ["user=alice", "x", "=", "address=1.2.3.4"],
                "--middlebox": ["aws-nat", "nope"], "--rtt-ms": ["50", "nan", "1e400", "-1", "x"],
                "--fault": ["link_down@60+30", "host_crash:client@10", "link_down@9999999999", "sleep@5",
                            "host_reboot:server@5+20", "x", "link_down@10+9999999999"],
                "--until": ["1h", "5000d", "1.5", "x", "9" * 5000], "--client-os": ["linux", "windows"]}
        for opt in r.sample(list(opts), r.randrange(5)):
            argv += [opt, r.choice(opts[opt])]
        argv += ["--json"] if r.random() < 0.3 else []
    elif cmd == "recommend":
        a = recommend_args(r)
        # Answering a goal simulates dozens of scenarios (seconds): most command lines here are ones
        # refused up front; 1 in 20 is answered.
        if r.random() > 0.05:
            a["side"] = r.choice(["x", "", "client\udc80"]) if r.random() < 0.5 else a["side"]
            a["detect_within"] = r.choice(["\udc80", "9" * 5000, "2d", "0"]) if a["side"] in ("client", "server", "both") else a["detect_within"]
        else:
            a.update(detect_within=r.choice(["30s", "2m", "90"]), survive_outage=None, side=r.choice(["client", "server"]))
        for opt, v in (("--detect-within", a["detect_within"]), ("--survive-outage", a["survive_outage"]),
                       ("--nat-idle", a["nat_idle"]), ("--side", a["side"]), ("--sshd-version", a["sshd_version"])):
            if v is not None:
                argv += [opt, v]
        if r.random() < 0.3:
            argv += ["--max-probes-per-hour", r.choice(["nan", "-1", "inf", "60", "x"])]
        if r.random() < 0.3:
            argv += ["--rtt-ms", r.choice(["nan", "0", "1e5", "50", "x"])]
    else:
        argv += [r.choice(HOSTILE_STRINGS) for _ in range(r.randrange(3))]
    if r.random() < 0.05:
        argv.insert(r.randrange(len(argv) + 1), r.choice(HOSTILE_STRINGS))
    return argv


# ---------------------------------------------------------------- the worker

def _json(data) -> str:
    """A mutated scenario as JSON text, 5,000-digit numbers and 5,000-deep lists included."""
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return json.dumps(data)
    except RecursionError:
        return '{"client": {}, "server": {}, "description": ' + "[" * 5000 + "]" * 5000 + "}"
    finally:
        sys.set_int_max_str_digits(old)


def _desc(x) -> str:
    """A short description of an input (the seed reproduces it)."""
    from kalab.errors import show
    return show(x)


def _one_line_error(err: str) -> bool:
    """One ``kalab...: error:`` line, after argparse's usage lines where argparse refuses."""
    lines = err.strip().splitlines()
    return bool(lines) and "Traceback" not in err and lines[-1].startswith("kalab") and ": error" in lines[-1] \
        and all(ln.startswith(("usage:", " ")) for ln in lines[:-1])


def run_input(kind: str, seed: int, files: dict, sd: list) -> tuple[str, str]:
    """(outcome, description of the input) for input ``seed`` of ``kind``."""
    from kalab.errors import ScenarioError
    r = random.Random(seed)
    desc = ""
    try:
        if kind == "load":
            from kalab import simulate
            from kalab.scenario import load
            data = mutate_scenario(r, r.choice(sd))
            desc = _desc(data)
            sc = load(data)
            simulate(sc)
        elif kind == "loads":
            from kalab.scenario import loads
            text = mutate_text(r, json.dumps(r.choice(sd), indent=r.choice([None, 1])))
            desc = _desc(text)
            loads(text)
        elif kind in ("sysctl", "ssh_config", "sshd_config"):
            from kalab.configs.openssh import parse_ssh_config, parse_sshd_config
            from kalab.configs.sysctl import parse_sysctl
            text = config_text(r, kind)
            desc = _desc(text)
            if r.random() < 0.2:             # through a file: Include then applies
                Path(files[kind]).write_text(text, errors="surrogateescape")
                from kalab.configs import read_ssh_config, read_sshd_config, read_sysctl
                {"sysctl": lambda: read_sysctl(files[kind]), "ssh_config": lambda: read_ssh_config(files[kind], "h"),
                 "sshd_config": lambda: read_sshd_config(files[kind], match={"user": "alice"})}[kind]()
            else:
                {"sysctl": lambda: parse_sysctl(text, "dump"), "ssh_config": lambda: parse_ssh_config(text, "h"),
                 "sshd_config": lambda: parse_sshd_config(text, match={"user": "alice"})}[kind]()
        elif kind == "recommend":
            from argparse import Namespace

            from kalab.cli import goal_from_args
            from kalab.recommend import answer
            a = recommend_args(r)
            desc = _desc(a)
            goal = goal_from_args(Namespace(**a))
            if seed % 50 == 0 and goal.detect_within_s <= 300 and goal.survive_outage_s < goal.detect_within_s - 1:
                answer(goal)
        elif kind == "sweep":
            from kalab.sweep import sweep
            axes, out = sweep_args(r)
            out = {"FILE": files["sysctl"], "DIR": files["sweepdir"]}.get(out, out)
            desc = _desc((axes, out))
            sweep(r.choice(sd[:3] + [sd[-1]]), axes, out=out, max_result_bytes=36 * 20_000, progress=False)
        elif kind == "cli":
            from kalab.cli import main
            argv = cli_argv(r, files)
            desc = _desc(argv)
            Path(files["scenario"]).write_text(_json(mutate_scenario(r, r.choice(sd))) if r.random() < 0.7
                                               else mutate_text(r, json.dumps(r.choice(sd))), errors="surrogatepass")
            out, err = io.StringIO(), io.StringIO()
            try:
                with redirect_stdout(out), redirect_stderr(err):
                    code = main(argv)
            except SystemExit as e:
                code = e.code
            if code == 2:
                return ("refused" if _one_line_error(err.getvalue()) else "traceback"), desc + " -> " + err.getvalue()[-300:]
            return ("accepted" if code in (0, 1) and "Traceback" not in err.getvalue() else "traceback"), \
                desc + f" -> exit {code} " + err.getvalue()[-300:]
        elif kind == "subprocess":
            argv = cli_argv(r, files)
            desc = _desc(argv)
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            try:
                # As bytes: a lone surrogate reaches kalab as the invalid UTF-8 a shell would pass.
                # (A NUL cannot be passed in argv at all.)
                raw = [a.replace("\x00", "").encode("utf-8", "surrogatepass") for a in argv]
                p = subprocess.run([sys.executable, "-m", "kalab", *raw], cwd=ROOT, env=env, capture_output=True,
                                   stdin=subprocess.DEVNULL, timeout=files["seconds"])
            except subprocess.TimeoutExpired:
                return "over time", desc
            err = p.stderr.decode("utf-8", "replace")
            if p.returncode == 2:
                return ("refused" if _one_line_error(err) else "traceback"), desc + " -> " + err[-300:]
            if p.returncode in (0, 1) and "Traceback" not in err:
                return "accepted", desc
            if p.returncode in (-signal.SIGKILL, -signal.SIGSEGV) or "MemoryError" in err:
                return "over memory", desc + " -> " + err[-300:]
            return "traceback", desc + f" -> exit {p.returncode} " + err[-300:]
    except ScenarioError as e:
        text = str(e)
        return ("refused" if "\n" not in text and len(text) < 700 else "traceback"), desc + " -> " + text[:300]
    except MemoryError:
        return "over memory", desc
    except OverTime:
        return "over time", desc
    except Exception:
        return "traceback", desc + "\n" + traceback.format_exc()[-1500:]
    return "accepted", desc


def worker(conn, memory_mib: int, seconds: float, files: dict) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_mib << 20, memory_mib << 20))

    def on_alarm(signum, frame):
        raise OverTime

    signal.signal(signal.SIGALRM, on_alarm)
    import kalab.cli  # noqa: F401 - imported once, before the clock starts
    import kalab.sweep  # noqa: F401
    sd = seeds()
    while True:
        job = conn.recv()
        if job is None:
            return
        kind, seed = job
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            try:
                result = run_input(kind, seed, files, sd)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except OverTime:           # (also an alarm that fires just as the timer is cancelled)
            result = ("over time", f"seed {seed}")
        except MemoryError:
            result = ("over memory", f"seed {seed}")
        conn.send(result)


def make_files(d: Path, seconds: float) -> dict:
    (d / "dir").mkdir()
    (d / "sweepdir").mkdir()
    os.mkfifo(d / "fifo")
    with open(d / "big", "wb") as f:
        f.truncate(20 << 20)
    files = {"dir": str(d / "dir"), "fifo": str(d / "fifo"), "big": str(d / "big"), "sweepdir": str(d / "sweepdir"),
             "seconds": seconds}
    for name, src in (("sysctl", "sysctl-a-linux.txt"), ("ssh_config", "ssh-G.txt"), ("sshd_config", "sshd-T.txt")):
        files[name] = str(d / name)
        (d / name).write_text((ROOT / "examples/configs" / src).read_text())
    files["scenario"] = str(d / "scenario.json")
    (d / "scenario.json").write_text('{"client": {}, "server": {}}')
    return files


class Slot:
    """One worker process, restarted after a kill or a crash."""

    def __init__(self, args, base: Path, i: int) -> None:
        self.args, self.dir, self.i = args, base / f"w{i}", i
        self.dir.mkdir()
        self.files = make_files(self.dir, args.seconds)
        self.start()

    def start(self) -> None:
        ctx = mp.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker, args=(child, self.args.memory_mib, self.args.seconds, self.files),
                                daemon=True)
        self.proc.start()
        child.close()

    def run(self, job) -> tuple[str, str]:
        self.conn.send(job)
        if self.conn.poll(self.args.seconds * 2 + 30):
            try:
                return self.conn.recv()
            except EOFError:
                pass
            self.proc.join(1)
            self.start()
            code = self.proc.exitcode
            return ("over memory", f"worker died (exit {code})")
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.join()
        self.start()
        return "over time", "killed by the parent: no answer in time"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="in-process inputs (default 100,000)")
    ap.add_argument("--subprocesses", type=int, default=300, help="real `python -m kalab` runs on top (default 300)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20.0, help="time limit per input (default 20 s)")
    ap.add_argument("--memory-mib", type=int, default=3072, help="address-space cap per worker (default 3 GiB)")
    ap.add_argument("--seed", type=int, default=12)
    args = ap.parse_args()
    r = random.Random(args.seed)
    kinds = [k for k, w in MIX.items() for _ in range(w)]
    jobs = [(r.choice(kinds), r.getrandbits(48)) for _ in range(args.n)]
    jobs += [("subprocess", r.getrandbits(48)) for _ in range(args.subprocesses)]
    r.shuffle(jobs)
    counts: dict[str, Counter] = defaultdict(Counter)
    examples: dict[tuple[str, str], list[str]] = defaultdict(list)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kalab-fuzz-") as tmp:
        from concurrent.futures import ThreadPoolExecutor
        import threading
        slots = [Slot(args, Path(tmp), i) for i in range(args.workers)]
        free = list(slots)
        lock = threading.Lock()
        done = [0]

        def one(job):
            with lock:
                slot = free.pop()
            try:
                outcome, desc = slot.run(job)
            finally:
                with lock:
                    free.append(slot)
            with lock:
                counts[job[0]][outcome] += 1
                if outcome != "refused" and outcome != "accepted" and len(examples[job[0], outcome]) < 3:
                    examples[job[0], outcome].append(f"seed {job[1]}: {desc}")
                done[0] += 1
                if done[0] % 5000 == 0:
                    print(f"  {done[0]:,}/{len(jobs):,} inputs, {time.perf_counter() - t0:.0f} s", file=sys.stderr,
                          flush=True)

        with ThreadPoolExecutor(args.workers) as ex:
            list(ex.map(one, jobs))
        for s in slots:
            s.conn.send(None)
            s.proc.join(5)
    total = Counter()
    for c in counts.values():
        total.update(c)
    width = max(len(k) for k in counts) + 2
    print(f"kalab fuzz: {len(jobs):,} inputs ({args.n:,} in-process, {args.subprocesses:,} real processes), seed "
          f"{args.seed}, {args.workers} workers, limits {args.seconds:g} s and {args.memory_mib:,} MiB per input, "
          f"{time.perf_counter() - t0:.0f} s")
    print(f"{'kind':<{width}}" + "".join(f"{o:>13}" for o in OUTCOMES))
    for kind in sorted(counts):
        print(f"{kind:<{width}}" + "".join(f"{counts[kind][o]:>13,}" for o in OUTCOMES))
    print(f"{'all':<{width}}" + "".join(f"{total[o]:>13,}" for o in OUTCOMES))
    for (kind, outcome), ex in sorted(examples.items()):
        print(f"\n== {kind}: {outcome}")
        for e in ex:
            print("  " + e.replace("\n", "\n    "))
    return 0 if total["traceback"] + total["over time"] + total["over memory"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
