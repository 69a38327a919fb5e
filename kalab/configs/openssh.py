"""OpenSSH configuration: ``ssh_config`` / ``ssh -G`` and ``sshd_config`` / ``sshd -T``.

The rules follow ``readconf.c``/``servconf.c`` and ssh_config(5)/sshd_config(5):

* one keyword per line, case-insensitive, separated from its arguments by whitespace or one ``=``;
  arguments may be double-quoted; ``#`` starts a comment line;
* **the first obtained value wins** for each keyword (later lines never override earlier ones);
* ``Host`` patterns (``*``, ``?``, ``!negation``) and ``Match`` criteria (``all``, ``host``,
  ``originalhost``, ``user``, ``localuser``, ``!criterion``; ``exec`` is never run -- it is reported
  and treated as not matching) decide which lines apply to the host being connected to;
* ``Include`` (globs; ``~``; relative paths are taken relative to the including file, here for both
  programs) is read in place, conditionally inside a ``Host``/``Match`` block, at most 16 deep;
* ``sshd_config``: global lines first; a ``Match`` block (``User``, ``Group``, ``Host``, ``Address``,
  ``LocalAddress``, ``LocalPort``, ``RDomain``, ``All``) that matches the connection described by
  ``match`` overrides them, the first matching block winning per keyword.  Blocks whose criteria
  cannot be evaluated (no such detail given) are reported and not applied;
* times (``ClientAliveInterval 5m``, ``1h30m``) use sshd_config(5) TIME FORMATS; ``-G``/``-T``
  print seconds; ``ConnectTimeout none`` is 0.

Only the timer keywords are interpreted (``ServerAliveInterval``, ``ServerAliveCountMax``,
``TCPKeepAlive``, ``ConnectTimeout``; ``ClientAliveInterval``, ``ClientAliveCountMax``,
``TCPKeepAlive``); other known keywords are kept in ``other``; unknown ones are reported in
``problems`` with a suggestion.
"""

from __future__ import annotations

import fnmatch
import getpass
import glob
import itertools
import os
import re
from dataclasses import dataclass, field

from ..errors import ScenarioError, closest, show
from ..inputs import MAX_CONFIG_BYTES, TooBig, read_regular_file
from ..ssh_options import SSH_OPTIONS, SSHD_OPTIONS
# One grammar for OpenSSH times wherever kalab reads them (here and in scenario options): units.py.
from ..units import TIME_FORMATS_HELP, TIME_QUALIFIERS, convtime, openssh_time  # noqa: F401 (re-exported)
from .common import ConfigError, Origin, Problem, read_text

#: READCONF_MAX_DEPTH in readconf.c.
MAX_INCLUDE_DEPTH = 16
#: The most files read for one configuration, Includes and the file itself (a bound of kalab's).
MAX_INCLUDE_FILES = 256

#: ssh_config(5) keywords (OpenSSH 9.x), lower case; those kalab does not model are kept, not interpreted.
SSH_KEYWORDS = set("""
host match include addkeystoagent addressfamily batchmode bindaddress bindinterface canonicaldomains
canonicalizefallbacklocal canonicalizehostname canonicalizemaxdots canonicalizepermittedcnames casignaturealgorithms
certificatefile channeltimeout checkhostip ciphers clearallforwardings compression connectionattempts
connecttimeout controlmaster controlpath controlpersist dynamicforward enableescapecommandline enablesshkeysign
escapechar exitonforwardfailure fingerprinthash forkafterauthentication forwardagent forwardx11
forwardx11timeout forwardx11trusted gatewayports globalknownhostsfile gssapiauthentication
gssapidelegatecredentials hashknownhosts hostbasedacceptedalgorithms hostbasedauthentication
hostkeyalgorithms hostkeyalias hostname identitiesonly identityagent identityfile ignoreunknown ipqos
kbdinteractiveauthentication kbdinteractivedevices kexalgorithms knownhostscommand localcommand localforward
loglevel logverbose macs nohostauthenticationforlocalhost numberofpasswordprompts obscurekeystroketiming
passwordauthentication permitlocalcommand permitremoteopen pkcs11provider port preferredauthentications
proxycommand proxyjump proxyusefdpass pubkeyacceptedalgorithms pubkeyauthentication rekeylimit remotecommand
remoteforward requesttty requiredrsasize revokedhostkeys securitykeyprovider sendenv serveralivecountmax
serveraliveinterval sessiontype setenv stdinnull streamlocalbindmask streamlocalbindunlink
stricthostkeychecking syslogfacility tag tcpkeepalive tunnel tunneldevice updatehostkeys user
userknownhostsfile verifyhostkeydns visualhostkey xauthlocation
gssapikeyexchange gssapitrustdns gssapirenewalforcesrekey gssapikexalgorithms gssapiserveridentity
gssapiclientidentity
""".split())   # (the last line: Debian's GSSAPI key-exchange patch)

