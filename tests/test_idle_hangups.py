"""Who else hangs up (issue 15): sshd ChannelTimeout / UnusedConnectionTimeout, the shell's TMOUT and
systemd-logind StopIdleSessionSec, with the behaviour measured in data/measured/ pinned."""

import pytest

import kalab
from kalab.mechanisms import logind_idle, shell_tmout, sshd_idle


def _sc(server_app, client_opts=None, traffic=None, version="9.2", **extra):
    sc = {"client": {"app": {"kind": "ssh", "version": version, "options": client_opts or {}}},
          "server": {"app": dict(kind="sshd", version=version, **server_app)}, "traffic": traffic or [],
          "until_s": 100}
    sc.update(extra)
    return sc


def test_channel_timeout_closes_on_the_whole_second_clock():
    sc = _sc({"options": {"ChannelTimeout": "session:*=3"}}, {"RequestTTY": "force"})
    for side in ("client", "server"):
        sc[side]["monotime_phase_s"] = 0.4
    r = kalab.simulate(sc)
    assert r.server.by == r.client.by == "sshd.channel_timeout"
    assert r.server.at_s == pytest.approx(2.6)          # floor(0 + 0.4) - 0.4 + 3
    assert r.client.sees == "Connection to 198.51.100.2 closed." and r.client.exit_code == 255
    assert sshd_idle.channel_close_s(20.3, 900, 0.0) == 920


@pytest.mark.parametrize("opts", [({}, {"ClientAliveInterval": 1, "ClientAliveCountMax": 10}),
                                  ({"ServerAliveInterval": 1}, {})])
def test_alive_messages_do_not_reset_channel_timeout(opts):
    client, server = opts
    r = kalab.simulate(_sc({"options": dict(server, ChannelTimeout="session:*=3")}, client))
    assert r.server.by == "sshd.channel_timeout" and r.server.at_s == pytest.approx(3.0)


def test_typing_resets_channel_timeout():
    r = kalab.simulate(_sc({"options": {"ChannelTimeout": "session:*=3"}}, traffic=[{"at_s": 2.5, "bytes": 1}]))
    assert r.server.at_s == pytest.approx(5.0)


def test_unused_connection_timeout_is_strict_on_ssh_minus_n():
    r = kalab.simulate(_sc({"options": {"UnusedConnectionTimeout": 3}}, {"SessionType": "none"}))
    assert r.server.by == r.client.by == "sshd.unused_connection_timeout"
    assert r.server.at_s == pytest.approx(4.0)
    assert r.client.sees == "Connection to 198.51.100.2 closed by remote host."


def test_older_sshd_refuses_the_keywords_naming_9_2():
    for opt in ({"ChannelTimeout": "session:*=3"}, {"UnusedConnectionTimeout": 3}):
        with pytest.raises(kalab.ScenarioError, match="9.2"):
            kalab.simulate(_sc({"options": opt}, version="9.1"))


def test_global_type_needs_9_7_and_unknown_types_are_refused():
    with pytest.raises(kalab.ScenarioError, match="9.7"):
        kalab.load(_sc({"options": {"ChannelTimeout": "global=3"}}, version="9.6"))
    kalab.load(_sc({"options": {"ChannelTimeout": "global=3"}}, version="9.7"))
    with pytest.raises(kalab.ScenarioError, match="matches no channel type"):
        kalab.load(_sc({"options": {"ChannelTimeout": "sesion=3"}}))
    with pytest.raises(kalab.ScenarioError, match="type=interval"):
        kalab.load(_sc({"options": {"ChannelTimeout": "session:*"}}))


def test_session_as_10_0_manual_names_it_closes_nothing_and_warns():
    r = kalab.simulate(_sc({"options": {"ChannelTimeout": "session=3"}}, version="10.0"))
    assert r.server.fate == "alive" and any("session:*" in w for w in r.warnings)


def test_bash_tmout_idle_partial_typing_and_foreground():
    bash = {"shell": {"name": "bash", "TMOUT": 3}}
    assert kalab.simulate(_sc(bash)).server.at_s == pytest.approx(3.0)
    r = kalab.simulate(_sc(bash, traffic=[{"at_s": 1, "bytes": 1}, {"at_s": 2, "bytes": 1}]))
    assert r.server.by == "shell.tmout" and r.server.at_s == pytest.approx(3.0)
    assert r.client.exit_code == shell_tmout.EXIT_STATUS == 0
    fg = {"shell": {"name": "bash", "TMOUT": 3, "command_s": 4}}
    r = kalab.simulate(_sc(fg, traffic=[{"at_s": 1, "bytes": 8, "line": True}]))
    assert r.server.at_s == pytest.approx(8.0, abs=0.01)


