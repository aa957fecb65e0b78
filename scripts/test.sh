#!/bin/sh
# The whole test suite: set up (idempotent), build, type-check, run every ava test on the real kernel.
# Ends with one plain "N passed, N failed" line.
set -eu
cd "$(dirname "$0")/.."
./scripts/setup.sh
npm run -s build
npm run -s typecheck
unset NODE_EXTRA_CA_CERTS
set +e
# ava's exit status travels down the pipe (sh has no pipefail): a crashed or timed-out run never reads as green.
# The QEMU guest tests run alone after the rest (only for a full run: arguments select tests of the main run).
{
  npx ava --tap "$@"; echo "# ava exit status $?"
  if [ $# -eq 0 ]; then npx ava --config ava-vm.config.mjs --tap; echo "# ava exit status $?"; fi
} | node scripts/tap-summary.mjs
status=$?
exit $status
