"""The OpenSSH options kalab models (``ssh_config``/``sshd_config`` keywords): their tables and their
checking, as ssh and sshd read them (docs/scenarios.md §Programs; docs/mechanisms.md §ssh ServerAlive,
§sshd ClientAlive).  Keywords are case-insensitive; times follow OpenSSH's own grammar (``convtime``)."""

from __future__ import annotations

from typing import Any, Mapping

from .errors import ScenarioError, show, unknown_key
from .units import TIME_FORMATS_HELP, openssh_time
from .validate import number

#: ssh_config / sshd_config keywords kalab models, with (internal field, kind, lo, hi).
SSH_OPTIONS = {
    "serveraliveinterval": ("ServerAliveInterval", "alive_interval_s", "time", 0, 2**31 - 1),
    "serveralivecountmax": ("ServerAliveCountMax", "alive_count_max", "int", 0, 2**31 - 1),
    "tcpkeepalive": ("TCPKeepAlive", "tcp_keepalive", "yesno", 0, 1),
    "connecttimeout": ("ConnectTimeout", "connect_timeout_s", "time", 0, 2**31 - 1),
    # ssh -N is SessionType none (ssh_config(5), OpenSSH >= 8.7): no session channel at all
    "sessiontype": ("SessionType", "session_type", "enum:none,subsystem,default", 0, 0),
    "requesttty": ("RequestTTY", "request_tty", "enum:no,yes,force,auto", 0, 0),
}
SSHD_OPTIONS = {
    "clientaliveinterval": ("ClientAliveInterval", "alive_interval_s", "time", 0, 2**31 - 1),
    "clientalivecountmax": ("ClientAliveCountMax", "alive_count_max", "int", 0, 2**31 - 1),
    "tcpkeepalive": ("TCPKeepAlive", "tcp_keepalive", "yesno", 0, 1),
    # OpenSSH >= 9.2 (kalab.mechanisms.sshd_idle)
    "channeltimeout": ("ChannelTimeout", "channel_timeouts", "channeltimeout", 0, 0),
    "unusedconnectiontimeout": ("UnusedConnectionTimeout", "unused_connection_timeout_s", "time", 0, 2**31 - 1),
}
#: The version each keyword appeared in, where it is younger than kalab's oldest (5.0): an older
#: ssh/sshd refuses it ("Bad configuration option"), and so does the scenario.
SINCE = {"ChannelTimeout": (9, 2), "UnusedConnectionTimeout": (9, 2), "SessionType": (8, 7)}
#: Keywords accepted and ignored (they do not change any timer).
SSH_IGNORED = ("user", "port", "hostname", "identityfile", "stricthostkeychecking", "userknownhostsfile",
               "batchmode", "loglevel", "compression", "controlmaster", "controlpath")
SSHD_IGNORED = ("port", "permitrootlogin", "usepam", "passwordauthentication", "hostkey", "loglevel",
                "pidfile", "logingracetime", "listenaddress", "authorizedkeysfile", "strictmodes")


def parse(options: Any, path: str, kind: str,
          version: tuple[int, int] | None = None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """``app.options`` of an ``ssh`` or ``sshd`` (``kind``) at ``path``: the :class:`~kalab.settings.AppSettings`
    fields they set, and every option as given (canonical name, value as text; ignored keywords too).
    Raises :class:`~kalab.errors.ScenarioError` naming ``path.<option>``."""
    fields: dict[str, Any] = {}
    given: list[tuple[str, str]] = []
    table = SSH_OPTIONS if kind == "ssh" else SSHD_OPTIONS
    ignored = SSH_IGNORED if kind == "ssh" else SSHD_IGNORED
    if not isinstance(options, Mapping):
        raise ScenarioError(path, f"must be an object, got {show(options)}")
    for name, value in options.items():
        key = f"{path}.{name}"
        low = str(name).lower()  # ssh keywords are case-insensitive
        if low in ignored:
            if isinstance(value, bool) or not isinstance(value, (str, int)) or \
                    (isinstance(value, int) and abs(value) > 2**63):
                raise ScenarioError(key, f"must be a string (as in {'ssh_config' if kind == 'ssh' else 'sshd_config'}),"
                                         f" got {type(value).__name__} {show(value)}", value=value)
            given.append((str(name), str(value)))
            continue
        if low not in table:
            raise unknown_key(path, str(name), [v[0] for v in table.values()])
        canon, field, typ, lo, hi = table[low]
        since = SINCE.get(canon)
        if since and version is not None and version < since:
            raise ScenarioError(key, f"{canon} arrived in OpenSSH {since[0]}.{since[1]}; "
                                     f"{'ssh' if kind == 'ssh' else 'sshd'} {version[0]}.{version[1]} refuses it "
                                     f"('Bad configuration option')", value=value,
                                allowed=f"OpenSSH >= {since[0]}.{since[1]} (app.version)")
        if typ == "channeltimeout":
            from .mechanisms.sshd_idle import parse_channel_timeout
            try:
                fields[field] = parse_channel_timeout(value, version or (10, 0))
            except ValueError as e:
                raise ScenarioError(key, f"{e}", value=value,
                                    allowed="type=interval pairs, e.g. 'session:*=15m direct-tcpip=1h'") from None
            given.append((canon, str(value)))
            continue
        if typ.startswith("enum:"):
            allowed = typ[5:].split(",")
            if not isinstance(value, str) or value.lower() not in allowed:
                raise ScenarioError(key, f"must be one of {', '.join(allowed)}, got {show(value)}", value=value,
                                    allowed=", ".join(allowed))
            fields[field] = value.lower()
            given.append((canon, value))
            continue
        if typ == "yesno":
            if isinstance(value, bool):
                fields[field] = value
            elif isinstance(value, str) and value.lower() in ("yes", "no"):
                fields[field] = value.lower() == "yes"
            else:
                raise ScenarioError(key, f"must be 'yes' or 'no', got {show(value)}", value=value,
                                    allowed="yes, no")
        elif typ == "time":
            if isinstance(value, str):
                # OpenSSH's own grammar (convtime), as for ssh_config/sshd_config files: "1.5h" is
                # refused there by ssh and sshd, so here too.
                secs = openssh_time(value)
                if secs is None:
                    raise ScenarioError(key, f"invalid time value {show(value)} (ssh/sshd refuse to start on it)",
                                        value=value, allowed=TIME_FORMATS_HELP)
                value = secs
            v = number(value, key, lo, hi, unit="s")
            if not float(v).is_integer():
                raise ScenarioError(key, f"must be whole seconds, got {value!r}", value=value)
            fields[field] = int(v)
        else:
            fields[field] = number(value, key, lo, hi, integer=True)
        given.append((canon, str(value)))
    return fields, given
