"""Lab pieces that need no root: what it refuses, how it reads a capture, when it plays the faults,
and what it makes of a run's readings."""

import struct

import pytest

from kalab import simulate
from kalab.compare import compare
from kalab.lab import LabError, check_supported, observation_s
from kalab.lab.measure import ssh_setup_anchor
from kalab.lab.pcap import Packet, classify, read_pcap


@pytest.mark.parametrize("sc,fragment", [
    ({"client": {"os": "macos"}, "server": {}}, "real Linux kernel only"),
    ({"client": {"hz": 1000}, "server": {}}, "HZ="),
    ({"client": {"app": {"kind": "telnet"}}, "server": {"app": {"kind": "telnetd"}}}, "no telnet daemon"),
    ({"client": {}, "server": {}, "faults": [{"kind": "sleep", "side": "client", "at_s": 1, "for_s": 2}]},
     "cannot be shown on one kernel"),
    ({"client": {"app": {"kind": "ssh"}, "socket": {"SO_KEEPALIVE": 1}}, "server": {"app": {"kind": "sshd"}}},
     "set their own socket options"),
])
def test_unsupported_scenarios_are_refused_with_a_reason(sc, fragment):
    with pytest.raises(LabError, match=fragment):
        check_supported(sc)


def test_observation_is_until_s_whatever_the_model_predicts():
    """Issue 16: the lab watched until shortly after the model's predicted deaths, so a side that
    outlived its prediction was reported half-open.  It watches until until_s (the run ends sooner
    once every side has ended), so a wrong prediction shows up as a measured time."""
    sshd = {"client": {"app": {"kind": "ssh"}}, "server": {"app": {"kind": "sshd", "version": "10.0", "options": {
        "ClientAliveInterval": 2, "ClientAliveCountMax": 2}}}, "faults": [{"kind": "link_down", "at_s": 0.5}],
        "until_s": 15}
    assert simulate(sshd).server.latest_s < 7      # the model: 10.0 probes every I
    assert observation_s(sshd) == 15               # watched anyway until until_s: 9.2 took 12 s
    tw = observation_s({"client": {}, "server": {}, "traffic": [{"at_s": 1, "from": "client", "close": True}],
                        "until_s": 100})
    assert tw == 100


def test_too_long_a_scenario_is_refused_up_front_naming_until_s(monkeypatch):
    from kalab.lab import supported
    monkeypatch.setattr(supported, "missing_requirements", lambda **kw: [])
    with pytest.raises(LabError, match="until_s is 86400 s.*allow_long"):
        supported.admit({"client": {"socket": {"SO_KEEPALIVE": 1}}, "server": {}}, ssh=False)
    assert supported.admit({"client": {}, "server": {}, "until_s": 80}, ssh=False, allow_long=True) == 80


def test_each_side_runs_the_openssh_build_its_version_names():
    """"9.2" -> Debian's, "10.0" -> the backport; none given -> the system's; others refused with the list."""
    from kalab.lab.host import OpenSSHBuild
    from kalab.lab.supported import openssh_versions
    builds = {"9.2": OpenSSHBuild("9.2", "OpenSSH_9.2p1 Debian-2+deb12u10", "OpenSSH_9.2p1 Debian-2+deb12u10",
                                  "/usr/sbin/sshd", "/usr/bin/ssh"),
              "10.0": OpenSSHBuild("10.0", "OpenSSH_10.0p2 Debian-7~bpo12+1", "OpenSSH_10.0p2 Debian-7~bpo12+1",
                                   "/x/usr/sbin/sshd", "/x/usr/bin/ssh", "/x/sshd-session", "/x/sshd-auth")}
    sc = {"client": {"app": {"kind": "ssh", "version": "10.0"}}, "server": {"app": {"kind": "sshd"}}}
    assert openssh_versions(sc, builds) == {"client": "10.0", "server": "9.2"}
    sc["server"]["app"]["version"] = "9.6"
    with pytest.raises(LabError, match=r"server\.app\.version is '9\.6', but the lab has no OpenSSH 9\.6: "
                                       r"it has 9\.2, 10\.0"):
        openssh_versions(sc, builds)
    assert openssh_versions({"client": {}, "server": {}}, builds) == {}