#: sshd_config(5) keywords (OpenSSH 9.x), lower case.
SSHD_KEYWORDS = set("""
match include acceptenv addressfamily allowagentforwarding allowgroups allowstreamlocalforwarding
allowtcpforwarding allowusers authenticationmethods authorizedkeyscommand authorizedkeyscommanduser
authorizedkeysfile authorizedprincipalscommand authorizedprincipalscommanduser authorizedprincipalsfile banner
casignaturealgorithms channeltimeout chrootdirectory ciphers clientalivecountmax clientaliveinterval compression
denygroups denyusers disableforwarding exposeauthinfo fingerprinthash forcecommand gatewayports
gssapiauthentication gssapicleanupcredentials gssapistrictacceptorcheck hostbasedacceptedalgorithms
hostbasedauthentication hostbasedusesnamefrompacketonly hostcertificate hostkey hostkeyagent hostkeyalgorithms
ignorerhosts ignoreuserknownhosts ipqos kbdinteractiveauthentication kerberosauthentication
kerberosgetafstoken kerberosorlocalpasswd kerberosticketcleanup kexalgorithms listenaddress logingracetime
loglevel logverbose macs maxauthtries maxsessions maxstartups modulifile passwordauthentication
permitemptypasswords permitlisten permitopen permitrootlogin permittty permittunnel permituserenvironment
permituserrc persourcemaxstartups persourcenetblocksize pidfile port printlastlog printmotd
pubkeyacceptedalgorithms pubkeyauthoptions pubkeyauthentication rdomain rekeylimit requiredrsasize
revokedkeys securitykeyprovider setenv streamlocalbindmask streamlocalbindunlink strictmodes subsystem
syslogfacility tcpkeepalive trustedusercakeys unusedconnectiontimeout usedns usepam versionaddendum
x11displayoffset x11forwarding x11uselocalhost xauthlocation challengeresponseauthentication
usedns useprivilegeseparation protocol rsaauthentication rhostsrsaauthentication serverkeybits
keyregenerationinterval pubkeyacceptedkeytypes hostbasedacceptedkeytypes
gssapikeyexchange gssapistrictacceptorcheck gssapistorecredentialsonrekey gssapikexalgorithms
""".split())

_TOKEN = re.compile(r'"([^"]*)"|(\S+)')


@dataclass(frozen=True)
class Line:
    keyword: str          # lower case
    args: tuple           # unquoted arguments
    origin: Origin


def split_line(text: str, origin: Origin) -> Line | None | Problem:
    """One config line -> keyword and arguments (None for blank/comment, Problem if unreadable)."""
    s = text.strip()
    if not s or s.startswith("#"):
        return None
    m = re.match(r"([A-Za-z0-9_]+)\s*(?:=\s*|\s+|$)(.*)$", s)
    if not m:
        return Problem(origin, f"cannot read {s[:80]!r} (expected 'Keyword value')")
    rest = m.group(2)
    if rest.count('"') % 2:
        return Problem(origin, f"unbalanced quotes in {s[:80]!r}")
    args = tuple(a if a else b for a, b in _TOKEN.findall(rest))
    return Line(m.group(1).lower(), args, origin)


