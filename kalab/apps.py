"""The programs holding the socket: plain, ssh, sshd, telnet, telnetd.

Each reacts to what its socket reports (data, EOF, an error) and may run
timers of its own (ssh ServerAlive, sshd ClientAlive).  Application timers
are userspace ``ppoll`` timeouts: precise hrtimers, no timer-wheel slack, but
OpenSSH reads a *whole-second* clock (:mod:`kalab.mechanisms.ssh_alive`).

What each program reports (``sees``) is its own message; the texts follow
OpenSSH's ``clientloop.c`` (``client_process_net_input``, ``server_alive_check``),
``serverloop.c`` (``process_input``, ``client_alive_check``) and ``packet.c``;
plain sockets report the errno name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .mechanisms import logind_idle, shell_tmout, ssh_alive, sshd_alive, sshd_idle
from .wire import Msg

#: Causes by which the server ends a healthy idle session (docs/mechanisms.md §Who else hangs up):
#: ssh reports the server's cause as its own.
IDLE_HANGUPS = ("sshd.channel_timeout", "sshd.unused_connection_timeout", "shell.tmout", "logind.idle")
#: Application data: what counts as channel activity (typing without and with Enter, output).
DATA_KINDS = ("data", "line")

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Clock, Handle
    from .settings import HostSettings


class Socket(Protocol):
    """What a program uses of its socket (:class:`kalab.stack.Endpoint`)."""

    state: str                        # "SYN_SENT", "ESTABLISHED", ...
    connect_stamp: float | None       # set by connect()
    alive: bool                       # not CLOSED

    def can_send(self) -> bool: ...

    def send(self, msg: Msg) -> bool: ...

    def close(self) -> None: ...


class System(Protocol):
    """What a program needs of its host (:class:`kalab.host.Host`): its socket, the time, ``ppoll``
    timers, the timeline and its own end."""

    side: str
    settings: "HostSettings"          # .app (the program's settings), .monotime_phase_s
    clock: "Clock"
    endpoint: Socket | None           # the connection's socket, if there is one
    had_session: bool                 # its socket reached ESTABLISHED at some point

    def app_timer(self, t_abs: float, fn, *args, base_late_s: float | None = None) -> "Handle":
        """Run ``fn(*args)`` at ``t_abs`` (a ``ppoll`` timeout, with poll slack); ``cancel()``-able."""

    def cancel_app_timers(self) -> None:
        """Cancel every timer of this program (it ended)."""

    def log(self, layer: str, kind: str, detail: str = "") -> None:
        """An event of this host on the timeline, now."""

    def compared(self, a: float, b: float) -> None:
        """A decision on lateness was taken (noted for :mod:`kalab.fastforward`)."""

    def death(self, by: str, sees: str | None, exit_code: int | None) -> None:
        """This side dies now (the first death counts)."""

    def peer_by(self) -> str | None:
        """How the other side died (its ``by``), if it has."""


STRERROR = {"ETIMEDOUT": "Connection timed out", "ECONNRESET": "Connection reset by peer",
            "ECONNREFUSED": "Connection refused", "EHOSTUNREACH": "No route to host"}


class App:
    """A plain program: holds the socket, sends what the scenario says, reports errno names."""

    layer = "app"

    def __init__(self, host: System, peer: "HostSettings") -> None:
        """``peer``: the other host's settings (its address and port, for the messages)."""
        self.h = host
        self.clock = host.clock
        self.side = host.side
        self.settings = host.settings.app
        self.running = True

    # -- what the socket tells it (kalab.stack.SocketUser); nothing once the program has ended
    def established(self) -> None:
        self.h.had_session = True
        if self.running:
            self.started = True
            self.start()

    def readable(self, msgs: list[Msg]) -> None:
        if self.running:
            self.on_data(msgs)

    def eof(self) -> None:
        if self.running:
            self.on_eof()

    def error(self, errno: str, by: str) -> None:
        if self.running:
            self.on_error(errno, by)

    # -- lifecycle
    started = False

    def connecting(self) -> None:
        """Its ``connect()`` has just sent the SYN."""

    def start(self) -> None:
        """The connection is established (t = 0, or when the handshake completes)."""

    def send(self, nbytes: int, reply_bytes: int = 0, kind: str = "data") -> None:
        ep = self.h.endpoint
        if not (self.running and ep is not None and ep.can_send()):
            return
        if kind in DATA_KINDS:
            self.h.log("app", "send", f"{nbytes} bytes" + (" and Enter" if kind == "line" else ""))
        ep.send(Msg(kind, nbytes, reply_bytes))

    def close(self) -> None:
        if not self.running:
            return
        self.h.log("app", "close", "graceful close()")
        self.h.death("app.exit", self.closed_text(), None)
        self._exit()

    def kill(self) -> None:
        self.h.death("app.exit", "killed (SIGKILL)", 137)
        self._exit()

    def _exit(self) -> None:
        """The program ends; its kernel closes the socket (FIN, then orphan)."""
        self.running = False
        self.h.cancel_app_timers()
        ep = self.h.endpoint
        if ep is not None and ep.alive:
            ep.close()

    # -- socket events
    def on_data(self, msgs: list[Msg]) -> None:
        for m in msgs:
            if m.reply_bytes:
                self.send(m.reply_bytes)

    def on_eof(self) -> None:
        self.h.death("tcp.fin_received", self.eof_text(), self.eof_exit_code())
        self._exit()

    def on_error(self, errno: str, by: str) -> None:
        self.h.death(by, self.error_text(errno), self.error_exit_code())
        self.running = False
        self.h.cancel_app_timers()

    # -- texts
    def closed_text(self) -> str:
        return "closed"

    def eof_text(self) -> str:
        return "EOF"

    def error_text(self, errno: str) -> str:
        return errno

    def eof_exit_code(self) -> int | None:
        return None

    def error_exit_code(self) -> int | None:
        return None


