// One build step: bundles each executable with esbuild (one file each, so a CLI starts by loading a single
// module) and compiles the C in native/. Type checking is separate (npm run typecheck) so a build stays fast.
import { build } from 'esbuild';
import { existsSync, mkdirSync, chmodSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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
      banner: {
        js: "#!/usr/bin/env node\nimport { createRequire as __berthCreateRequire } from 'node:module';\nconst require = __berthCreateRequire(import.meta.url);",
      },
    }).then(() => chmodSync(outfile, 0o755)));
  }
  await Promise.all(jobs);
  writeCliLauncher();
}

// dist/berth: a launcher that drops NODE_EXTRA_CA_CERTS (loading extra CA certificates costs ~50 ms at every
// start, and the CLI speaks only to a local socket), then runs the bundle. (A V8 startup snapshot of the CLI was
// tried: its 6 MB blob deserializes slower on this machine than the 360 KB bundle compiles.)
function writeCliLauncher() {
  const launcher = join(root, 'dist', 'berth');
  writeFileSync(launcher, `#!/bin/sh\nunset NODE_EXTRA_CA_CERTS\nexec ${process.execPath} ${join(root, 'dist', 'berth.mjs')} "$@"\n`);
  chmodSync(launcher, 0o755);
}

main().catch((err) => { console.error(err.message ?? err); process.exit(1); });