def test_zsh_keypress_postpones_tmout_bash_does_not():
    assert shell_tmout.logout_s(0, 900, 600, "bash") == 900
    assert shell_tmout.logout_s(0, 900, 600, "zsh") == 1500
    r = kalab.simulate(_sc({"shell": {"name": "zsh", "TMOUT": 3}}, traffic=[{"at_s": 1, "bytes": 1}]))
    assert r.server.at_s == pytest.approx(4.0, abs=0.01)


def test_logind_stops_after_the_last_keypress():
    assert logind_idle.stop_s(0, 300, 900) == 1200
    sc = _sc({"shell": {"name": "bash"}}, traffic=[{"at_s": 5, "bytes": 1}], server=None)
    sc["server"] = {"app": {"kind": "sshd", "version": "9.2", "shell": {"name": "bash"}},
                    "logind": {"StopIdleSessionSec": 10}}
    r = kalab.simulate(sc)
    assert r.server.by == r.client.by == "logind.idle" and r.server.at_s == pytest.approx(15.0, abs=0.01)
    with pytest.raises(kalab.ScenarioError, match="252"):
        kalab.load(dict(sc, server=dict(sc["server"], logind={"StopIdleSessionSec": 10, "systemd": 250})))


def test_new_by_values_are_in_the_vocabulary():
    assert {"sshd.channel_timeout", "sshd.unused_connection_timeout", "shell.tmout", "logind.idle"} <= set(kalab.BY)


def test_explain_names_channel_timeout_as_deciding():
    from kalab.levers import deciding
    src = _sc({"options": {"ChannelTimeout": "session:*=3"}})
    assert [s.name for s in deciding(src, "client", "sshd.channel_timeout")] == ["ChannelTimeout"]


def test_sweep_never_takes_an_idle_timer_scenario_to_a_family():
    """The sweep families know no idle timer: a scenario with one is simulated point by point, and the
    answer is the simulator's (the ServerAlive family alone would say ssh.server_alive at 60 s)."""
    sc = _sc({"options": {"ChannelTimeout": "session:*=30"}}, {"ServerAliveInterval": 15, "TCPKeepAlive": "no"},
             faults=[{"kind": "link_down", "at_s": 100}])
    sc["until_s"] = 1000
    axes = {"client.app.options.ServerAliveInterval": [15, 20]}
    res = kalab.sweep(sc, axes)
    assert res.stats["family"] is None and res.stats["simulated"] == 2
    plain = dict(sc, server={"app": {"kind": "sshd", "version": "9.2"}})
    assert kalab.sweep(plain, axes).stats["family"] == "ssh_alive"     # the family takes it without the timer
    for v in (15, 20):
        r = kalab.simulate(kalab.with_value(sc, "client.app.options.ServerAliveInterval", v))
        assert r.server.by == "sshd.channel_timeout" and r.server.at_s == pytest.approx(30.0)


def test_recommend_warns_when_an_idle_timer_defeats_surviving_an_idle_lunch_break():
    from kalab.recommend import Goal, idle_warnings
    goal = Goal(detect_within_s=120, side="server", sshd_version="9.2", survive_idle_s=3600,
                channel_timeout="session:*=15m")
    (w,) = idle_warnings(goal)
    assert "ChannelTimeout" in w and "15 min" in w and "1 h" in w
    assert idle_warnings(Goal(detect_within_s=120, survive_idle_s=3600, shell_tmout_s=900))[0].startswith(
        "the shell's TMOUT")
    assert idle_warnings(Goal(detect_within_s=120, survive_idle_s=600, shell_tmout_s=900)) == []
    assert idle_warnings(Goal(detect_within_s=120, survive_idle_s=3600)) == []


def test_recommend_cli_reads_the_idle_timers_from_sshd_config(tmp_path, capsys):
    from kalab.cli import main
    conf = tmp_path / "sshd_config"
    conf.write_text("ChannelTimeout session:*=15m\nUnusedConnectionTimeout 5m\n")
    main(["recommend", "--detect-within", "2m", "--side", "server", "--sshd-version", "9.2",
          "--survive-idle", "1h", "--server-sshd-config", str(conf)])
    assert "WARNING (an idle hangup" in capsys.readouterr().out
    assert main(["recommend", "--detect-within", "2m", "--sshd-version", "9.1",
                 "--server-sshd-config", str(conf)]) == 2
    assert "--server-sshd-config" in capsys.readouterr().err