def _patterns_match(value: str, patterns: list[str]) -> bool:
    """ssh's ``match_pattern_list``: a negated match vetoes; else any positive match."""
    value = value.lower()
    hit = False
    for p in patterns:
        neg = p.startswith("!")
        if fnmatch.fnmatchcase(value, (p[1:] if neg else p).lower()):
            if neg:
                return False
            hit = True
    return hit


def _address_match(value: str, patterns: list[str]) -> bool:
    """sshd's ``addr_match_list``: wildcards or CIDR (``198.51.100.0/24``), ``!`` vetoes."""
    import ipaddress
    hit = False
    for p in patterns:
        neg = p.startswith("!")
        p = p[1:] if neg else p
        if "/" in p:
            try:
                ok = ipaddress.ip_address(value) in ipaddress.ip_network(p, strict=False)
            except ValueError:
                ok = False
        else:
            ok = fnmatch.fnmatchcase(value.lower(), p.lower())
        if ok:
            if neg:
                return False
            hit = True
    return hit


class _Reader:
    """Reads lines through Includes, tracking which block applies.

    Bounded: an Include cycle, or nesting deeper than :data:`MAX_INCLUDE_DEPTH`, is an error naming
    the Include line (ssh and sshd refuse both: "Too many recursive configuration includes"); at most
    :data:`MAX_INCLUDE_FILES` files and :data:`~kalab.inputs.MAX_CONFIG_BYTES` in all are read for one
    configuration.  An Include that matches something unreadable (a directory, ``/dev/zero``, a FIFO,
    a file without permission) is reported and skipped.
    """

    def __init__(self, keywords: set[str], modelled: dict) -> None:
        self.keywords, self.modelled = keywords, modelled
        self.problems: list[Problem] = []
        self.chain: list[tuple[str, str]] = []     # (real path, shown path) of the files being read
        self.files = 0
        self.bytes = 0

    def lines(self, path: str, depth: int = 0, text: str | None = None):
        if text is None:
            text = read_text(path)
        if depth == 0:
            self.files += 1
            self.bytes += len(text)
            if self.bytes > MAX_CONFIG_BYTES:
                raise ScenarioError(path, f"{len(text):,} characters is too big",
                                    allowed=f"at most {MAX_CONFIG_BYTES >> 20} MiB")
        self.chain.append((path if path.startswith("<") else os.path.realpath(path), path))
        try:
            for n, raw in enumerate(text.splitlines(), 1):
                item = split_line(raw, Origin(path, n))
                if item is None:
                    continue
                if isinstance(item, Problem):
                    self.problems.append(item)
                    continue
                yield item, path, depth
        finally:
            self.chain.pop()

    def include(self, line: Line, path: str, depth: int) -> list[tuple[str, str]]:
        """Expand an Include line into (file path, text) in glob order."""
        if path.startswith("<"):
            self.problems.append(Problem(line.origin, "Include in text that is not a file: skipped"))
            return []
        base = os.path.dirname(os.path.abspath(path))
        refused = "ssh and sshd refuse it: Too many recursive configuration includes"
        out = []
        for arg in line.args:
            pat = os.path.expanduser(arg)
            if not os.path.isabs(pat):
                pat = os.path.join(base, pat)
            try:
                found = sorted(itertools.islice(glob.iglob(pat), MAX_INCLUDE_FILES + 1))
            except (OSError, ValueError) as e:
                self.problems.append(Problem(line.origin, f"Include {show(arg)}: {e}: skipped"))
                continue
            if len(found) > MAX_INCLUDE_FILES:
                raise ConfigError(line.origin, "Include", f"{show(arg)} matches more than {MAX_INCLUDE_FILES} files",
                                  allowed=f"at most {MAX_INCLUDE_FILES} files read for one configuration")
            if not found and not glob.has_magic(pat):
                self.problems.append(Problem(line.origin, f"Include {show(arg)}: no such file"))
            for f in found:
                # Shown as the including file is shown (a relative path stays relative).
                shown = os.path.join(os.path.dirname(path), os.path.relpath(f, base))
                real = os.path.realpath(f)
                if any(real == r for r, _ in self.chain):
                    loop = [s for r, s in self.chain[[r for r, _ in self.chain].index(real):]] + [shown]
                    raise ConfigError(line.origin, "Include", f"{show(arg)} is a cycle: {' -> '.join(loop)}",
                                      hint=refused)
                if depth + 1 > MAX_INCLUDE_DEPTH:
                    raise ConfigError(line.origin, "Include", f"files nested deeper than {MAX_INCLUDE_DEPTH}",
                                      allowed=f"at most {MAX_INCLUDE_DEPTH} levels of Include", hint=refused)
                if self.files >= MAX_INCLUDE_FILES:
                    raise ConfigError(line.origin, "Include", f"more than {MAX_INCLUDE_FILES} files to read",
                                      allowed=f"at most {MAX_INCLUDE_FILES} files read for one configuration")
                try:
                    data = read_regular_file(f, MAX_CONFIG_BYTES - self.bytes, "config")
                except TooBig:
                    raise ConfigError(line.origin, "Include", f"{shown}: the files of one configuration add up to "
                                      f"more than {MAX_CONFIG_BYTES >> 20} MiB",
                                      allowed=f"at most {MAX_CONFIG_BYTES >> 20} MiB in all") from None
                except ScenarioError as e:
                    self.problems.append(Problem(line.origin, f"Include {show(arg)}: {e}: skipped"))
                    continue
                self.files += 1
                self.bytes += len(data)
                out.append((shown, data.decode("utf-8", errors="replace")))
        return out

    def unknown(self, line: Line) -> None:
        if line.keyword not in self.keywords:
            names = [v[0] for v in self.modelled.values()]
            guess = closest(line.keyword, names)
            hint = f" (did you mean {guess}?)" if guess else ""
            self.problems.append(Problem(line.origin, f"unknown keyword {show(line.keyword)}{hint}: kept, not used"))