def test_an_ssh_run_is_settled_when_ssh_exited_and_sshd_logged_the_sessions_end():
    """The listening sshd never exits: its session's last log line is the server's end."""
    from kalab.lab.programs import all_settled
    from kalab.scenario import load

    class Done:
        def poll(self):
            return 255

    class Running:
        def poll(self):
            return None

    class Lines:
        lines = [(1.0, "server-err", "Accepted publickey for root from 192.0.2.2 port 5 ssh2")]
    sc = load({"client": {"app": {"kind": "ssh"}}, "server": {"app": {"kind": "sshd"}}})
    procs = {"client": Done(), "server": Running()}
    assert not all_settled(procs, Lines, sc, ssh=True)           # sshd's session may still end later
    Lines.lines.append((6.5, "server-err", "Timeout, client not responding from user root 192.0.2.2 port 5"))
    assert all_settled(procs, Lines, sc, ssh=True)
    assert not all_settled({"client": Running(), "server": Running()}, Lines, sc, ssh=True)   # half-open client


def test_an_ssh_connect_timeout_is_told_from_the_kernels_syn_timeout():
    """ssh prints the same line for both; ConnectTimeout when it came within 0.5 s of its deadline."""
    from kalab.lab.measure import _ssh_end, _Wire
    line = "ssh: connect to host 198.51.100.2 port 22: Connection timed out"
    wire = _Wire([], [])
    assert _ssh_end([(6.004, "client-err", line)], "client", 0.0, wire, {}, 6.0)["by"] == "ssh.connect_timeout"
    assert _ssh_end([(7.1, "client-err", line)], "client", 0.0, wire, {}, 0.0)["by"] == "tcp.syn_timeout"
    assert _ssh_end([(7.1, "client-err", line)], "client", 0.0, wire, {}, 30.0)["by"] == "tcp.syn_timeout"


def _pkt(ts, src, dst, seq, ack, flags, length=0):
    return Packet(ts, src, dst, 1, 2, seq, ack, flags, length)


def test_classify_names_probes_retransmissions_and_resets():
    C, S = "192.0.2.2", "198.51.100.2"
    ACK, PSH, RST, FIN = 0x10, 0x08, 0x04, 0x01
    pk = [
        _pkt(0.0, C, S, 100, 500, ACK | PSH, 10),     # data
        _pkt(0.001, S, C, 500, 110, ACK),             # ACK
        _pkt(5.0, C, S, 109, 500, ACK),               # keepalive probe: seq = peer's ack - 1
        _pkt(5.001, S, C, 500, 110, ACK),             # its answer
        _pkt(6.0, C, S, 110, 500, ACK | PSH, 5),      # new data
        _pkt(6.2, C, S, 110, 500, ACK | PSH, 5),      # retransmission
        _pkt(7.0, C, S, 115, 500, ACK | FIN),         # FIN
        _pkt(8.0, S, C, 500, 0, RST),                 # RST
    ]
    kinds = [(side, kind) for _, side, kind in classify(pk, {C: "client", S: "server"})]
    assert kinds == [("client", "data"), ("server", "ack"), ("client", "keepalive_probe"),
                     ("client", "keepalive_ack"), ("server", "ack"), ("client", "data"), ("client", "retransmit"),
                     ("client", "fin"), ("server", "rst")]


