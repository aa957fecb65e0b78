#!/bin/sh
# berth's main job, from a fresh machine: install what is missing, build, start berthd on its defaults (unless
# it already runs), import a busybox image built from the host's busybox-static, and run a container from it
# that prints a greeting and what isolates it. berthd is left running.
set -eu
cd "$(dirname "$0")/.."
./scripts/setup.sh
npm run -s build
unset NODE_EXTRA_CA_CERTS
berth="$PWD/dist/berth"

if ! $berth version >/dev/null 2>&1; then
  mkdir -p /run/berth /var/log
  nohup node dist/berthd.mjs >>/var/log/berthd.log 2>&1 &
  echo $! > /run/berth/berthd.pid
  i=0
  until $berth version >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then echo "berthd did not start; see /var/log/berthd.log" >&2; exit 1; fi
    sleep 0.1
  done
  echo "berth: started berthd (pid $(cat /run/berth/berthd.pid)) on /run/berth/berthd.sock, logging to /var/log/berthd.log"
fi

archive=/var/lib/berth-demo/busybox-oci.tar
mkdir -p "$(dirname "$archive")"
npx tsx scripts/demo-image.ts "$archive" demo
$berth images import --base-name berth.local/busybox "$archive"

id="berth-demo-$$"
echo "berth: running container $id from berth.local/busybox:demo through berthd and containerd-shim-berth-v2"
$berth run --rm --hostname berth-demo berth.local/busybox:demo "$id" sh -c '
  echo "Hello from a berth container!"
  echo "  hostname:  $(hostname)"
  echo "  pid 1:     $(cat /proc/1/comm) (my pid: $$)"
  echo "  runtime:   io.containerd.berth.v2, fast path (plan run by berth-monitor from a sealed memfd, no runtime CLI)"
  echo "  user:      $(id)"
  echo "  caps:      $(grep CapEff /proc/self/status | tr -s "\t " " ")"
  echo "  cgroup:    $(grep memory /proc/self/cgroup)"
  echo "  rootfs:    $(grep " / " /proc/self/mounts | cut -d" " -f1-3)"'
echo "berth: berthd keeps running. Try: $berth images ls; $berth run --rm berth.local/busybox:demo x2 echo hi"
echo "berth: stop it with: kill \$(cat /run/berth/berthd.pid)"
