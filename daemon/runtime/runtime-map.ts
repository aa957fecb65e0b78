// Which shim serves a runtime name, as an operator configures it in containerd 1.6's shape:
//
//   [plugins."io.containerd.grpc.v1.cri".containerd.runtimes."io.containerd.runc.v2"]
//     runtime_type = "io.containerd.berth.v2"      # the runtime whose shim serves it
//     runtime_path = "/opt/berth/shim"             # optional: that shim's binary, absolute
//     [plugins."io.containerd.grpc.v1.cri".containerd.runtimes."io.containerd.runc.v2".options]
//       BinaryName = "fast"                        # containerd.runc.v1.Options, Go or proto field names
//
// berth has no CRI: the table's key is the runtime name a container asks for (Docker always asks for
// io.containerd.runc.v2). Options given here win, field by field, over the runc options the client sent:
// Docker sends BinaryName "runc", which `BinaryName = "fast"` turns into berth's fast path.
import { errInvalidArgument } from '../../api/errdefs.ts';
import { packAny, unpackAny, type AnyMessage } from '../../api/proto.ts';

export const RUNC_OPTIONS = 'containerd.runc.v1.Options';

export interface RuntimeMapping {
  /** The runtime whose shim binary serves containers asking for the mapped name. */
  runtimeType: string;
  /** An absolute path to the shim binary, instead of resolving runtimeType. */
  runtimePath?: string;
  /** containerd.runc.v1.Options fields (camelCase, as protobufjs has them). */
  options?: Record<string, string | boolean | number>;
}

/** The shim that serves a container and the runtime options it gets. */
export interface ResolvedRuntime {
  shim: { runtime: string; path?: string };
  options?: AnyMessage;
}

type Table = Record<string, unknown>;

// containerd.runc.v1.Options: TOML key (Go field name or proto name) → field and its type.
const FIELDS: Record<string, { field: string; kind: 'string' | 'boolean' | 'number' }> = {};
for (const [proto, kind] of [
  ['no_pivot_root', 'boolean'], ['no_new_keyring', 'boolean'], ['shim_cgroup', 'string'], ['io_uid', 'number'], ['io_gid', 'number'],
  ['binary_name', 'string'], ['root', 'string'], ['criu_path', 'string'], ['systemd_cgroup', 'boolean'], ['criu_image_path', 'string'], ['criu_work_path', 'string'],
] as const) {
  const camel = proto.replace(/_(\w)/g, (_, c: string) => c.toUpperCase());
  const go = camel[0]!.toUpperCase() + camel.slice(1);
  for (const key of [proto, camel, go]) FIELDS[key] = { field: camel, kind };
}

const table = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The runtime mappings of a parsed config file (none when the section is absent). */
export function parseRuntimeMappings(doc: Table): Record<string, RuntimeMapping> {
  const base = 'plugins."io.containerd.grpc.v1.cri".containerd.runtimes';
  let node: unknown = doc;
  for (const key of ['plugins', 'io.containerd.grpc.v1.cri', 'containerd', 'runtimes']) {
    if (!table(node)) return {};
    node = node[key];
  }
  if (node === undefined) return {};
  if (!table(node)) throw errInvalidArgument(`config: [${base}] must be a table`);
  const out: Record<string, RuntimeMapping> = {};
  for (const [name, entry] of Object.entries(node)) {
    const where = `${base}."${name}"`;
    if (!table(entry)) throw errInvalidArgument(`config: [${where}] must be a table`);
    const type = entry.runtime_type;
    if (typeof type !== 'string' || !type) throw errInvalidArgument(`config: ${where}.runtime_type must name the runtime whose shim serves ${name} (e.g. "io.containerd.berth.v2")`);
    const mapping: RuntimeMapping = { runtimeType: type };
    if (entry.runtime_path !== undefined) {
      if (typeof entry.runtime_path !== 'string' || !entry.runtime_path.startsWith('/')) throw errInvalidArgument(`config: ${where}.runtime_path must be an absolute path, got ${JSON.stringify(entry.runtime_path)}`);
      mapping.runtimePath = entry.runtime_path;
    }
    if (entry.options !== undefined) mapping.options = parseRuncOptions(entry.options, where);
    const unknown = Object.keys(entry).filter((k) => !['runtime_type', 'runtime_path', 'options'].includes(k));
    if (unknown.length) throw errInvalidArgument(`config: ${where}: berth does not know ${unknown.join(', ')} (it reads runtime_type, runtime_path, options)`);
    out[name] = mapping;
  }
  return out;
}

/** A TOML table of containerd.runc.v1.Options (Go or proto field names), as protobufjs fields. */
export function parseRuncOptions(options: unknown, where: string): Record<string, string | boolean | number> {
  if (!table(options)) throw errInvalidArgument(`config: [${where}.options] must be a table`);
  const out: Record<string, string | boolean | number> = {};
  for (const [key, value] of Object.entries(options)) {
    const f = FIELDS[key];
    if (!f) throw errInvalidArgument(`config: ${where}.options.${key} is not a ${RUNC_OPTIONS} field (BinaryName, Root, NoPivotRoot, SystemdCgroup, ...)`);
    if (typeof value !== f.kind) throw errInvalidArgument(`config: ${where}.options.${key} must be a ${f.kind}, got ${JSON.stringify(value)}`);
    out[f.field] = value as string | boolean | number;
  }
  return out;
}

/** The shim and options for a container asking for `runtime` with `options`: as asked, or as mapped. */
export function resolveRuntime(mappings: Record<string, RuntimeMapping>, runtime: string, options: AnyMessage | undefined): ResolvedRuntime {
  const m = mappings[runtime];
  if (!m) return { shim: { runtime }, ...(options ? { options } : {}) };
  const shim = { runtime: m.runtimeType, ...(m.runtimePath ? { path: m.runtimePath } : {}) };
  if (!m.options) return { shim, ...(options ? { options } : {}) };
  // The client's runc options, overridden field by field; options of another type give way to the configured.
  const sent = options?.typeUrl && options.typeUrl.endsWith(RUNC_OPTIONS) ? unpackAny(options) : {};
  return { shim, options: packAny(RUNC_OPTIONS, { ...sent, ...m.options }) };
}