def _option_value(table: dict, line: Line):
    """A modelled keyword's value, validated: ints, yes/no, times (``5m``; ``none`` = 0)."""
    canon, _field, typ, lo, hi = table[line.keyword]
    if typ == "channeltimeout":
        # type=interval pairs (sshd -T prints them on one line); checked against the sshd version
        # when the scenario is built (kalab.mechanisms.sshd_idle.parse_channel_timeout)
        from ..mechanisms.sshd_idle import parse_channel_timeout
        text = " ".join(line.args)
        try:
            parse_channel_timeout(text, (10, 0))
        except ValueError as e:
            raise ConfigError(line.origin, canon, str(e), value=text,
                              allowed="type=interval pairs, e.g. session:*=15m") from None
        return text
    if len(line.args) != 1:
        raise ConfigError(line.origin, canon, f"takes one value, got {len(line.args)}: {show(' '.join(line.args))}",
                          value=" ".join(line.args))
    v = line.args[0]
    if typ.startswith("enum:"):
        allowed = typ[5:].split(",")
        if v.lower() not in allowed:
            raise ConfigError(line.origin, canon, f"must be one of {', '.join(allowed)}, got {show(v)}", value=v,
                              allowed=", ".join(allowed))
        return v.lower()
    if typ == "yesno":
        if v.lower() not in ("yes", "no"):
            raise ConfigError(line.origin, canon, f"must be yes or no, got {show(v)}", value=v, allowed="yes, no")
        return v.lower() == "yes"
    if typ == "time":
        secs = openssh_time(v)
        if secs is None:
            raise ConfigError(line.origin, canon, f"invalid time value {show(v)} (sshd/ssh refuse to start on it)",
                              value=v, allowed=TIME_FORMATS_HELP)
        if not lo <= secs <= hi:
            raise ConfigError(line.origin, canon, f"{show(v)} is out of range", value=v, allowed=f"{lo}..{hi} s")
        return secs
    # OpenSSH reads integers with strtonum(): an optional sign and ASCII digits (Python's int() would
    # also take "5_0" and non-ASCII digits).
    if not re.fullmatch(r"[+-]?[0-9]+", v):
        raise ConfigError(line.origin, canon, f"must be an integer, got {show(v)}", value=v, allowed=f"{lo}..{hi}")
    if len(v.lstrip("+-").lstrip("0")) > 19:        # past strtonum's long long (and no int() of 5,000 digits)
        raise ConfigError(line.origin, canon, f"{show(v)} is out of range", value=v, allowed=f"{lo}..{hi}")
    iv = int(v)
    if not lo <= iv <= hi:
        raise ConfigError(line.origin, canon, f"{iv} is out of range", value=iv, allowed=f"{lo}..{hi}")
    return iv