class Telnet(App):
    layer = "telnet"

    def eof_text(self) -> str:
        return "Connection closed by foreign host."


class Telnetd(App):
    """telnetd turns keepalive on unless ``-n``: a keepalive death is telnetd's choice."""

    layer = "telnetd"

    def on_error(self, errno: str, by: str) -> None:
        if by == "tcp.keepalive":
            by = "telnetd.keepalive"
        super().on_error(errno, by)


class SshClient(App):
    """OpenSSH ``ssh`` (>= 8.4 ServerAlive scheduling; docs/mechanisms.md §ssh ServerAlive)."""

    layer = "ssh"

    def __init__(self, host: System, peer: "HostSettings") -> None:
        super().__init__(host, peer)
        self.counter = 0
        self.timer = None
        self.server_host = peer.address
        self.peer_has_shell = peer.app.shell is not None   # a login shell runs on a terminal

    def start(self) -> None:
        self.schedule_check()

    def on_eof(self) -> None:
        """The server closed the connection: its idle timer (reported as ssh's cause too), else FIN."""
        by = self.h.peer_by()
        if by in IDLE_HANGUPS:
            self.h.death(by, self.eof_text(), self.eof_exit_code())
            self._exit()
            return
        super().on_eof()

    def schedule_check(self) -> None:
        """``schedule_server_alive_check``: deadline = monotime() + I (whole seconds)."""
        interval = self.settings.alive_interval_s
        if interval <= 0 or not self.running:
            return
        if self.timer is not None:
            self.timer.cancel()
        now = self.clock.now
        t = ssh_alive.next_check_s(now, interval, self.h.settings.monotime_phase_s)
        # The deadline is a whole second of monotime(): lateness of the event that set it only
        # matters if it could push monotime() over the next second boundary.
        late = self.clock.late_s
        frac = ssh_alive.second_fraction_s(now, self.h.settings.monotime_phase_s)
        self.h.compared(frac + late, 1.0)   # a comparison of lateness (kalab.fastforward checks it)
        self.timer = self.h.app_timer(t, self.check, base_late_s=1.0 if frac + late >= 1.0 else 0.0)

    def check(self) -> None:
        self.timer = None
        self.counter += 1
        if ssh_alive.check_kills(self.counter, self.settings.alive_count_max):
            self.h.log("ssh", "timeout", f"{self.counter - 1} alive messages unanswered")
            self.h.death("ssh.server_alive", ssh_alive.timeout_message(self.server_host),
                         ssh_alive.EXIT_CODE)
            self._exit()
            return
        self.h.log("ssh", "alive_sent", f"{self.counter} of {self.settings.alive_count_max}")
        self.send(ssh_alive.ALIVE_PACKET_BYTES, kind="alive_req")
        self.schedule_check()

    def on_data(self, msgs: list[Msg]) -> None:
        # Any readable event reschedules; any complete SSH packet resets the counter.
        self.schedule_check()
        self.counter = 0
        for m in msgs:
            if m.kind == "channel_close":   # the server closed the only session channel: ssh exits
                self.h.log("ssh", "channel_closed", f"by the server ({m.cause})")
                tty = self.settings.request_tty in ("yes", "force") or self.peer_has_shell
                self.h.death(m.cause or "app.exit", f"Connection to {self.server_host} closed." if tty else None,
                             m.exit_code)
                self._exit()
                return
        for m in msgs:
            if m.kind == "alive_req":  # sshd's keepalive@openssh.com: answer it
                self.h.log("ssh", "alive_answer", "reply to the server's keepalive@openssh.com")
                self.send(ssh_alive.ALIVE_PACKET_BYTES, kind="alive_reply")
            elif m.kind == "alive_reply":
                self.h.log("ssh", "alive_reply", "server answered")
        super().on_data([m for m in msgs if m.kind in DATA_KINDS])

    def connecting(self) -> None:
        """``ConnectTimeout``: a ``ppoll`` timeout on the connecting socket."""
        if self.settings.connect_timeout_s > 0:
            self.h.app_timer(self.clock.now + self.settings.connect_timeout_s, self.connect_timeout)

    def connect_timeout(self) -> None:
        """``ConnectTimeout`` expired while the TCP handshake was still going on."""
        ep = self.h.endpoint
        if ep is None or ep.state != "SYN_SENT" or not self.running:
            return
        self.h.log("ssh", "connect_timeout", f"ConnectTimeout={self.settings.connect_timeout_s:g}")
        self.h.death("ssh.connect_timeout",
                     f"ssh: connect to host {self.server_host} port 22: Connection timed out", ssh_alive.EXIT_CODE)
        self._exit()

    def on_error(self, errno: str, by: str) -> None:
        ep = self.h.endpoint
        if by == "tcp.syn_timeout" or (ep is not None and ep.connect_stamp is not None and not self.started):
            text = f"ssh: connect to host {self.server_host} port 22: {STRERROR.get(errno, errno)}"
            self.h.death(by, text, ssh_alive.EXIT_CODE)
            self.running = False
            self.h.cancel_app_timers()
            return
        super().on_error(errno, by)

    def closed_text(self) -> str:
        return f"Connection to {self.server_host} closed."

    def eof_text(self) -> str:
        return f"Connection to {self.server_host} closed by remote host."

    def error_text(self, errno: str) -> str:
        return f"Read from remote host {self.server_host}: {STRERROR.get(errno, errno)}"

    def eof_exit_code(self) -> int:
        return ssh_alive.EXIT_CODE

    def error_exit_code(self) -> int:
        return ssh_alive.EXIT_CODE


