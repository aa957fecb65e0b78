// containerd.services.introspection.v1.Introspection: the plugins berthd runs, in containerd's terms, so
// `ctr plugins ls` reads the same way against either daemon.
import { unary } from '../../api/grpc.ts';
import { fieldsAdaptor, parseFilters } from '../../api/filters.ts';
import { GrpcStatus } from '../../api/errdefs.ts';
import { registerService, type PluginInfo } from './service.ts';

const platform = { os: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : process.arch, variant: '' };

function toProto(p: PluginInfo) {
  return {
    type: p.type, id: p.id, requires: p.requires ?? [], exports: p.exports ?? {}, capabilities: p.capabilities ?? [],
    platforms: p.type === 'io.containerd.snapshotter.v1' || p.type === 'io.containerd.runtime.v2' ? [platform] : [],
    ...(p.initError ? { initErr: { code: GrpcStatus.UNKNOWN, message: p.initError } } : {}),
  };
}

registerService({
  name: 'containerd.services.introspection.v1.Introspection',
  plugin: { type: 'io.containerd.grpc.v1', id: 'introspection' },
  create: (ctx) => ({
    Plugins: unary((req) => {
      const filter = parseFilters(req.filters);
      return { plugins: ctx.plugins.filter((p) => filter.match(fieldsAdaptor({ type: p.type, id: p.id }))).map(toProto) };
    }),
    Server: unary(() => ({ uuid: ctx.uuid })),
  }),
});
