// OCI bundles for tests and benchmarks: a busybox rootfs plus berth-runc's default config.json (shaped like
// `runc spec`'s, non-terminal), with per-test overrides.
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeBusyboxRootfs } from './rootfs.ts';
import { defaultSpec as runtimeDefaultSpec } from '../../runtimes/native/cli/spec-default.ts';

export type Json = any;

/** berth-runc's `spec` default (runc's), running `args` without a terminal, hostname "berth", no ambient caps. */
export function defaultSpec(args: string[] = ['/bin/true']): Json {
  const spec: Json = runtimeDefaultSpec();
  spec.process.args = args;
  spec.process.terminal = false;
  spec.hostname = 'berth';
  delete spec.process.capabilities.ambient;
  return spec;
}

export interface Bundle { dir: string; rootfs: string; spec: Json }

/**
 * Creates `dir` with rootfs/ (busybox) and config.json. `edit` may change the spec in place before it is
 * written; pass `rawConfig` to write config.json verbatim (for invalid-input tests).
 */
export function makeBundle(dir: string, opts: { args?: string[]; edit?: (spec: Json) => void; rawConfig?: string } = {}): Bundle {
  mkdirSync(dir, { recursive: true });
  const rootfs = makeBusyboxRootfs(join(dir, 'rootfs'));
  const spec = defaultSpec(opts.args);
  opts.edit?.(spec);
  writeFileSync(join(dir, 'config.json'), opts.rawConfig ?? JSON.stringify(spec, null, 2));
  return { dir, rootfs, spec };
}

/** Rewrites config.json of an existing bundle. */
export function writeSpec(bundle: Bundle): void {
  writeFileSync(join(bundle.dir, 'config.json'), JSON.stringify(bundle.spec, null, 2));
}