class Sshd(App):
    """OpenSSH ``sshd`` session (ClientAlive per version; docs/mechanisms.md §sshd ClientAlive)."""

    layer = "sshd"

    def __init__(self, host: System, peer: "HostSettings") -> None:
        super().__init__(host, peer)
        self.counter = 0
        self.timer = None
        self.last_client_mono = 0
        self.remote = f"{peer.address} port {peer.port}"
        # Idle timers (kalab.mechanisms.sshd_idle, shell_tmout, logind_idle)
        st = self.settings
        self.shell = st.shell
        self.channel_open = peer.app.session_type != "none"   # ssh -N opens no session channel
        kind = "shell" if self.shell is not None else "command"
        self.channel_s = sshd_idle.session_timeout_s(st.channel_timeouts, kind)
        self.global_s = sshd_idle.global_timeout_s(st.channel_timeouts)
        self.tty = self.shell is not None or peer.app.request_tty in ("yes", "force")
        self.channel_timer = self.unused_timer = self.shell_timer = self.logind_timer = None
        self.busy_until = None          # the shell's foreground command runs until then
        self.last_key = None            # the last keypress (tty input), for zsh and logind
        self.t_start = 0.0

    def _mono(self) -> int:
        return ssh_alive.monotime_s(self.clock.now, self.h.settings.monotime_phase_s)

    def start(self) -> None:
        self.last_client_mono = self._mono()
        self.wait()
        self.t_start = self.clock.now
        if self.channel_open:
            self.channel_activity()
            self.prompt()
        self.arm_unused()
        if self.tty and self.h.settings.logind_stop_idle_s and self.channel_open:
            self.arm_logind(self.clock.now + self.h.settings.logind_stop_idle_s)

    # -- ChannelTimeout: the session channel's last data, on the whole-second clock
    def _whole_second_timer(self, t: float, fn):
        """A ``ppoll`` wait until ``t``, a whole second of ``monotime()`` set from now (as ssh's
        ServerAlive deadline: the lateness of the event setting it matters only across a second)."""
        frac = ssh_alive.second_fraction_s(self.clock.now, self.h.settings.monotime_phase_s)
        late = self.clock.late_s
        self.h.compared(frac + late, 1.0)
        return self.h.app_timer(t, fn, base_late_s=1.0 if frac + late >= 1.0 else 0.0)

    def channel_activity(self) -> None:
        """Data moved through the session channel (``c->lastused = monotime()``)."""
        interval = min((i for i in (self.channel_s, self.global_s) if i), default=0)
        if not (self.channel_open and interval and self.running):
            return
        if self.channel_timer is not None:
            self.channel_timer.cancel()
        t = sshd_idle.channel_close_s(self.clock.now, interval, self.h.settings.monotime_phase_s)
        self.channel_timer = self._whole_second_timer(t, self.channel_timed_out)

    def channel_timed_out(self) -> None:
        self.channel_timer = None
        if not self.channel_open:
            return
        self.h.log("sshd", "channel_timeout", sshd_idle.format_pairs(self.settings.channel_timeouts))
        self.close_channel("sshd.channel_timeout", sshd_idle.channel_close_message(0, self.channel_s),
                           sshd_idle.EXIT_CODE)

    def close_channel(self, by: str, sees: str, exit_code: int | None) -> None:
        """The session channel ends (idle timeout, the shell exited): sshd tells ssh, which exits."""
        self.channel_open = False
        for name in ("channel_timer", "shell_timer", "logind_timer"):
            timer = getattr(self, name)
            if timer is not None:
                timer.cancel()
                setattr(self, name, None)
        self.h.death(by, sees, None)
        ep = self.h.endpoint
        if ep is not None and ep.can_send():
            ep.send(Msg("channel_close", ssh_alive.ALIVE_PACKET_BYTES, cause=by, exit_code=exit_code))
        self.arm_unused()

    # -- UnusedConnectionTimeout: no channel open
    def arm_unused(self) -> None:
        u = self.settings.unused_connection_timeout_s
        if not u or self.channel_open or not self.running or self.unused_timer is not None:
            return
        t = sshd_idle.unused_close_s(self.clock.now, u, self.settings.version, self.h.settings.monotime_phase_s)
        self.unused_timer = self._whole_second_timer(t, self.unused_timed_out)

    def unused_timed_out(self) -> None:
        self.unused_timer = None
        if self.channel_open or not self.running:
            return
        self.h.log("sshd", "unused_connection_timeout",
                   f"UnusedConnectionTimeout={self.settings.unused_connection_timeout_s}")
        self.h.death("sshd.unused_connection_timeout", sshd_idle.unused_message(self.remote), sshd_idle.EXIT_CODE)
        self._exit()

    # -- the shell's TMOUT
    def prompt(self) -> None:
        """The shell issues its primary prompt: ``alarm(TMOUT)``."""
        self.busy_until = None
        sh = self.shell
        if sh is None or not sh.tmout_s or not self.channel_open:
            return
        if self.shell_timer is not None:
            self.shell_timer.cancel()
        self.prompt_at = self.clock.now
        self.shell_timer = self.h.app_timer(self.clock.now + sh.tmout_s, self.shell_alarm)

    def shell_alarm(self) -> None:
        self.shell_timer = None
        sh = self.shell
        due = shell_tmout.logout_s(self.prompt_at, sh.tmout_s, self.last_key, sh.name)
        if due is not None and due > self.clock.now + 1e-9:     # zsh: a key since; wait TMOUT after it
            self.shell_timer = self.h.app_timer(due, self.shell_alarm)
            return
        self.h.log("sshd", "tmout", f"{sh.name} TMOUT={sh.tmout_s}")
        self.close_channel("shell.tmout", shell_tmout.MESSAGES[sh.name], shell_tmout.EXIT_STATUS)

    def typed(self, line: bool) -> None:
        """Keys arrived on the terminal (with Enter: a complete command line)."""
        self.last_key = self.clock.now
        if self.shell is None or self.busy_until is not None:
            return    # no shell reading, or the foreground program reads them
        if line:
            if self.shell_timer is not None:
                self.shell_timer.cancel()
                self.shell_timer = None
            if self.shell.command_s > 0:
                self.busy_until = self.clock.now + self.shell.command_s
                self.h.app_timer(self.busy_until, self.command_done)
            else:
                self.prompt()

    def command_done(self) -> None:
        if self.running and self.channel_open:
            self.prompt()

    # -- systemd-logind StopIdleSessionSec
    def arm_logind(self, t: float) -> None:
        self.logind_timer = self.h.app_timer(t, self.logind_check, base_late_s=self.clock.late_s
                                             + logind_idle.ACCURACY_S)

    def logind_check(self) -> None:
        self.logind_timer = None
        if not (self.running and self.channel_open):
            return
        s = self.h.settings.logind_stop_idle_s
        due = logind_idle.stop_s(self.t_start, self.last_key, s)
        if due is not None and due > self.clock.now + 1e-9:
            self.arm_logind(due)
            return
        self.h.log("sshd", "logind_idle", f"StopIdleSessionSec={s:g}")
        self.channel_open = False
        self.h.death("logind.idle", logind_idle.message(), None)
        self._exit()

    def wait(self) -> None:
        """``ppoll`` with a relative timeout of one full ClientAliveInterval from now."""
        interval = self.settings.alive_interval_s
        if interval <= 0 or not self.running:
            return
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.h.app_timer(self.clock.now + interval, self.timed_out)

    def timed_out(self) -> None:
        self.timer = None
        now = self._mono()
        v = self.settings.version
        if sshd_alive.check_due(now, self.last_client_mono, self.settings.alive_interval_s, v):
            if sshd_alive.check_kills(self.counter, self.settings.alive_count_max, v):
                self.h.log("sshd", "timeout", f"{self.counter} alive messages unanswered")
                self.h.death("sshd.client_alive", sshd_alive.timeout_message(self.remote),
                             sshd_alive.EXIT_CODE)
                self._exit()
                return
            if sshd_alive.terminates(self.settings.alive_count_max, v):
                self.counter += 1
            cm = self.settings.alive_count_max
            self.h.log("sshd", "alive_sent", f"{self.counter} of {cm}" if cm else "no limit")
            self.send(ssh_alive.ALIVE_PACKET_BYTES, kind="alive_req")
            self.last_client_mono = now
        self.wait()

    def send(self, nbytes: int, reply_bytes: int = 0, kind: str = "data") -> None:
        super().send(nbytes, reply_bytes, kind)
        if kind in DATA_KINDS and self.running:
            self.channel_activity()
        if kind in DATA_KINDS and self.running and self.settings.alive_interval_s > 0:
            # Session output wakes ppoll (ret != 0): the wait restarts, after a check only where output runs one.
            if sshd_alive.output_runs_check(self._mono(), self.last_client_mono, self.settings.alive_interval_s,
                                            self.settings.version):
                if self.timer is not None:   # this check replaces the pending ppoll timeout (one at a time)
                    self.timer.cancel()
                self.timed_out()
            else:
                self.wait()

    def on_data(self, msgs: list[Msg]) -> None:
        self.last_client_mono = self._mono()
        self.counter = 0
        for m in msgs:
            if m.kind == "alive_req":
                self.h.log("sshd", "alive_answer", "reply to the client's keepalive@openssh.com")
                self.send(ssh_alive.ALIVE_PACKET_BYTES, kind="alive_reply")
            elif m.kind == "alive_reply":
                self.h.log("sshd", "alive_reply", "client answered")
        self.wait()
        typed = [m for m in msgs if m.kind in DATA_KINDS]
        if typed and self.channel_open:
            self.channel_activity()       # input written to the session: channel data
            self.typed(any(m.kind == "line" for m in typed))
            if self.tty:                  # the terminal echoes what is typed: session output
                self.send(sum(m.nbytes for m in typed))
        super().on_data(typed)

    def closed_text(self) -> str:
        return f"Disconnected from {self.remote}"

    def eof_text(self) -> str:
        return f"Connection closed by {self.remote}"

    def error_text(self, errno: str) -> str:
        return f"Read error from remote host {self.remote}: {STRERROR.get(errno, errno)}"

    def error_exit_code(self) -> int:
        return sshd_alive.EXIT_CODE


APPS = {"plain": App, "ssh": SshClient, "sshd": Sshd, "telnet": Telnet, "telnetd": Telnetd}
