#!/usr/bin/env bash
# OpenSSH 10.0 for the real-kernel lab, beside Debian 12's own 9.2p1 (docs/lab.md, "Two OpenSSH
# builds").  Run by scripts/install-system-deps.sh (so by `make test`) after the system packages.
#
# What it does, as root, only when the build is not there yet:
#  * downloads bookworm-backports' openssh-server and openssh-client ($PKG_VERSION) with a private
#    apt configuration: its own sources list (the Debian archive the system's own bookworm sources
#    name, suite bookworm-backports, Debian's archive keyring), its own lists, cache and (empty)
#    dpkg status, all in a temporary directory -- the system's apt sources, lists, preferences and
#    packages are read by nothing and changed by nothing, and nothing is installed (`apt-get
#    download` only fetches the .deb files);
#  * unpacks them with `dpkg-deb -x` (no maintainer scripts run: no user, no service, no unit) into
#    .lab/openssh-10.0/ in this repository, which git ignores: the build lives and goes with the
#    checkout (`make clean` removes it), and nothing is added under the system's own paths;
#  * checks that the unpacked sshd reports OpenSSH_10.0 and that every library its programs need is
#    resolved, then moves it into place in one step, with a stamp naming the package version.
# The lab points the unpacked sshd at its own helpers (sshd_config's SshdSessionPath and
# SshdAuthPath: OpenSSH 10 splits the server into sshd, sshd-session and sshd-auth).
#
# Idempotent: a second run finds the stamp and does nothing (no network).  Bounded: every apt-get
# call is limited by `timeout` and apt's own connection timeout.  Without root, apt-get, dpkg-deb or
# the Debian 12 archive it says what is missing and exits 0, as install-system-deps.sh does: the lab
# tests that need this build then skip with that reason (and fail under CI=true).
set -euo pipefail

PKG_VERSION='1:10.0p1-7~bpo12+1'   # bookworm-backports' openssh-server/openssh-client
UPSTREAM=10.0                      # what the unpacked `sshd -V` must report: OpenSSH_10.0...
SUITE=bookworm-backports
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
repo=$(cd "$(dirname "$0")/.." && pwd)
prefix="$repo/.lab/openssh-$UPSTREAM"
stamp="$prefix/.kalab-build"

say() { echo "provision-openssh: $*" >&2; }
missing() { say "$* -- missing OpenSSH $UPSTREAM ($prefix); its lab tests will skip"; exit 0; }

if [ -f "$stamp" ] && grep -qxF "requested $PKG_VERSION" "$stamp" && [ -x "$prefix/usr/sbin/sshd" ] \
   && [ -x "$prefix/usr/bin/ssh" ] && [ -x "$prefix/usr/lib/openssh/sshd-session" ] \
   && [ -x "$prefix/usr/lib/openssh/sshd-auth" ]; then
  exit 0
fi
[ "$(id -u)" = 0 ] || missing "not root"
for tool in apt-get dpkg-deb timeout ldd; do
  command -v "$tool" >/dev/null || missing "no $tool"
done
codename=$( . /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}" )
[ "$codename" = bookworm ] || missing "this is not Debian 12 (bookworm) but '${codename:-unknown}': $SUITE is Debian 12's"
[ -r "$KEYRING" ] || missing "no $KEYRING (debian-archive-keyring)"
# The archive the system already uses for bookworm (a mirror or proxy stays as configured).
uri=$(apt-get indextargets --no-release-info --format '$(REPO_URI)' 'Release: bookworm' 'Target-Of: deb' \
      2>/dev/null | head -n 1)
[ -n "$uri" ] || missing "the system's apt sources name no archive for bookworm"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kalab-openssh.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP
mkdir -p "$tmp/parts" "$tmp/prefs" "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/debs" "$tmp/root"
: >"$tmp/status"
echo "deb [signed-by=$KEYRING] $uri $SUITE main" >"$tmp/sources.list"
apt=(-q -o "Dir::Etc::sourcelist=$tmp/sources.list" -o "Dir::Etc::sourceparts=$tmp/parts"
     -o "Dir::Etc::preferences=$tmp/prefs/none" -o "Dir::Etc::preferencesparts=$tmp/prefs"
     -o "Dir::State=$tmp" -o "Dir::State::lists=$tmp/lists" -o "Dir::State::status=$tmp/status"
     -o "Dir::Cache=$tmp/cache" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root"
     -o "Acquire::Retries=2" -o "Acquire::http::Timeout=30" -o "Acquire::https::Timeout=30")
say "downloading openssh-server/openssh-client $PKG_VERSION ($SUITE) into a private directory"
timeout 300 apt-get "${apt[@]}" update >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; missing "apt-get update of $SUITE failed"; }
( cd "$tmp/debs" && timeout 300 apt-get "${apt[@]}" download \
    "openssh-server=$PKG_VERSION" "openssh-client=$PKG_VERSION" ) >>"$tmp/log" 2>&1 \
  || { cat "$tmp/log" >&2; missing "apt-get download of openssh $PKG_VERSION failed"; }
for deb in "$tmp"/debs/*.deb; do
  dpkg-deb -x "$deb" "$tmp/root"
done

got=$("$tmp/root/usr/sbin/sshd" -V 2>&1 | head -n 1 || true)
case "$got" in
  "OpenSSH_${UPSTREAM}p"*) ;;
  *) missing "the unpacked sshd reports '$got', not OpenSSH_$UPSTREAM" ;;
esac
for bin in usr/sbin/sshd usr/lib/openssh/sshd-session usr/lib/openssh/sshd-auth usr/bin/ssh; do
  [ -x "$tmp/root/$bin" ] || missing "the packages hold no $bin"
  if ldd "$tmp/root/$bin" | grep -q 'not found'; then
    missing "$bin needs libraries this system lacks: $(ldd "$tmp/root/$bin" | grep 'not found' | tr -s ' \t\n' ' ')"
  fi
done
{
  echo "requested $PKG_VERSION"
  for deb in "$tmp"/debs/*.deb; do
    echo "package $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version) sha256 $(sha256sum "$deb" | cut -d' ' -f1)"
  done
  echo "sshd -V $got"
} >"$tmp/root/.kalab-build"
chmod 755 "$tmp/root"
mkdir -p "$repo/.lab"
rm -rf "$prefix.new"
mv "$tmp/root" "$prefix.new"
rm -rf "$prefix"
mv "$prefix.new" "$prefix"
say "$got in $prefix"
