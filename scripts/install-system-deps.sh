#!/usr/bin/env bash
# Install the Debian packages the real-kernel lab and the browser test need.
# Runs only as root and only installs what is missing; otherwise it says why
# and exits 0, so `make test` still runs (those tests then skip with a reason,
# except under CI=true, where they must run).
set -euo pipefail

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
echo "install-system-deps: installing ${pkgs[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
# Debian's package starts an sshd service on install; kalab runs its own sshd
# inside namespaces only, so the system one is not needed.  (Left as Debian set it.)
