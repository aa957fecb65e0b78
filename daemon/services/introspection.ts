// containerd.services.introspection.v1.Introspection: the plugins berthd runs, in containerd's terms, so
// `ctr plugins ls` reads the same way against either daemon. The runtime classes of the policy in force are listed
// too (type berth.runtime-class.v1): their isolation and backend as exports, and an unusable one as a skipped
// plugin whose error says why (containerd marks a plugin this host cannot run with "skip plugin").
import { unary } from '../../api/grpc.ts';
import { fieldsAdaptor, parseFilters } from '../../api/filters.ts';
import { GrpcStatus } from '../../api/errdefs.ts';
import type { ClassTable } from '../policy/classes.ts';
import { registerService, type PluginInfo } from './service.ts';

export const RUNTIME_CLASS_PLUGIN = 'berth.runtime-class.v1';
/** What containerd's clients look for in an init error to call a plugin skipped rather than failed. */
export const SKIP_PLUGIN = 'skip plugin';

const platform = { os: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : process.arch, variant: '' };

function toProto(p: PluginInfo) {
  return {
    type: p.type, id: p.id, requires: p.requires ?? [], exports: p.exports ?? {}, capabilities: p.capabilities ?? [],
    platforms: p.type === 'io.containerd.snapshotter.v1' || p.type === 'io.containerd.runtime.v2' || p.type === RUNTIME_CLASS_PLUGIN ? [platform] : [],
    ...(p.initError ? { initErr: { code: GrpcStatus.UNKNOWN, message: p.initError } } : {}),
  };
}

function classPlugins(classes: ClassTable): PluginInfo[] {
  return classes.list().map((c) => ({
    type: RUNTIME_CLASS_PLUGIN, id: c.name, requires: ['io.containerd.runtime.v2'],
    exports: {
      isolation: c.isolation, runtime_type: c.runtimeType, backend: String(c.options.binaryName ?? 'fast'),
      ...(c.name === classes.defaultClass ? { default: 'true' } : {}),
    },
    ...(c.unusable ? { initError: `${c.unusable}: ${SKIP_PLUGIN}` } : {}),
  }));
}

registerService({
  name: 'containerd.services.introspection.v1.Introspection',
  plugin: { type: 'io.containerd.grpc.v1', id: 'introspection' },
  create: (ctx) => ({
    Plugins: unary((req) => {
      const filter = parseFilters(req.filters);
      const all = [...ctx.plugins, ...classPlugins(ctx.policy.current.classes)];
      return { plugins: all.filter((p) => filter.match(fieldsAdaptor({ type: p.type, id: p.id }))).map(toProto) };
    }),
    Server: unary(() => ({ uuid: ctx.uuid })),
  }),
});
