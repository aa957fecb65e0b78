// Runtime classes: a name an operator or a client picks, the shim and backend that serve it, and the isolation
// it gives. Built-in classes register themselves (builtin-classes.ts); the config's [runtimes.<class>] tables add
// or replace classes. A class is usable only when its probe passed on this host: the policy never runs a
// container on a class whose probe failed, and never falls back to a weaker one.
import { execFileSync } from 'node:child_process';
import { packAny, unpackAny, type AnyMessage } from '../../api/proto.ts';
import { RUNC_OPTIONS } from '../runtime/runtime-map.ts';
import { strength, type Isolation } from './isolation.ts';

export const BERTH_SHIM = 'io.containerd.berth.v2';

export interface RuntimeClassConfig {
  name: string;
  /** The shim serving it (containerd's runtime_type). */
  runtimeType: string;
  /** containerd.runc.v1.Options fields for the shim (binaryName picks the backend). */
  options: Record<string, string | boolean | number>;
  isolation: Isolation;
  /** Globs of the spec annotations its runtime gets (CRI's shape; annotations.ts). Neither set: all of them. */
  podAnnotations?: string[];
  containerAnnotations?: string[];
  /** VMs a namespace's shim keeps booted for this class (a class served by the vm backend; runtimes/vm/pool.ts). */
  warmPool?: number;
}

export interface RuntimeClass extends RuntimeClassConfig {
  /** Why the class cannot run here; undefined when it can. */
  unusable?: string;
}

/** A built-in class: its config and how to tell whether it works on this host (an error message if not). */
export interface BuiltinClass extends RuntimeClassConfig {
  probe(): string | undefined;
}

const builtins: BuiltinClass[] = [];

export function registerBuiltinClass(c: BuiltinClass): void {
  if (builtins.some((b) => b.name === c.name)) throw new Error(`runtime class ${c.name} registered twice`);
  builtins.push(c);
}

export function builtinClasses(): readonly BuiltinClass[] {
  return builtins;
}

/** A probe that runs `binary --version` (bounded): the binary exists and answers. */
export function versionProbe(binary: string, args: string[] = ['--version']): string | undefined {
  try {
    execFileSync(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
    return undefined;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return e.code === 'ENOENT' ? `${binary} is not installed (not found on PATH)` : `${binary} ${args.join(' ')} failed: ${e.message.split('\n')[0]}`;
  }
}

/** The backend binary a runtime request runs: runc options' binaryName, or the shim's default. */
export function backendOf(runtime: string, options: AnyMessage | undefined): string {
  const o = options?.typeUrl?.endsWith(RUNC_OPTIONS) ? unpackAny<{ binaryName?: string }>(options) : {};
  if (o.binaryName) return o.binaryName.split('/').pop()!;
  return runtime === BERTH_SHIM ? 'fast' : runtime.startsWith('io.containerd.runc.') ? 'runc' : runtime;
}

/** The classes in force: built-ins probed once per daemon, then the configured ones (probed the same way when they
 * name a binary). */
export class ClassTable {
  private constructor(readonly classes: ReadonlyMap<string, RuntimeClass>, readonly defaultClass: string) {}

  static build(configured: RuntimeClassConfig[], defaultClass: string | undefined, probes: Map<string, string | undefined>): ClassTable {
    const out = new Map<string, RuntimeClass>();
    const probe = (key: string, run: () => string | undefined) => {
      if (!probes.has(key)) probes.set(key, run());
      return probes.get(key);
    };
    for (const b of builtins) {
      const { probe: run, ...config } = b;
      const unusable = probe(`builtin:${b.name}`, run);
      out.set(b.name, { ...config, ...(unusable ? { unusable } : {}) });
    }
    for (const c of configured) {
      const binary = typeof c.options.binaryName === 'string' && c.options.binaryName !== 'fast' ? c.options.binaryName : undefined;
      const builtin = out.get(c.name);
      // A configured class keeps its built-in's verdict (vm stays unusable however it is configured); its binary is
      // probed when it names another (the built-in's own was probed its way: vm is a backend, not a binary).
      const own = binary && binary !== builtin?.options.binaryName;
      const unusable = builtin?.unusable ?? (own ? probe(`binary:${binary}`, () => versionProbe(binary)) : undefined);
      out.set(c.name, { ...c, ...(unusable ? { unusable } : {}) });
    }
    const def = defaultClass ?? 'fast';
    if (!out.has(def)) throw new Error(`default_runtime ${JSON.stringify(def)} is not a runtime class (${[...out.keys()].join(', ')})`);
    // Every container naming no runtime would be refused: a config error, said at start rather than per container.
    const unusable = out.get(def)!.unusable;
    if (unusable) throw new Error(`default_runtime ${JSON.stringify(def)} cannot run on this host: ${unusable}`);
    return new ClassTable(out, def);
  }

  /** The warm pool size configured for the vm backend (one pool per shim: the classes it serves agree). */
  vmWarmPool(): number | undefined {
    return this.list().find((c) => c.warmPool !== undefined)?.warmPool;
  }

  get(name: string): RuntimeClass | undefined {
    return this.classes.get(name);
  }

  list(): RuntimeClass[] {
    return [...this.classes.values()];
  }

  /** The class a runtime request runs as: a class named by the runtime itself, else the class it was admitted as
   * (`recorded`) when it still uses that class's shim and backend (several classes may share them), else the first
   * whose shim and backend it uses. Undefined for a runtime no class describes. */
  classify(runtime: string, options: AnyMessage | undefined, recorded?: string): RuntimeClass | undefined {
    const named = this.classes.get(runtime);
    if (named) return named;
    const backend = backendOf(runtime, options);
    const serves = (c: RuntimeClass) => backendOf(c.runtimeType, packAny(RUNC_OPTIONS, c.options)) === backend;
    const was = recorded ? this.classes.get(recorded) : undefined;
    if (was && was.runtimeType === runtime && serves(was)) return was;
    return this.list().find(serves);
  }

  /** The strongest usable class at `min` isolation or above (a VM before a sandbox), or undefined. */
  strongestAtLeast(min: Isolation): RuntimeClass | undefined {
    return this.list().filter((c) => !c.unusable && strength(c.isolation) >= strength(min))
      .sort((a, b) => strength(b.isolation) - strength(a.isolation))[0];
  }

  /** The runtime name and options a container gets when it runs as `c`; the client's runc options are kept where
   * the class does not set them (root, no_pivot_root...). */
  runtimeFor(c: RuntimeClass, sent: AnyMessage | undefined): { name: string; options: AnyMessage } {
    const o = sent?.typeUrl?.endsWith(RUNC_OPTIONS) ? unpackAny<Record<string, unknown>>(sent) : {};
    // The client's backend never survives: the class's, or the shim's default.
    delete o.binaryName;
    return { name: c.runtimeType, options: packAny(RUNC_OPTIONS, { ...o, ...c.options }) };
  }
}
