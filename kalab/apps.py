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

from .mechanisms import ssh_alive, sshd_alive
from .wire import Msg

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
        if kind == "data":
            self.h.log("app", "send", f"{nbytes} bytes")
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

    def start(self) -> None:
        self.schedule_check()

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
            if m.kind == "alive_req":  # sshd's keepalive@openssh.com: answer it
                self.h.log("ssh", "alive_answer", "reply to the server's keepalive@openssh.com")
                self.send(ssh_alive.ALIVE_PACKET_BYTES, kind="alive_reply")
            elif m.kind == "alive_reply":
                self.h.log("ssh", "alive_reply", "server answered")
        super().on_data([m for m in msgs if m.kind == "data"])

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

    def _mono(self) -> int:
        return ssh_alive.monotime_s(self.clock.now, self.h.settings.monotime_phase_s)

    def start(self) -> None:
        self.last_client_mono = self._mono()
        self.wait()

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
        if kind == "data" and self.running and self.settings.alive_interval_s > 0:
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
        super().on_data([m for m in msgs if m.kind == "data"])

    def closed_text(self) -> str:
        return f"Disconnected from {self.remote}"

    def eof_text(self) -> str:
        return f"Connection closed by {self.remote}"

    def error_text(self, errno: str) -> str:
        return f"Read error from remote host {self.remote}: {STRERROR.get(errno, errno)}"

    def error_exit_code(self) -> int:
        return sshd_alive.EXIT_CODE


APPS = {"plain": App, "ssh": SshClient, "sshd": Sshd, "telnet": Telnet, "telnetd": Telnetd}
