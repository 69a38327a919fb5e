#!/usr/bin/env bash
# Install the Debian packages the real-kernel lab and the browser test need.
# Runs only as root and only installs what is missing; otherwise it says why
# and exits 0, so `make test` still runs (those tests then skip with a reason,
# except under CI=true, where they must run).
#
# No system service is left running or enabled by this script.  The lab needs
# the binaries only: it starts its own sshd, with its own throw-away config and
# keys, inside a network namespace, and ends it.  Debian's openssh-server,
# however, enables ssh.service (and the SysV/runit equivalents) and starts a
# listening sshd on port 22 when it is installed -- a side effect of `make test`
# that a user did not ask for.  So, when this script installs openssh-server:
#  * during the install, /usr/sbin/policy-rc.d answers 101 ("action forbidden",
#    see /usr/share/doc/init-system-helpers/README.policy-rc.d), which
#    invoke-rc.d and deb-systemd-invoke honour: no service is started.  We
#    create it only if there is none (an administrator's, or the one in
#    Debian's Docker images, is left as it is) and remove only the one we
#    created, whatever happens (trap on EXIT).  While it exists, it applies to
#    any other package installed on the machine at the same time too;
#  * afterwards, the boot-time enablement the package added is undone:
#    `update-rc.d ssh disable` (which also runs `systemctl disable ssh` where
#    systemctl exists) and, if runit's link was created, its removal; and if an
#    sshd service runs anyway (a policy-rc.d that allows it), it is stopped.
# An openssh-server that was installed before is not touched: the state of its
# service is the administrator's.  Idempotent: a second run installs nothing.
#
# Then scripts/provision-openssh.sh puts OpenSSH 10.0 beside the system's 9.2p1 for the lab, in
# .lab/openssh-10.0/ of this repository (git ignores it), without apt-get install: no package, apt
# source or service of the system changes (see that script).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# The system packages, in a subshell: its early exits, traps and signals are its own.
(
need=()
command -v ip        >/dev/null || need+=(iproute2)
command -v nft       >/dev/null || need+=(nftables)
command -v tcpdump   >/dev/null || need+=(tcpdump)
[ -x /usr/sbin/sshd ]           || need+=(openssh-server)
command -v ssh       >/dev/null || need+=(openssh-client)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
if [ "${KALAB_BROWSER_DEPS:-1}" = 1 ]; then
  command -v chromium >/dev/null || need+=(chromium)
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-system-deps: not root; missing ${need[*]} -- lab/browser tests will skip" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "install-system-deps: no apt-get; please install ${need[*]}" >&2
  exit 0
fi
mapfile -t pkgs < <(printf '%s\n' "${need[@]}" | sort -u)

policy=/usr/sbin/policy-rc.d
marker="# kalab install-system-deps: temporary, removed when the install ends"
ssh_new=0
case " ${pkgs[*]} " in *" openssh-server "*) ssh_new=1 ;; esac
runit_link=/etc/runit/runsvdir/default/ssh
runit_had_link=0
[ -L "$runit_link" ] && runit_had_link=1

remove_policy() {
  # Only our own file: an administrator's policy-rc.d is never touched.
  if [ -f "$policy" ] && grep -qxF "$marker" "$policy"; then
    rm -f "$policy"
  fi
}
ssh_service_off() {
  # Undo what openssh-server's postinst enabled for the next boot (it was not installed before,
  # so nothing of its service was the administrator's choice).  Runs even when the install failed
  # or was interrupted after the postinst.
  [ "$ssh_new" = 1 ] && [ -x /usr/sbin/sshd ] || return 0
  if [ -x /etc/init.d/ssh ] || [ -e /lib/systemd/system/ssh.service ]; then
    update-rc.d ssh disable >/dev/null 2>&1 || true     # SysV links S -> K; runs systemctl disable too
  fi
  if command -v systemctl >/dev/null; then
    systemctl disable --quiet ssh.service ssh.socket >/dev/null 2>&1 || true
  fi
  # Stop an sshd service that started anyway (a pre-existing policy-rc.d that allowed it): the
  # service's own sshd only (its pid file); the lab's sshds have none.
  if [ -d /run/systemd/system ]; then
    systemctl stop ssh.service ssh.socket >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/ssh ] && [ -e /run/sshd.pid ]; then
    /etc/init.d/ssh stop >/dev/null 2>&1 || true
  fi
  if [ "$runit_had_link" = 0 ] && [ -L "$runit_link" ]; then
    rm -f "$runit_link"
  fi
  echo "install-system-deps: openssh-server installed for its binary only; its ssh service is" \
       "disabled and not running (enable it yourself if you want one)" >&2
}
trap 'ssh_service_off; remove_policy' EXIT
# An interrupted install still cleans up: make the signals exit through the EXIT trap.
trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP
if [ ! -e "$policy" ]; then
  # noclobber (set -C): never overwrite one that appeared meanwhile.
  (set -C; printf '#!/bin/sh\n%s\n# Forbid starting services while the lab'"'"'s packages are installed.\nexit 101\n' \
     "$marker" >"$policy") 2>/dev/null || true
  grep -qxF "$marker" "$policy" && chmod 0755 "$policy"
fi

echo "install-system-deps: installing ${pkgs[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
)

# OpenSSH 10.0 for the lab, after the packages: it runs with their libraries.
"$here/provision-openssh.sh"
