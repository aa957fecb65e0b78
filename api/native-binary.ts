// Where the programs built from native/ are: native/build beside the sources or the bundle, unless the
// environment names one (BERTH_INIT, BERTH_MONITOR, BERTH_APPLY, BERTH_COMPRESS, BERTH_SYS_ADDON, BERTH_PDEATH,
// BERTH_DNS_FORWARD).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errNotFound } from './errdefs.ts';

export type NativeProgram = 'berth-init' | 'berth-monitor' | 'berth-apply' | 'berth-compress' | 'berth-sys.node' | 'berth-pdeath' | 'berth-dns-forward';

const ENV: Record<NativeProgram, string> = {
  'berth-init': 'BERTH_INIT', 'berth-monitor': 'BERTH_MONITOR', 'berth-apply': 'BERTH_APPLY', 'berth-compress': 'BERTH_COMPRESS', 'berth-sys.node': 'BERTH_SYS_ADDON',
  'berth-pdeath': 'BERTH_PDEATH', 'berth-dns-forward': 'BERTH_DNS_FORWARD',
};
const found = new Map<NativeProgram, string>();

export function nativeBinary(name: NativeProgram): string {
  const env = process.env[ENV[name]];
  if (env) return env;
  const known = found.get(name);
  if (known) return known;
  const here = dirname(fileURLToPath(import.meta.url));
  for (const rel of ['../native/build', '../../native/build']) {
    const path = join(here, rel, name);
    if (existsSync(path)) { found.set(name, path); return path; }
  }
  throw errNotFound(`${name} not found: run \`npm run build\` (it compiles native/)`);
}
