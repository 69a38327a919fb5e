"""``kalab links``: Binder and nbgitpuller links for wherever the repository is published (kalab/links.py)."""

import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalab import cli
from kalab.errors import ScenarioError
from kalab.links import (START, app_url, binder_url, check_ref, nbgitpuller_url, parse_hub_url, parse_repo_url,
                         render)

ROOT = Path(__file__).resolve().parent.parent


def links(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "kalab", "links", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=60)


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def checkout(tmp_path):
    """An empty git repository standing in for an instructor's clone (no global config needed)."""
    git(tmp_path, "init", "-q", "-b", "main")
    return tmp_path


# ---------------------------------------------------------------- the addresses git shows

@pytest.mark.parametrize("url", ["https://github.com/o/kalab", "https://github.com/o/kalab.git",
                                 "https://github.com/o/kalab/", "git@github.com:o/kalab.git", "github.com:o/kalab",
                                 "ssh://git@github.com/o/kalab", "ssh://git@github.com/o/kalab.git",
                                 "ssh://git@ssh.github.com:443/o/kalab.git", "http://github.com/o/kalab",
                                 "HTTPS://GitHub.com/o/kalab", "  https://github.com/o/kalab  "])
def test_every_form_of_a_github_remote_gives_the_same_binder_link(url):
    repo = parse_repo_url(url)
    assert repo.url == "https://github.com/o/kalab"
    assert binder_url(repo) == "https://mybinder.org/v2/gh/o/kalab/HEAD?urlpath=lab/tree/notebooks/00-start-here.ipynb"


def test_gitlab_namespaces_are_url_escaped_in_the_binder_link():
    """BinderHub's gl spec is <url-escaped namespace>/<ref> (GitLab groups nest)."""
    repo = parse_repo_url("git@gitlab.com:course/net/kalab.git")
    assert repo.url == "https://gitlab.com/course/net/kalab"
    assert binder_url(repo, "main").startswith("https://mybinder.org/v2/gl/course%2Fnet%2Fkalab/main?urlpath=")


@pytest.mark.parametrize("url,clone", [
    ("https://git.example.org/course/kalab.git", "https://git.example.org/course/kalab.git"),
    ("git@codeberg.org:o/kalab.git", "https://codeberg.org/o/kalab.git"),
    ("ssh://git@git.example.org:2222/o/kalab", "https://git.example.org/o/kalab"),    # the ssh port is dropped
    ("https://git.example.org:8443/o/kalab", "https://git.example.org:8443/o/kalab"),
    ("https://gitlab.example.edu/g/kalab", "https://gitlab.example.edu/g/kalab"),     # self-hosted: not gl
])
def test_any_other_host_uses_binders_git_provider_with_the_url_escaped(url, clone):
    repo = parse_repo_url(url)
    assert repo.url == clone and repo.provider == "git"
    link = binder_url(repo)
    spec, ref = urlsplit(link).path.removeprefix("/v2/git/").rsplit("/", 1)
    assert unquote(spec) == clone and "/" not in spec and ref == "HEAD"


def test_app_mode_link_opens_notebook_00_in_voila():
    link = app_url(parse_repo_url("https://github.com/o/kalab"), "fall-2026")
    assert link == "https://mybinder.org/v2/gh/o/kalab/fall-2026?urlpath=voila/render/notebooks/00-start-here.ipynb"


def test_the_start_notebook_exists():
    assert (ROOT / START).is_file()


# ---------------------------------------------------------------- nbgitpuller

@pytest.mark.parametrize("url,directory", [("git@github.com:o/kalab.git", "kalab"),
                                           ("https://git.example.org/course/net-lab.git", "net-lab.git")])
