// One build step: bundles each executable with esbuild (one file each, so a CLI starts by loading a single
// module) and compiles the C in native/. Type checking is separate (npm run typecheck) so a build stays fast.
import { build } from 'esbuild';
import { existsSync, mkdirSync, chmodSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// name in package.json "bin" -> entry module. An entry that does not exist yet is skipped.
export const executables = {
  'berth-runc': 'runtimes/native/cli/main.ts',
  'berthd': 'daemon/main.ts',
  'berth': 'ctr-cli/main.ts',
  'containerd-shim-berth-v2': 'shim/main.ts',
};

// Native addons cannot be bundled; they load from node_modules at run time.
const external = ['lmdb', 'ffi-rs', 'msgpackr-extract', 'node-gyp-build-optional-packages'];

async function main() {
  if (existsSync(join(root, 'native', 'Makefile'))) {
    execFileSync('make', ['-s', '-C', join(root, 'native')], { stdio: 'inherit' });
  }
  mkdirSync(join(root, 'dist'), { recursive: true });
  // api/proto.ts loads dist/proto.json, the parsed .proto files, beside the bundles.
  rmSync(join(root, 'dist', 'proto'), { recursive: true, force: true });
  const protoJson = execFileSync(process.execPath, ['--import', 'tsx', '-e',
    `import('./api/proto.ts').then((p) => process.stdout.write(JSON.stringify(p.parseProtos().toJSON())))`],
  { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
  writeFileSync(join(root, 'dist', 'proto.json'), protoJson);
  // The vm sandbox's initramfs (the guest agent and the kernel modules it loads), rebuilt only when stale.
  if (existsSync(join(root, 'native', 'build', 'berth-agent'))) {
    execFileSync(process.execPath, ['--import', 'tsx', join(root, 'runtimes', 'vm', 'initramfs.ts')], { cwd: root, stdio: 'inherit' });
  }
  // berth-runc --version names the commit it was built from, when the source is a git checkout.
  let commit = '';
  try { commit = execFileSync('git', ['-C', root, 'rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { /* not a checkout */ }
  const jobs = [];
  for (const [name, entry] of Object.entries(executables)) {
    if (!existsSync(join(root, entry))) continue;
    const outfile = join(root, 'dist', `${name}.mjs`);
    jobs.push(build({
      entryPoints: [join(root, entry)],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external,
      sourcemap: 'linked',
      logLevel: 'warning',
      define: { BERTH_COMMIT: JSON.stringify(commit) },
      banner: {
        js: "#!/usr/bin/env node\nimport { createRequire as __berthCreateRequire } from 'node:module';\nconst require = __berthCreateRequire(import.meta.url);",
      },
    }).then(() => chmodSync(outfile, 0o755)));
  }
  await Promise.all(jobs);
  await buildCliSnapshot();
}

// The berth CLI also ships as a V8 startup snapshot (dist/berth.blob) behind a small launcher (dist/berth):
// a run deserializes a warmed heap (protos parsed, codecs generated) instead of compiling and initialising the
// bundle. Measured interleaved: ~10 ms faster for a command that calls the daemon, a little slower for --help.
async function buildCliSnapshot() {
  const entry = join(root, 'ctr-cli', 'snapshot-entry.ts');
  if (!existsSync(entry)) return;
  const cjs = join(root, 'dist', 'berth-snapshot.cjs');
  const blob = join(root, 'dist', 'berth.blob');
  await build({
    entryPoints: [entry], outfile: cjs, bundle: true, platform: 'node', format: 'cjs', target: 'node20', external, logLevel: 'warning',
    // import.meta.url names the bundle, so files beside it (proto.json) are found as from dist/berth.mjs.
    define: { 'import.meta.url': JSON.stringify(pathToFileURL(cjs).href) },
  });
  execFileSync(process.execPath, ['--snapshot-blob', blob, '--build-snapshot', cjs], { cwd: join(root, 'dist'), stdio: ['ignore', 'ignore', 'pipe'] });
  const launcher = join(root, 'dist', 'berth');
  writeFileSync(launcher, `#!/bin/sh\n# berth from its V8 startup snapshot (built by scripts/build.mjs; dist/berth.mjs is the same CLI without it).\nunset NODE_EXTRA_CA_CERTS\nexec ${process.execPath} --snapshot-blob ${blob} -- "$@"\n`);
  chmodSync(launcher, 0o755);
}

main().catch((err) => { console.error(err.message ?? err); process.exit(1); });
