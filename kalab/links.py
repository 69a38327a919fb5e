"""``kalab links``: the Binder and course-hub links for wherever this repository is published.

Three links open notebook 00 (:data:`START`):

Binder, JupyterLab
    ``https://mybinder.org/v2/<provider>/<spec>/<ref>?urlpath=lab/tree/notebooks/00-start-here.ipynb``.
    BinderHub's providers and specs (https://binderhub.readthedocs.io/en/latest/developer/repoproviders.html,
    and ``binderhub/repoproviders.py``): GitHub ``gh/<owner>/<repo>/<ref>``; GitLab.com
    ``gl/<url-escaped namespace>/<ref>`` (nested groups, so ``group%2Fproject``); any other git URL
    ``git/<url-escaped url>/<ref>`` (resolved with ``git ls-remote``).  ``urlpath`` is where the
    server opens, relative to its root (https://mybinder.readthedocs.io/en/latest/howto/user_interface.html).
    The ref defaults to ``HEAD``: BinderHub resolves it to the default branch's newest commit, so the
    badge follows the repository (a fork's badge follows the fork).
Binder, app mode
    the same with ``urlpath=voila/render/notebooks/00-start-here.ipynb``: Voila renders the notebook
    with its code hidden (https://voila.readthedocs.io/en/stable/deploy.html, "Deployment on Binder").
Course JupyterHub (nbgitpuller)
    ``<hub>/hub/user-redirect/git-pull?repo=<url>&branch=<branch>&urlpath=lab/tree/<dir>/notebooks/...``,
    every value URL-encoded (https://nbgitpuller.readthedocs.io/en/latest/topic/url-options.html).
    ``user-redirect`` sends each student to their own server; nbgitpuller clones into
    ``<dir>`` = the last path segment of ``repo`` (its ``targetpath`` default, ``repo.split('/')[-1]``
    in ``nbgitpuller/handlers.py``), so ``urlpath`` must name that directory.  ``branch`` is always
    given: nbgitpuller's documented default is ``master``, and this repository's branch is ``main``.
    (A hub that sets ``NBGITPULLER_PARENTPATH`` clones one level deeper; its ``urlpath`` needs that
    directory in front, which only the hub's admin knows.)

Repository addresses are what ``git remote -v`` shows: ``https://github.com/o/r(.git)``,
``git@github.com:o/r.git`` and ``ssh://git@github.com/o/r``; ssh forms become the https address at the
same host and path (Binder and hubs clone anonymously over https).  Credentials in a URL are refused
and never echoed.  Everything here is a pure function except :func:`git_remote` and
:func:`git_branch`, which ask git about a checkout.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from .errors import ScenarioError

BINDER = "https://mybinder.org"
START = "notebooks/00-start-here.ipynb"
BADGE = "https://mybinder.org/badge_logo.svg"

REPO_FORMS = ("https://github.com/OWNER/REPO, https://gitlab.com/GROUP/PROJECT, https://HOST/PATH of any public "
              "git repository, or the ssh forms git@HOST:PATH and ssh://[USER@]HOST/PATH")
REF_FORM = ("a branch, tag or commit: letters, digits and . _ - /, as git check-ref-format allows "
            "(no '..', no '//', no part starting with '.' or ending with '.lock')")
HUB_FORM = "the hub's address, https://HOST[:PORT][/PREFIX], e.g. https://hub.example.edu"

_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}")            # GitHub user/organisation names
_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")                     # GitHub repo, GitLab path segments
_SEGMENT = re.compile(r"[A-Za-z0-9._~-]{1,255}")                 # RFC 3986 unreserved characters
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")             # a DNS label (RFC 1123)
_SCP = re.compile(r"(?:[A-Za-z0-9._-]+@)?(?P<host>[^/:@\s]+):(?P<path>[^/].*)")  # git's scp-like syntax
_REF = re.compile(r"[A-Za-z0-9._/-]{1,255}")
# Hosts that serve a forge's ssh on another name (ssh over port 443): the https address is the forge's.
_SSH_ALIASES = {"ssh.github.com": "github.com", "altssh.gitlab.com": "gitlab.com"}
_FORGES = {"github.com": "gh", "www.github.com": "gh", "gitlab.com": "gl", "www.gitlab.com": "gl"}


@dataclass(frozen=True)
class Repo:
    """A published repository: its https clone address and the Binder provider that serves it."""
    url: str           # https clone URL without credentials or trailing slash (nbgitpuller's ``repo``)
    provider: str      # "gh", "gl" or "git" (BinderHub's provider prefix)
    spec: str          # the part of the Binder URL between the provider and the ref

    @property
    def directory(self) -> str:
        """The directory nbgitpuller clones into (its targetpath default)."""
        return self.url.split("/")[-1]


def _shown(value: str) -> str:
    """The value as the error shows it: credentials masked, repr, cut at 80 characters.

    >>> _shown("https://me:TOKEN@git.example.org/r x")
    "'https://***@git.example.org/r x'"
    """
    # Whatever the refusal, a USER:TOKEN@ (or TOKEN@) before the host is not repeated; ssh's plain git@ is.
    value = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)?([^/?#]*)@",
                   lambda m: m.group(0) if m.group(2) == "git" else (m.group(1) or "") + "***@", value)
    r = repr(value)
    return r if len(r) <= 80 else r[:76] + "...'"


def _refuse(option: str, value: str, why: str, allowed: str) -> ScenarioError:
    return ScenarioError(option, f"{why}: {_shown(value)}", value=value, allowed=allowed)


def _hostname(host: str) -> bool:
    labels = host.split(".")
    return len(labels) >= 2 and all(_LABEL.fullmatch(x) for x in labels) and not labels[-1].isdigit()


def parse_repo_url(text: str, option: str = "REPO_URL") -> Repo:
    """The repository at ``text`` (a URL as ``git remote -v`` shows it), or :class:`ScenarioError`.

    >>> parse_repo_url("git@github.com:o/r.git")
    Repo(url='https://github.com/o/r', provider='gh', spec='o/r')
    >>> parse_repo_url("https://gitlab.com/g/sub/p.git").spec
    'g%2Fsub%2Fp'
    >>> parse_repo_url("https://git.example.org/course/kalab.git").spec
    'https%3A%2F%2Fgit.example.org%2Fcourse%2Fkalab.git'
    """
    if not isinstance(text, str) or not text.strip() or any(ord(c) < 33 or ord(c) == 127 for c in text.strip()):
        raise _refuse(option, str(text), "not a repository address", REPO_FORMS)
    raw = text.strip()
    if "://" in raw:
        try:
            u = urlsplit(raw)
            port = u.port      # ValueError unless a number in 0..65535
        except ValueError:
            raise _refuse(option, raw, "not a repository address", REPO_FORMS) from None
        scheme, host, path = u.scheme.lower(), (u.hostname or ""), u.path
        if u.username is not None and scheme != "ssh" or u.password is not None:
            # A token in the URL must not end up in a printed link (or in this message).
            raise ScenarioError(option, "credentials in the URL are refused (the links are public); "
                                "give the address without USER:TOKEN@", allowed=REPO_FORMS)
        if u.query or u.fragment:
            raise _refuse(option, raw, "a repository address has no ?query or #fragment", REPO_FORMS)
        if scheme not in ("https", "http", "ssh"):
            raise _refuse(option, raw, f"Binder and hubs cannot clone over {scheme or 'an empty scheme'}", REPO_FORMS)
    else:
        m = _SCP.fullmatch(raw)
        if not m:
            raise _refuse(option, raw, "not a repository address (a local path is not published)", REPO_FORMS)
        scheme, host, path, port = "ssh", m.group("host"), "/" + m.group("path"), None
    host = host.lower()
    if scheme == "ssh":
        host = _SSH_ALIASES.get(host, host)
    if not _hostname(host):
        raise _refuse(option, raw, "not a public host name", REPO_FORMS)
    parts = path.strip("/").split("/")
    if path.startswith("//") or "" in parts or any(p in (".", "..") for p in parts):
        raise _refuse(option, raw, "not a repository path", REPO_FORMS)
    forge = _FORGES.get(host)
    if forge == "gh":
        if len(parts) != 2 or not _OWNER.fullmatch(parts[0]) or not _NAME.fullmatch(parts[1]):
            raise _refuse(option, raw, "a GitHub repository is github.com/OWNER/REPO", REPO_FORMS)
        name = parts[1][:-4] if parts[1].endswith(".git") else parts[1]
        if not name or name in (".", ".."):
            raise _refuse(option, raw, "not a GitHub repository name", REPO_FORMS)
        return Repo(f"https://github.com/{parts[0]}/{name}", "gh", f"{parts[0]}/{name}")
    if forge == "gl":
        if parts[-1].endswith(".git"):
            parts[-1] = parts[-1][:-4]
        if len(parts) < 2 or not all(_NAME.fullmatch(p) and p != "-" and not p.startswith(".") for p in parts):
            raise _refuse(option, raw, "a GitLab project is gitlab.com/GROUP[/SUBGROUP...]/PROJECT", REPO_FORMS)
        namespace = "/".join(parts)
        return Repo(f"https://gitlab.com/{namespace}", "gl", quote(namespace, safe=""))
    if scheme == "http":
        raise _refuse(option, raw, "Binder and hubs fetch over https", REPO_FORMS)
    if not all(_SEGMENT.fullmatch(p) for p in parts):
        raise _refuse(option, raw, "the path has characters outside letters, digits and . _ ~ -", REPO_FORMS)
    # An ssh port says nothing about the https one: dropped, like the ssh user.
    url = f"https://{host}{f':{port}' if port and scheme == 'https' else ''}/{'/'.join(parts)}"
    return Repo(url, "git", quote(url, safe=""))


def check_ref(text: str, option: str = "--ref") -> str:
    """A branch, tag or commit safe to put in a Binder path and an nbgitpuller query, or :class:`ScenarioError`.

    git check-ref-format's rules (https://git-scm.com/docs/git-check-ref-format) on a URL-safe alphabet.

    >>> check_ref("feature/fall-2026")
    'feature/fall-2026'
    """
    ok = (isinstance(text, str) and _REF.fullmatch(text) and ".." not in text and "//" not in text
          and not text.startswith("/") and not text.endswith(("/", ".", ".lock"))
          and not any(p.startswith(".") or p.endswith(".lock") for p in text.split("/")) and text != "@")
    if not ok:
        raise _refuse(option, str(text), "not a git ref", REF_FORM)
    return text


def parse_hub_url(text: str, option: str = "--hub") -> str:
    """The base address of a JupyterHub (no trailing slash, no ``/hub``), or :class:`ScenarioError`.

    The link adds ``/hub/user-redirect/...``; an address copied from the browser's ``.../hub`` is
    taken back to the hub's base.

    >>> parse_hub_url("https://hub.example.edu/hub/")
    'https://hub.example.edu'
    """
    raw = text.strip() if isinstance(text, str) else ""
    try:
        u = urlsplit(raw)
        port = u.port
    except ValueError:
        raise _refuse(option, raw, "not a hub address", HUB_FORM) from None
    if any(ord(c) < 33 or ord(c) == 127 for c in raw):
        raise _refuse(option, raw, "not a hub address", HUB_FORM)
    if u.username is not None or u.password is not None:
        raise ScenarioError(option, "credentials in the URL are refused (the link is handed to students)",
                            allowed=HUB_FORM)
    if u.scheme not in ("https", "http") or u.query or u.fragment:
        raise _refuse(option, raw, "not a hub address", HUB_FORM)
    host = u.hostname or ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if not (ip or host == "localhost" or _hostname(host)):
        raise _refuse(option, raw, "not a host name", HUB_FORM)
    parts = [p for p in u.path.split("/") if p]
    if parts and parts[-1] == "hub":
        parts.pop()
    if "hub" in parts or "user" in parts or not all(_SEGMENT.fullmatch(p) for p in parts):
        raise _refuse(option, raw, "give the hub's address, not a page of it", HUB_FORM)
    netloc = (f"[{host}]" if ip and ip.version == 6 else host) + (f":{port}" if port else "")
    return f"{u.scheme}://{netloc}" + "".join("/" + p for p in parts)


def binder_url(repo: Repo, ref: str = "HEAD", urlpath: str = f"lab/tree/{START}") -> str:
    """The mybinder.org launch link (module docstring for the format).

    >>> binder_url(parse_repo_url("https://github.com/o/r"))
    'https://mybinder.org/v2/gh/o/r/HEAD?urlpath=lab/tree/notebooks/00-start-here.ipynb'
    """
    return f"{BINDER}/v2/{repo.provider}/{repo.spec}/{ref}?urlpath={quote(urlpath, safe='/')}"


def app_url(repo: Repo, ref: str = "HEAD") -> str:
    """The mybinder.org link that opens notebook 00 in Voila (app mode: widgets, no code)."""
    return binder_url(repo, ref, f"voila/render/{START}")


def nbgitpuller_url(hub: str, repo: Repo, branch: str, notebook: str = START) -> str:
    """The nbgitpuller link for a course hub (module docstring for the format).

    >>> nbgitpuller_url("https://hub.example.edu", parse_repo_url("https://github.com/o/r"), "main")
    'https://hub.example.edu/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com%2Fo%2Fr&branch=main&urlpath=lab%2Ftree%2Fr%2Fnotebooks%2F00-start-here.ipynb'
    """
    query = urlencode({"repo": repo.url, "branch": branch, "urlpath": f"lab/tree/{repo.directory}/{notebook}"},
                      quote_via=quote, safe="")
    return f"{hub}/hub/user-redirect/git-pull?{query}"


def badge(url: str) -> str:
    """Markdown for the Binder badge (the image mybinder.org serves for it)."""
    return f"[![Binder]({BADGE})]({url})"


def _git(cwd, *args) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_remote(cwd=None) -> tuple[str, str] | None:
    """(name, URL) of the checkout's remote: ``origin``, else the only one; None without a remote.

    Several remotes and none called origin: :class:`ScenarioError` (which one is published is a guess).
    """
    names = (_git(cwd, "remote") or "").split()
    if not names:
        return None
    if "origin" not in names and len(names) > 1:
        raise ScenarioError("REPO_URL", f"this checkout has several git remotes ({', '.join(names)}) and no "
                            "origin; pass the published address: python -m kalab links URL")
    name = "origin" if "origin" in names else names[0]
    url = _git(cwd, "remote", "get-url", name)
    return (name, url) if url else None


def git_branch(cwd=None, remote: str = "origin") -> str | None:
    """The branch students should pull: the remote's default branch as this clone knows it
    (``refs/remotes/<remote>/HEAD``, set by ``git clone``), else the branch checked out; None if neither."""
    head = _git(cwd, "symbolic-ref", "--quiet", "--short", f"refs/remotes/{remote}/HEAD")
    if head and head.startswith(remote + "/"):
        return head[len(remote) + 1:]
    return _git(cwd, "symbolic-ref", "--quiet", "--short", "HEAD")


def render(repo: Repo, ref: str = "HEAD", branch: str = "main", hub: str | None = None,
           source: str | None = None) -> str:
    """The text ``kalab links`` prints: each link on its own line under a label."""
    lab = binder_url(repo, ref)
    lines = [f"Repository: {repo.url}" + (f" ({source})" if source else ""),
             f"Binder, JupyterLab on {START}:", f"  {lab}",
             "Binder, app mode (Voila, no code shown):", f"  {app_url(repo, ref)}",
             "Badge (Markdown):", f"  {badge(lab)}"]
    if hub:
        lines += [f"Course JupyterHub with nbgitpuller (branch {branch}):", f"  {nbgitpuller_url(hub, repo, branch)}"]
    else:
        lines += ["Course JupyterHub with nbgitpuller: add --hub https://YOUR-HUB (the hub's address) for its link"]
    return "\n".join(lines)


def main(args) -> int:
    """``kalab links``: resolve the repository, ref and hub from the arguments (or git), print the links."""
    ref = check_ref(args.ref) if args.ref is not None else None
    hub = parse_hub_url(args.hub) if args.hub is not None else None
    if args.repo_url is not None:
        repo, source, branch = parse_repo_url(args.repo_url), None, None
    else:
        remote = git_remote()
        if remote is None:
            raise ScenarioError("REPO_URL", "this checkout has no git remote; pass the published address: "
                                "python -m kalab links https://github.com/OWNER/REPO")
        name, url = remote
        repo = parse_repo_url(url, option=f"REPO_URL (git remote {name})")
        source, branch = f"git remote {name}", git_branch(remote=name) if hub else None
    if ref and ref != "HEAD":
        branch = ref           # one ref for both: a fork's branch opens on Binder and on the hub alike
    print(render(repo, ref or "HEAD", branch or "main", hub, source))
    return 0
