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

from typing import TYPE_CHECKING

from .mechanisms import ssh_alive, sshd_alive
from .stack import Msg

if TYPE_CHECKING:  # pragma: no cover
    from .simulate import HostRuntime, World

STRERROR = {"ETIMEDOUT": "Connection timed out", "ECONNRESET": "Connection reset by peer",
            "ECONNREFUSED": "Connection refused", "EHOSTUNREACH": "No route to host"}


class App:
    """A plain program: holds the socket, sends what the scenario says, reports errno names."""

    layer = "app"

    def __init__(self, world: "World", host: "HostRuntime") -> None:
        self.w = world
        self.h = host
        self.side = host.side
        self.settings = host.settings.app
        self.running = True

    # -- lifecycle
    def start(self) -> None:
        """The connection is established (t = 0, or when the handshake completes)."""

    def send(self, nbytes: int, reply_bytes: int = 0, kind: str = "data") -> None:
        ep = self.h.endpoint
        if not (self.running and ep is not None and ep.can_send()):
            return
        if kind == "data":
            self.w.log(self.side, "app", "send", f"{nbytes} bytes")
        ep.send(Msg(kind, nbytes, reply_bytes))

    def close(self) -> None:
        if not self.running:
            return
        self.w.log(self.side, "app", "close", "graceful close()")
        self.w.death(self.side, "app.exit", self.closed_text(), None)
        self._exit()

    def kill(self) -> None:
        self.w.death(self.side, "app.exit", "killed (SIGKILL)", 137)
        self._exit()

    def _exit(self) -> None:
        """The program ends; its kernel closes the socket (FIN, then orphan)."""
        self.running = False
        self.w.cancel_app_timers(self.h)
        ep = self.h.endpoint
        if ep is not None and ep.alive:
            ep.close()

    # -- socket events
    def on_data(self, msgs: list[Msg]) -> None:
        for m in msgs:
            if m.reply_bytes:
                self.send(m.reply_bytes)

    def on_eof(self) -> None:
        self.w.death(self.side, "tcp.fin_received", self.eof_text(), self.eof_exit_code())
        self._exit()

    def on_error(self, errno: str, by: str) -> None:
        self.w.death(self.side, by, self.error_text(errno), self.error_exit_code())
        self.running = False
        self.w.cancel_app_timers(self.h)

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

    def __init__(self, world, host) -> None:
        super().__init__(world, host)
        self.counter = 0
        self.timer = None
        self.server_host = world.scenario.server.address

    def start(self) -> None:
        self.schedule_check()

    def schedule_check(self) -> None:
        """``schedule_server_alive_check``: deadline = monotime() + I (whole seconds)."""
        interval = self.settings.alive_interval_s
        if interval <= 0 or not self.running:
            return
        if self.timer is not None:
            self.timer.cancel()
        now = self.w.engine.now
        t = ssh_alive.next_check_s(now, interval, self.h.settings.monotime_phase_s)
        # The deadline is a whole second of monotime(): lateness of the event that set it only
        # matters if it could push monotime() over the next second boundary.
        late = self.w.engine.late_s
        frac = ssh_alive.second_fraction_s(now, self.h.settings.monotime_phase_s)
        if self.w.late_log is not None:   # a comparison of lateness (kalab.fastforward checks it stays put)
            self.w.late_log.append((frac + late, 1.0))
        self.timer = self.w.app_timer(self.h, t, self.check, base_late_s=1.0 if frac + late >= 1.0 else 0.0)

    def check(self) -> None:
        self.timer = None
        self.counter += 1
        if ssh_alive.check_kills(self.counter, self.settings.alive_count_max):
            self.w.log(self.side, "ssh", "timeout", f"{self.counter - 1} alive messages unanswered")
            self.w.death(self.side, "ssh.server_alive", ssh_alive.timeout_message(self.server_host),
                         ssh_alive.EXIT_CODE)
            self._exit()
            return
        self.w.log(self.side, "ssh", "alive_sent", f"{self.counter} of {self.settings.alive_count_max}")
        self.send(ssh_alive.ALIVE_PACKET_BYTES, kind="alive_req")
        self.schedule_check()

    def on_data(self, msgs: list[Msg]) -> None:
        # Any readable event reschedules; any complete SSH packet resets the counter.
        self.schedule_check()
        self.counter = 0
        for m in msgs:
            if m.kind == "alive_req":  # sshd's keepalive@openssh.com: answer it
                self.w.log(self.side, "ssh", "alive_answer", "reply to the server's keepalive@openssh.com")
                self.send(ssh_alive.ALIVE_PACKET_BYTES, kind="alive_reply")
            elif m.kind == "alive_reply":
                self.w.log(self.side, "ssh", "alive_reply", "server answered")
        super().on_data([m for m in msgs if m.kind == "data"])

    def connect_timeout(self) -> None:
        """``ConnectTimeout`` expired while the TCP handshake was still going on."""
        ep = self.h.endpoint
        if ep is None or ep.state != "SYN_SENT" or not self.running:
            return
        self.w.log(self.side, "ssh", "connect_timeout", f"ConnectTimeout={self.settings.connect_timeout_s:g}")
        self.w.death(self.side, "ssh.connect_timeout",
                     f"ssh: connect to host {self.server_host} port 22: Connection timed out", ssh_alive.EXIT_CODE)
        self._exit()

    def on_error(self, errno: str, by: str) -> None:
        ep = self.h.endpoint
        if by == "tcp.syn_timeout" or (ep is not None and ep.connect_stamp is not None and not self.started):
            text = f"ssh: connect to host {self.server_host} port 22: {STRERROR.get(errno, errno)}"
            self.w.death(self.side, by, text, ssh_alive.EXIT_CODE)
            self.running = False
            self.w.cancel_app_timers(self.h)
            return
        super().on_error(errno, by)

    started = False

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

    def __init__(self, world, host) -> None:
        super().__init__(world, host)
        self.counter = 0
        self.timer = None
        self.last_client_mono = 0
        c = world.scenario.client
        self.remote = f"{c.address} port {c.port}"

    def _mono(self) -> int:
        return ssh_alive.monotime_s(self.w.engine.now, self.h.settings.monotime_phase_s)

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
        self.timer = self.w.app_timer(self.h, self.w.engine.now + interval, self.timed_out)

    def timed_out(self) -> None:
        self.timer = None
        now = self._mono()
        v = self.settings.version
        if sshd_alive.check_due(now, self.last_client_mono, self.settings.alive_interval_s, v):
            if sshd_alive.check_kills(self.counter, self.settings.alive_count_max, v):
                self.w.log(self.side, "sshd", "timeout", f"{self.counter} alive messages unanswered")
                self.w.death(self.side, "sshd.client_alive", sshd_alive.timeout_message(self.remote),
                             sshd_alive.EXIT_CODE)
                self._exit()
                return
            if sshd_alive.terminates(self.settings.alive_count_max, v):
                self.counter += 1
            cm = self.settings.alive_count_max
            self.w.log(self.side, "sshd", "alive_sent", f"{self.counter} of {cm}" if cm else "no limit")
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
                self.w.log(self.side, "sshd", "alive_answer", "reply to the client's keepalive@openssh.com")
                self.send(ssh_alive.ALIVE_PACKET_BYTES, kind="alive_reply")
            elif m.kind == "alive_reply":
                self.w.log(self.side, "sshd", "alive_reply", "client answered")
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
