// Passes ava's TAP output through and ends with a plain "N passed, N failed" line.
import { createInterface } from 'node:readline';

let passed = 0, failed = 0, skipped = 0;
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  process.stdout.write(line + '\n');
  if (/^ok \d+/.test(line)) {
    if (/# SKIP/i.test(line)) skipped++; else passed++;
  } else if (/^not ok \d+/.test(line)) {
    if (/# TODO/i.test(line)) skipped++; else failed++;
  }
});
rl.on('close', () => {
  if (skipped) process.stdout.write(`${skipped} skipped\n`);
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
});