def test_nbgitpuller_link_opens_the_notebook_inside_the_directory_nbgitpuller_clones_into(url, directory):
    """nbgitpuller clones into repo.split('/')[-1] of the repo it is given; urlpath must start there."""
    repo = parse_repo_url(url)
    link = nbgitpuller_url("https://hub.example.edu", repo, "main")
    u = urlsplit(link)
    assert (u.scheme, u.netloc, u.path) == ("https", "hub.example.edu", "/hub/user-redirect/git-pull")
    q = parse_qs(u.query, strict_parsing=True)
    assert q == {"repo": [repo.url], "branch": ["main"], "urlpath": [f"lab/tree/{directory}/{START}"]}
    assert q["repo"][0].split("/")[-1] == directory
    assert "/" not in u.query and ":" not in u.query      # every value URL-encoded


@pytest.mark.parametrize("hub,base", [("https://hub.example.edu", "https://hub.example.edu"),
                                      ("https://hub.example.edu/", "https://hub.example.edu"),
                                      ("https://hub.example.edu/hub/", "https://hub.example.edu"),
                                      ("https://example.edu/jupyter/hub", "https://example.edu/jupyter"),
                                      ("http://localhost:8000", "http://localhost:8000"),
                                      ("http://[::1]:8000", "http://[::1]:8000")])
def test_hub_address_is_its_base_without_hub(hub, base):
    assert parse_hub_url(hub) == base


# ---------------------------------------------------------------- refusals: one line, the option, the value

@pytest.mark.parametrize("url,fragment", [
    ("", "not a repository address"), ("/srv/git/kalab", "a local path is not published"),
    ("file:///srv/git/kalab", "cannot clone over file"), ("git://github.com/o/r", "cannot clone over git"),
    ("ftp://x.org/r", "cannot clone over ftp"), ("https://github.com/o", "github.com/OWNER/REPO"),
    ("https://github.com/o/r/tree/main", "github.com/OWNER/REPO"), ("https://gitlab.com/p", "GROUP"),
    ("https://gitlab.com/g/p/-/tree/main", "GROUP"), ("http://git.example.org/r", "https"),
    ("https://localhost/r", "not a public host name"), ("https://10.0.0.1/r", "not a public host name"),
    ("https://github.com/o/r?x=1", "no ?query"), ("https://git.example.org/a%20b", "characters outside"),
    ("https://git.example.org/a/../b", "not a repository path"), ("https://git.example.org:99999/r", "not a repository"),
])
def test_bad_repo_url_is_refused_naming_the_value(url, fragment):
    with pytest.raises(ScenarioError) as e:
        parse_repo_url(url)
    assert fragment in str(e.value) and str(e.value).startswith("REPO_URL: ") and "\n" not in str(e.value)


@pytest.mark.parametrize("url", ["https://ghp_SECRET123@github.com/o/r", "https://me:SECRET123@git.example.org/r",
                                 "https://me:SECRET123@git.example.org/a b", "me:SECRET123@git.example.org:r",
                                 "https://SECRET123@[::1/r", "ftp://SECRET123@x.org/r"])
def test_credentials_in_the_url_are_refused_and_never_echoed(url):
    with pytest.raises(ScenarioError) as e:
        parse_repo_url(url)
    assert "SECRET123" not in str(e.value)
    with pytest.raises(ScenarioError) as e:
        parse_hub_url(url)
    assert "SECRET123" not in str(e.value)
    out = links(url)
    assert out.returncode == 2 and "SECRET123" not in out.stderr + out.stdout


@pytest.mark.parametrize("ref", ["", "a..b", "/main", "main/", "a//b", ".hidden", "x.lock", "a b", "a:b", "a?b",
                                 "a#b", "a%2Fb", "~1", "main.", "@", "-" * 300])
def test_bad_ref_is_refused(ref):
    with pytest.raises(ScenarioError, match="^--ref: not a git ref"):
        check_ref(ref)


@pytest.mark.parametrize("hub", ["hub.example.edu", "ftp://hub.example.edu", "https://", "https://hub.example.edu/?a=1",
                                 "https://u:p@hub.example.edu", "https://hub.example.edu/hub/home",
                                 "https://hub.example.edu/user/alice/lab", "https://hub.example.edu:0x50"])
