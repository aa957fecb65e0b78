// Passes ava's TAP output through and ends with a plain "N passed, N failed" line. A run that did not finish
// (no TAP plan, or ava exiting non-zero, as when its reporter dies on a timeout) counts as a failure.
import { createInterface } from 'node:readline';

let passed = 0, failed = 0, skipped = 0, planned = false, avaStatus = -1;
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  process.stdout.write(line + '\n');
  if (/^1\.\.\d+/.test(line)) planned = true;
  const exit = /^# ava exit status (\d+)/.exec(line);
  if (exit) avaStatus = Number(exit[1]);
  if (/^ok \d+/.test(line)) {
    if (/# SKIP/i.test(line)) skipped++; else passed++;
  } else if (/^not ok \d+/.test(line)) {
    if (/# TODO/i.test(line)) skipped++; else failed++;
  }
});
rl.on('close', () => {
  if (!planned || avaStatus !== 0) {
    process.stdout.write(`# the run did not finish cleanly (${planned ? 'plan seen' : 'no TAP plan'}, ava exit status ${avaStatus}): counted as one failure\n`);
    if (failed === 0) failed = 1;
  }
  if (skipped) process.stdout.write(`${skipped} skipped\n`);
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
});
