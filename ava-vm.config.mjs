// The tests that boot a QEMU guest (TCG: emulated, slow). scripts/test.sh runs them alone, after the rest, so
// they neither starve nor are starved by the other tests.
export default {
  files: ['test/vm/**/*.vmtest.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  timeout: '8m',
  concurrency: 1,
};
