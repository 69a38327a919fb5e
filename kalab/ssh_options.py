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
}
SSHD_OPTIONS = {
    "clientaliveinterval": ("ClientAliveInterval", "alive_interval_s", "time", 0, 2**31 - 1),
    "clientalivecountmax": ("ClientAliveCountMax", "alive_count_max", "int", 0, 2**31 - 1),
    "tcpkeepalive": ("TCPKeepAlive", "tcp_keepalive", "yesno", 0, 1),
}
#: Keywords accepted and ignored (they do not change any timer).
SSH_IGNORED = ("user", "port", "hostname", "identityfile", "stricthostkeychecking", "userknownhostsfile",
               "batchmode", "loglevel", "requesttty", "compression", "controlmaster", "controlpath")
SSHD_IGNORED = ("port", "permitrootlogin", "usepam", "passwordauthentication", "hostkey", "loglevel",
                "pidfile", "logingracetime", "listenaddress", "authorizedkeysfile", "strictmodes")


def parse(options: Any, path: str, kind: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
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
