// Passes the TAP output of one or more ava runs through and ends with a plain "N passed, N failed" line. A run
// that did not finish (no TAP plan, or ava exiting non-zero, as when its reporter dies on a timeout) counts as
// a failure. Each run is followed by a "# ava exit status N" line from scripts/test.sh.
import { createInterface } from 'node:readline';

let passed = 0, failed = 0, skipped = 0, plans = 0;
const statuses = [];
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  process.stdout.write(line + '\n');
  if (/^1\.\.\d+/.test(line)) plans++;
  const exit = /^# ava exit status (\d+)/.exec(line);
  if (exit) statuses.push(Number(exit[1]));
  if (/^ok \d+/.test(line)) {
    if (/# SKIP/i.test(line)) skipped++; else passed++;
  } else if (/^not ok \d+/.test(line)) {
    if (/# TODO/i.test(line)) skipped++; else failed++;
  }
});
rl.on('close', () => {
  if (statuses.length === 0 || plans !== statuses.length || statuses.some((s) => s !== 0)) {
    process.stdout.write(`# not every run finished cleanly (${plans} TAP plans, ava exit statuses ${statuses.join(', ') || 'none'})\n`);
    if (failed === 0) failed = 1;
  }
  if (skipped) process.stdout.write(`${skipped} skipped\n`);
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
});