@dataclass(frozen=True)
class SshConfig:
    """The client options that apply to ``host``: ``options`` (ssh_config name -> value), ``origins``."""

    host: str
    options: dict = field(default_factory=dict)
    origins: dict = field(default_factory=dict)
    other: dict = field(default_factory=dict)
    problems: tuple = ()


def parse_ssh_config(text: str, host: str, name: str = "<ssh_config>", *, user: str | None = None) -> SshConfig:
    """The options for ``ssh host`` from one config's text (see :func:`read_ssh_config`)."""
    return _ssh(name, host, user, text)


def read_ssh_config(path: str, host: str, *, user: str | None = None) -> SshConfig:
    """The options ``ssh host`` would use from ``path`` (an ``ssh_config`` or ``ssh -G`` output)."""
    return _ssh(path, host, user, None)


def _ssh(path: str, host: str, user: str | None, text: str | None) -> SshConfig:
    reader = _Reader(SSH_KEYWORDS, SSH_OPTIONS)
    local_user = user or _local_user()
    got: dict[str, tuple] = {}             # keyword -> (args, origin): the first obtained value
    options, origins, other = {}, {}, {}

    def criteria_match(line: Line) -> bool:
        args = list(line.args)
        ok = True
        i = 0
        if not args:
            reader.problems.append(Problem(line.origin, "Match without criteria: never matches"))
            return False
        while i < len(args):
            crit = args[i].lower()
            neg = crit.startswith("!")
            crit = crit.lstrip("!")
            if crit in ("all", "canonical", "final"):
                res = crit != "canonical"          # one pass here: 'final' lines apply, 'canonical' ones do not
                i += 1
            elif i + 1 >= len(args):
                reader.problems.append(Problem(line.origin, f"Match {crit} needs an argument: never matches"))
                return False
            else:
                pats = args[i + 1].split(",")
                i += 2
                if crit == "host":
                    target = got.get("hostname", ((host,),))[0][0]
                    res = _patterns_match(target, pats)
                elif crit == "originalhost":
                    res = _patterns_match(host, pats)
                elif crit == "user":
                    res = _patterns_match(got.get("user", ((local_user,),))[0][0], pats)
                elif crit == "localuser":
                    res = _patterns_match(local_user, pats)
                elif crit == "exec":
                    reader.problems.append(Problem(line.origin, "Match exec is not run by kalab: treated as false"))
                    res = False
                else:
                    reader.problems.append(Problem(line.origin, f"Match {crit} cannot be evaluated here: "
                                                                f"treated as false"))
                    res = False
            ok = ok and (res != neg)
        return ok

    def walk(p: str, depth: int, txt: str | None, active: bool) -> None:
        # `active` is the state inherited from the block holding an Include.
        cur = active
        for line, _path, _d in reader.lines(p, depth, txt):
            if line.keyword == "host":
                cur = _patterns_match(host, list(line.args)) if line.args else False
                continue
            if line.keyword == "match":
                cur = criteria_match(line)
                continue
            if line.keyword == "include":
                if cur:
                    for f, ftext in reader.include(line, p, depth):
                        walk(f, depth + 1, ftext, True)
                continue
            reader.unknown(line)
            if not cur or line.keyword in got:
                continue
            got[line.keyword] = (line.args, line.origin)
            if line.keyword in SSH_OPTIONS:
                canon = SSH_OPTIONS[line.keyword][0]
                options[canon], origins[canon] = _option_value(SSH_OPTIONS, line), line.origin
            else:
                other[line.keyword] = " ".join(line.args)

    if text is None:
        text = read_text(path)
    if _is_ssh_G(text):
        # `ssh -G HOST` prints the final options for one host, led by "host HOST": no blocks apply.
        first = next(ln for ln in text.splitlines() if ln.strip())
        host = first.split(None, 1)[1].strip()
        text = text.replace(first, "# " + first, 1)
    walk(path, 0, text, True)
    return SshConfig(host, options, origins, other, tuple(reader.problems))