def test_bad_hub_is_refused(hub):
    with pytest.raises(ScenarioError, match="^--hub: "):
        parse_hub_url(hub)


@pytest.mark.parametrize("args,option", [(["ftp://x.org/r"], "REPO_URL"),
                                         (["https://github.com/o/r", "--ref", "a..b"], "--ref"),
                                         (["https://github.com/o/r", "--hub", "hub"], "--hub")])
def test_cli_bad_input_exits_2_with_one_line_naming_the_option(args, option):
    out = links(*args)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith(f"kalab: error: {option}: ") and out.stderr.count("\n") == 1
    assert "Traceback" not in out.stderr


# ---------------------------------------------------------------- the checkout's remote

def test_without_a_remote_or_argument_it_says_how_to_pass_the_url(checkout):
    out = links(cwd=checkout)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == ("kalab: error: REPO_URL: this checkout has no git remote; pass the published address: "
                          "python -m kalab links https://github.com/OWNER/REPO\n")


def test_a_fork_gets_links_for_the_fork(checkout):
    """An instructor's clone of their fork: origin's address, on Binder and on the hub."""
    git(checkout, "remote", "add", "upstream", "https://github.com/kalab-project/kalab")
    git(checkout, "remote", "add", "origin", "git@github.com:teacher/kalab.git")
    out = links("--hub", "https://hub.example.edu", cwd=checkout)
    assert out.returncode == 0, out.stderr
    assert "Repository: https://github.com/teacher/kalab (git remote origin)" in out.stdout
    assert "https://mybinder.org/v2/gh/teacher/kalab/HEAD?urlpath=lab/tree/notebooks/00-start-here.ipynb" in out.stdout
    assert "repo=https%3A%2F%2Fgithub.com%2Fteacher%2Fkalab&branch=main&urlpath=lab%2Ftree%2Fkalab%2F" in out.stdout


def test_the_only_remote_counts_when_there_is_no_origin(checkout):
    git(checkout, "remote", "add", "course", "https://gitlab.com/net/kalab.git")
    out = links(cwd=checkout)
    assert out.returncode == 0 and "https://mybinder.org/v2/gl/net%2Fkalab/HEAD?" in out.stdout


def test_several_remotes_and_no_origin_is_refused(checkout):
    git(checkout, "remote", "add", "a", "https://github.com/a/kalab")
    git(checkout, "remote", "add", "b", "https://github.com/b/kalab")
    out = links(cwd=checkout)
    assert out.returncode == 2 and "several git remotes (a, b)" in out.stderr and out.stderr.count("\n") == 1


