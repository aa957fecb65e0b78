#!/bin/sh
# Idempotent: installs every system package berth and its tests use, then the npm dependencies.
# A fresh machine has only Node, gcc and make.
set -eu
cd "$(dirname "$0")/.."

APT_PACKAGES="busybox-static attr runc crun containerd docker-registry runsc skopeo fuse3 libfuse3-dev
  libseccomp-dev libisal-dev libzstd-dev libssl-dev pkg-config iproute2 hyperfine squashfs-tools erofs-utils util-linux procps psmisc zstd openssl
  qemu-system-x86 linux-image-cloud-amd64 tiny-initramfs docker.io
  linux-source-6.1 flex bison bc libelf-dev xz-utils perl patch
  podman conmon containernetworking-plugins golang-github-containers-common"

missing=""
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing apt packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -f /var/lib/apt/periodic/berth-updated ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then
    apt-get update -qq
    mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/berth-updated
  fi
  # --no-install-recommends keeps containerd/docker-registry from pulling services we do not want running.
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  # Debian starts these services on install; berth's tests start their own instances on private sockets.
  for svc in containerd docker-registry; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
      systemctl stop "$svc" || true
      systemctl disable "$svc" >/dev/null 2>&1 || true
    fi
  done
fi

# crun 1.8 refuses every container on a hybrid cgroup host unless hugetlb is a v1 hierarchy (shared/machine.md).
# On such a host, hugetlb moves out of the cgroup2 tree into its own v1 mount, as long as no cgroup there uses it;
# berth's own cgroup code and runc work with either layout.
U=/sys/fs/cgroup/unified
if [ -f "$U/cgroup.controllers" ] && grep -qw hugetlb "$U/cgroup.controllers" && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
  if echo -hugetlb > "$U/cgroup.subtree_control" 2>/dev/null && mkdir -p /sys/fs/cgroup/hugetlb \
    && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb 2>/dev/null; then
    echo "setup: hugetlb mounted as a cgroup v1 hierarchy, so that crun works on this hybrid host"
  else
    echo "setup: could not move hugetlb to a cgroup v1 hierarchy (a cgroup uses it); crun will refuse containers here" >&2
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies"
  # `npm install` follows the committed lock; `npm ci` (npm 11) wrongly reports the lock out of sync because
  # lmdb's msgpackr-extract lists prebuilt packages for other platforms that npm leaves out of the lock.
  env -u NODE_EXTRA_CA_CERTS npm install --no-audit --no-fund --loglevel=error
fi