def _is_ssh_G(text: str) -> bool:
    """``ssh -G`` output: a first line ``host NAME`` and every keyword in lower case, unindented."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return bool(lines) and re.match(r"^host \S+$", lines[0]) is not None \
        and any(ln.startswith("serveraliveinterval ") for ln in lines) \
        and all(re.match(r"^[A-Za-z0-9]+ ", ln) for ln in lines)   # (9.x prints canonicalizePermittedcnames)


def _local_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no user database
        return "user"


@dataclass(frozen=True)
class SshdConfig:
    """sshd options for one connection: ``options`` (sshd_config name -> value) and ``origins``."""

    options: dict = field(default_factory=dict)
    origins: dict = field(default_factory=dict)
    other: dict = field(default_factory=dict)
    problems: tuple = ()


SSHD_CRITERIA = ("user", "group", "host", "address", "localaddress", "localport", "rdomain")


def parse_sshd_config(text: str, name: str = "<sshd_config>", *, match: dict | None = None) -> SshdConfig:
    return _sshd(name, text, match)


def read_sshd_config(path: str, *, match: dict | None = None) -> SshdConfig:
    """sshd's options from ``path`` (``sshd_config`` or ``sshd -T`` output); ``match`` describes the
    connection for ``Match`` blocks, e.g. ``{"user": "alice", "address": "203.0.113.7"}``."""
    return _sshd(path, None, match)


def _sshd(path: str, text: str | None, match: dict | None) -> SshdConfig:
    reader = _Reader(SSHD_KEYWORDS, SSHD_OPTIONS)
    match = {k.lower(): str(v) for k, v in (match or {}).items()}
    glob_got: dict[str, tuple] = {}
    match_got: dict[str, tuple] = {}

    def criteria_match(line: Line) -> bool:
        args = list(line.args)
        if [a.lower() for a in args] == ["all"]:
            return True
        if len(args) % 2 or not args:
            reader.problems.append(Problem(line.origin, f"Match {show(' '.join(args))}: criteria come in pairs; "
                                                        f"block not applied"))
            return False
        for crit, pats in zip(args[::2], args[1::2]):
            crit = crit.lower()
            if crit not in SSHD_CRITERIA:
                reader.problems.append(Problem(line.origin, f"Match {show(crit)} is not a criterion; block not applied"))
                return False
            if crit not in match:
                reader.problems.append(Problem(line.origin, f"Match {crit} {pats}: no {crit} given for the "
                                                            f"connection; block not applied"))
                return False
            test = _address_match if crit in ("address", "localaddress") else _patterns_match
            if not test(match[crit], pats.split(",")):
                return False
        return True

    def walk(p: str, depth: int, txt: str | None, state: str) -> None:
        cur = state  # "global", "match" (applies) or "skip"
        for line, _path, _d in reader.lines(p, depth, txt):
            if line.keyword == "match":
                cur = "match" if criteria_match(line) else "skip"
                continue
            if line.keyword == "include":
                if cur != "skip":
                    for f, ftext in reader.include(line, p, depth):
                        walk(f, depth + 1, ftext, cur)
                continue
            reader.unknown(line)
            if cur == "skip":
                continue
            target = glob_got if cur == "global" else match_got
            target.setdefault(line.keyword, line)

    walk(path, 0, text, "global")
    options, origins, other = {}, {}, {}
    for kw, line in {**glob_got, **match_got}.items():   # a matching block overrides the global value
        if kw in SSHD_OPTIONS:
            canon = SSHD_OPTIONS[kw][0]
            options[canon], origins[canon] = _option_value(SSHD_OPTIONS, line), line.origin
        else:
            other[kw] = " ".join(line.args)
    return SshdConfig(options, origins, other, tuple(reader.problems))
