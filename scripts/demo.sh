#!/bin/sh
# berth's main job, from a fresh machine: install what is missing, build, then run a container from a busybox
# bundle built from the host's busybox-static, with berth's own OCI runtime (berth-runc).
set -eu
cd "$(dirname "$0")/.."
./scripts/setup.sh
npm run -s build
unset NODE_EXTRA_CA_CERTS

bundle=/var/lib/berth-demo/bundle
id="berth-demo-$$"
npx tsx scripts/demo-bundle.ts "$bundle" berth-runc
echo "berth: running container $id from $bundle with berth-runc"
node dist/berth-runc.mjs run --bundle "$bundle" "$id"