def test_hub_branch_is_the_remotes_default_branch_else_the_checked_out_one(checkout):
    git(checkout, "remote", "add", "origin", "https://github.com/teacher/kalab")
    git(checkout, "checkout", "-q", "-b", "fall-2026")
    out = links("--hub", "https://hub.example.edu", cwd=checkout)
    assert "(branch fall-2026)" in out.stdout and "&branch=fall-2026&" in out.stdout
    # After `git clone`, refs/remotes/origin/HEAD names the default branch: that one wins.
    git(checkout, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")
    out = links("--hub", "https://hub.example.edu", cwd=checkout)
    assert "&branch=main&" in out.stdout


def test_ref_applies_to_binder_and_to_the_hub():
    out = links("https://github.com/o/kalab", "--ref", "fall-2026", "--hub", "https://hub.example.edu")
    assert "/v2/gh/o/kalab/fall-2026?" in out.stdout and "&branch=fall-2026&" in out.stdout


def test_remote_that_is_a_local_path_is_refused_naming_the_remote(checkout):
    git(checkout, "remote", "add", "origin", "/srv/git/kalab")
    out = links(cwd=checkout)
    assert out.returncode == 2 and out.stderr.startswith("kalab: error: REPO_URL (git remote origin): ")


def test_without_hub_it_says_how_to_get_the_hub_link():
    out = links("https://github.com/o/kalab")
    assert out.returncode == 0 and "add --hub https://YOUR-HUB" in out.stdout and "git-pull" not in out.stdout


# ---------------------------------------------------------------- the README shows what the command prints

def test_readme_example_is_what_the_command_prints():
    readme = (ROOT / "README.md").read_text()
    cmd = "python -m kalab links https://git.example.org/course/kalab --hub https://hub.example.edu"
    assert f"$ {cmd}\n" in readme
    out = links(*cmd.split()[4:])
    assert out.returncode == 0
    assert f"$ {cmd}\n{out.stdout}" in readme
    assert "OWNER/kalab" not in readme


# ---------------------------------------------------------------- fuzz: only clean refusals

_URLISH = st.text(st.sampled_from(list("htps:/@.gitubcomlabx-_~%?#[]:0189 \t\\é")), max_size=40)
_PREFIXES = st.sampled_from(["", "https://", "https://github.com/", "https://gitlab.com/", "git@github.com:",
                             "ssh://git@", "http://", "https://git.example.org/"])


@given(_PREFIXES, _URLISH | st.text(max_size=40))
def test_fuzz_repo_url_parses_or_is_refused_cleanly(prefix, rest):
    try:
        repo = parse_repo_url(prefix + rest)
    except ScenarioError as e:
        assert "\n" not in str(e)
        return
    # What parses makes links whose parts read back.
    assert repo.url.startswith("https://") and " " not in repo.url
    link = binder_url(repo)
    assert urlsplit(link).netloc == "mybinder.org" and urlsplit(link).query.startswith("urlpath=")
    q = parse_qs(urlsplit(nbgitpuller_url("https://hub.example.edu", repo, "main")).query)
    assert q["repo"] == [repo.url] and q["urlpath"][0].startswith(f"lab/tree/{repo.directory}/")


@given(_URLISH | st.text(max_size=40), _URLISH | st.text(max_size=40))
def test_fuzz_cli_links_prints_or_exits_2_with_one_line(url, hub):
    """In-process, a REPO_URL and a --hub (given, so git is never asked): exit 0 with links, or 2
    with one line on stderr -- no traceback, whatever the text (argparse's own refusals included)."""
    import contextlib
    import io
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = cli.main(["links", "--hub", hub, "--ref", "main", "--", url])
        except SystemExit as e:            # argparse (e.g. --hub '-x'): exits 2 with usage + one error line
            code = e.code
    assert code in (0, 2)
    if code == 0:
        assert out.getvalue().startswith("Repository: https://") and err.getvalue() == ""
    else:
        lines = [ln for ln in err.getvalue().splitlines() if not ln.startswith(("usage:", " "))]
        assert len(lines) == 1 and lines[0].startswith("kalab"), err.getvalue()


def test_render_lists_the_three_links_and_the_badge():
    text = render(parse_repo_url("https://github.com/o/kalab"), hub="https://hub.example.edu")
    assert text.count("https://mybinder.org/v2/gh/o/kalab/HEAD?") == 3    # lab, app, badge
    assert "[![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/o/kalab/HEAD?urlpath=lab/" in text
    assert "/hub/user-redirect/git-pull?" in text


@given(st.sampled_from(["https://", "ssh://", "http://", "", "ftp://"]),
       st.sampled_from(["u:SECRETX", "SECRETX", "a:b:SECRETX"]), _URLISH)
def test_fuzz_a_token_before_the_host_never_reaches_the_output(scheme, userinfo, rest):
    text = f"{scheme}{userinfo}@{rest}"
    for parse in (parse_repo_url, parse_hub_url):
        try:
            shown = repr(parse(text))
        except ScenarioError as e:
            shown = str(e)
        assert "SECRETX" not in shown