def test_read_pcap_parses_ethernet_ipv4_tcp(tmp_path):
    def frame(src, dst, seq, ack, flags, payload=b""):
        tcp = struct.pack("!HHIIHHHH", 5000, 40000, seq, ack, (5 << 12) | flags, 65535, 0, 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0,
                         bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
        return b"\x00" * 12 + b"\x08\x00" + ip + tcp
    f = tmp_path / "x.pcap"
    body = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, fr in enumerate([frame("192.0.2.2", "198.51.100.2", 1, 2, 0x18, b"hello"),
                            frame("198.51.100.2", "192.0.2.2", 2, 6, 0x04)]):
        body += struct.pack("<IIII", 100 + i, 250000, len(fr), len(fr)) + fr
    f.write_bytes(body)
    p = read_pcap(f)
    assert [(x.src, x.length, x.rst) for x in p] == [("192.0.2.2", 5, False), ("198.51.100.2", 0, True)]
    assert p[0].ts == pytest.approx(100.25)


def test_ssh_setup_answers_are_new_server_data_before_the_clients_next_message():
    """Seen live under load: the server's answers to the set-up were counted twice (a TLP of the
    last one, and the reply to the first alive message the model answers itself)."""
    C, S = "192.0.2.2", "198.51.100.2"
    ACK, PSH = 0x10, 0x08
    pk = [("rc", _pkt(10.000, C, S, 1000, 5000, ACK | PSH, 36)),    # the client's last set-up data: t = 0
          ("rs", _pkt(10.001, S, C, 5000, 1036, ACK | PSH, 72)),    # answers
          ("rs", _pkt(10.200, S, C, 5072, 1036, ACK | PSH, 52)),
          ("rs", _pkt(10.230, S, C, 5072, 1036, ACK | PSH, 52)),    # its TLP: not the program's
          ("rc", _pkt(10.250, C, S, 1036, 5124, ACK | PSH, 52)),    # the first alive message
          ("rs", _pkt(10.251, S, C, 5124, 1088, ACK | PSH, 28))]    # its reply: the model's own
    tc, answers = ssh_setup_anchor(pk, ready_real=10.21)
    assert tc == 10.000
    assert [(a.ts, a.length) for a in answers] == [(10.001, 72), (10.200, 52)]
    # Answers later than 50 ms after the ready line belong to the session, not the set-up.
    assert [a.ts for a in ssh_setup_anchor(pk, ready_real=10.1)[1]] == [10.001]
    assert ssh_setup_anchor([p for p in pk if p[0] == "rs"], ready_real=10.21) is None


def test_segments_after_the_models_horizon_are_not_judged():
    """The lab may watch a little longer than the scenario's until_s (it stops on its own clock)."""
    side = {"fate": "alive", "at_s": None, "latest_s": None, "by": None, "sees": None}
    seg = {"side": "client", "layer": "tcp", "kind": "retransmit", "detail": ""}
    predicted = {"client": side, "server": side, "until_s": 5.0,
                 "events": [dict(seg, t_s=3.556, latest_s=3.63)]}
    measured = {"client": side, "server": side, "until_s": 5.33,
                "events": [dict(seg, t_s=3.6, latest_s=3.6), dict(seg, t_s=5.2998, latest_s=5.2998)]}
    assert [w["inside"] for w in compare(predicted, measured)["wire"]] == [True, None]
    measured["events"][1].update(t_s=4.9, latest_s=4.9)   # inside the horizon and not predicted: a fault
    assert [w["inside"] for w in compare(predicted, measured)["wire"]] == [True, False]


def test_the_namespace_sweep_never_touches_the_runners_own_namespace():
    """The clean-up kills every process in the lab's namespaces by PID; whatever it is asked, this
    process's own namespace (the host's) is not one of them -- nor PID 1, nor this process."""
    import os

    from kalab.lab import netns
    own = netns._netns_of(os.getpid())
    assert own is not None
    assert netns._foreign({own, 12345, None}) == {12345}
    assert netns.pids_in({own}) == []
    assert os.getpid() not in netns.pids_in({netns._netns_of(os.getpid())})


def test_faults_are_scheduled_in_time_order_with_their_ends():
    """The router plays each fault and its end (unblock, reboot_up) at its time after t = 0; a cut
    at t = 0 of a scenario that starts with connect() is made before the client connects."""
    from kalab.lab.router import before_connect, schedule
    from kalab.scenario import load
    sc = load({"client": {}, "server": {}, "until_s": 9,
               "faults": [{"kind": "host_reboot", "side": "server", "at_s": 1, "down_s": 1},
                          {"kind": "link_down", "at_s": 2, "for_s": 3},
                          {"kind": "process_kill", "side": "client", "at_s": 4}]})
    assert [(at, what, i) for at, what, (i, _) in schedule(sc)] == \
        [(1, "host_reboot", 0), (2, "reboot_up", 0), (2, "link_down", 1), (4, "process_kill", 2), (5, "unblock", 1)]
    assert before_connect(sc) == []
    sc = load({"start": "connect", "client": {}, "server": {}, "until_s": 9,
               "faults": [{"kind": "link_down", "at_s": 0, "for_s": 2}]})
    assert [i for i, _ in before_connect(sc)] == [0]
    assert [(at, what) for at, what, _ in schedule(sc)] == [(2, "unblock")]


def test_a_keepalive_death_is_measured_from_the_readings_alone():
    """The measurement needs no kernel: readings in (program lines in CLOCK_MONOTONIC, the capture in
    CLOCK_REALTIME, the faults as applied), the result contract out."""
    from kalab.lab.measure import Observation, measure
    from kalab.scenario import load
    C, S = "192.0.2.2", "198.51.100.2"
    ACK, PSH = 0x10, 0x08
    src = {"name": "keepalive 3/1/3, cable cut", "client": {"socket": {
        "SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 3, "TCP_KEEPINTVL": 1, "TCP_KEEPCNT": 3}}, "server": {},
        "faults": [{"kind": "link_down", "at_s": 1, "for_s": None}], "until_s": 9}
    mono0, real0 = 100.0, 1000.0           # t = 0 on each clock
    packets = [("rc", _pkt(real0 - 0.1, C, S, 100, 500, ACK | PSH, 10)),   # before t = 0: not an event
               ("rs", _pkt(real0 - 0.09, S, C, 500, 110, ACK))]
    packets += [("rc", _pkt(real0 + t, C, S, 109, 500, ACK)) for t in (3, 4, 5)]   # probes: seq = ack - 1
    obs = Observation(scenario=load(src), source=src, packets=packets, phase=0.25, srtt_ms={"client": 0.1},
                      lines=[(mono0 + 6.0, "client", '{"ev": "error", "errno": "ETIMEDOUT", "t": 106.0}')],
                      faults=[(mono0 + 1.0, "link_down", {"side": None, "index": 0})],
                      t0=mono0, real_at_t0=real0, end=mono0 + 9.0)
    m = measure(obs)
    assert m["client"] == {"fate": "died", "at_s": 6.0, "latest_s": 6.0, "by": "tcp.keepalive", "sees": "ETIMEDOUT",
                           "exit_code": None}
    assert m["server"]["fate"] == "half_open" and m["until_s"] == 9.0
    assert [(e["t_s"], e["side"], e["kind"]) for e in m["events"]] == \
        [(1.0, "path", "link_down"), (3.0, "client", "keepalive_probe"), (4.0, "client", "keepalive_probe"),
         (5.0, "client", "keepalive_probe"), (6.0, "client", "died")]
    assert m["scenario"]["faults"][0]["at_s"] == 1.0
    assert (m["scenario"]["client"]["monotime_phase_s"], m["scenario"]["client"]["srtt_ms"]) == (0.25, 0.1)
    assert "srtt_ms" not in m["scenario"]["server"]
    assert compare(simulate(m["scenario"]), m)["ok"]


def test_a_pipe_reusing_a_closed_streams_number_is_read():
    """A rebooted host's programs are ended and their pipes closed while still registered with the
    run's reader; the next pipe (tcpdump's on the rebuilt link) may get one of their numbers, the
    lowest free descriptor (open(2)).  Seen once in three parallel runs: KeyError, FD already
    registered."""
    import os

    from kalab.lab.lines import Lines
    lines = Lines()
    r, w = os.pipe()
    old = os.fdopen(r, "rb")
    lines.add(old, "server")
    number = old.fileno()
    old.close()
    os.close(w)
    r2, w2 = os.pipe()
    if r2 != number:          # the new pipe's read end under the closed stream's number
        os.dup2(r2, number)
        os.close(r2)
    new = os.fdopen(number, "rb")
    try:
        lines.add(new, "tcpdump-rs1")
        os.write(w2, b"listening on rs\n")
        assert lines.wait_for("tcpdump-rs1", "listening on", 2)[1] == "listening on rs"
    finally:
        new.close()
        os.close(w2)
