// containerd.services.containers.v1.Containers; publishes /containers/{create,update,delete}.
import { namespaceOf, serverStream, unary } from '../../api/grpc.ts';
import { errInvalidArgument } from '../../api/errdefs.ts';
import type { Any, Container } from '../metadata/types.ts';
import type { NewContainer } from '../metadata/containers.ts';
import { fieldPaths, toTimestamp } from './convert.ts';
import { registerService } from './service.ts';

const EV = 'containerd.events.';

const anyOf = (a: { typeUrl?: string; value?: Uint8Array } | null | undefined): Any | undefined =>
  a && a.typeUrl ? { typeUrl: a.typeUrl, value: new Uint8Array(a.value ?? []) } : undefined;

export const containerToProto = (c: Container) => ({
  id: c.id, labels: c.labels, image: c.image,
  runtime: { name: c.runtime.name, ...(c.runtime.options ? { options: c.runtime.options } : {}) },
  ...(c.spec ? { spec: c.spec } : {}),
  snapshotter: c.snapshotter, snapshotKey: c.snapshotKey,
  createdAt: toTimestamp(c.createdAt), updatedAt: toTimestamp(c.updatedAt),
  extensions: c.extensions,
});

function fromProto(m: Record<string, any> | null | undefined): NewContainer {
  if (!m?.id) throw errInvalidArgument('container: id is required');
  const extensions: Record<string, Any> = {};
  for (const [k, v] of Object.entries((m.extensions ?? {}) as Record<string, any>)) {
    const a = anyOf(v);
    if (a) extensions[k] = a;
  }
  const options = anyOf(m.runtime?.options);
  const spec = anyOf(m.spec);
  return {
    id: m.id, labels: m.labels ?? {}, image: m.image ?? '',
    runtime: { name: m.runtime?.name ?? '', ...(options ? { options } : {}) },
    ...(spec ? { spec } : {}),
    snapshotter: m.snapshotter ?? '', snapshotKey: m.snapshotKey ?? '', extensions,
  };
}

registerService({
  name: 'containerd.services.containers.v1.Containers',
  plugin: { type: 'io.containerd.grpc.v1', id: 'containers' },
  create: (ctx) => ({
    Get: unary(async (req, call) => ({ container: containerToProto(await ctx.db.containers.get(namespaceOf(call), req.id)) })),
    List: unary(async (req, call) => ({ containers: (await ctx.db.containers.list(namespaceOf(call), req.filters)).map(containerToProto) })),
    ListStream: serverStream(async (req, call) => {
      for (const c of await ctx.db.containers.list(namespaceOf(call), req.filters)) call.write({ container: containerToProto(c) });
    }),
    Create: unary(async (req, call) => {
      const ns = namespaceOf(call);
      const c = await ctx.db.containers.create(ns, fromProto(req.container));
      ctx.publish(ns, '/containers/create', EV + 'ContainerCreate', {
        id: c.id, image: c.image, runtime: { name: c.runtime.name, ...(c.runtime.options ? { options: c.runtime.options } : {}) },
      });
      return { container: containerToProto(c) };
    }),
    Update: unary(async (req, call) => {
      const ns = namespaceOf(call);
      const c = await ctx.db.containers.update(ns, fromProto(req.container), fieldPaths(req.updateMask));
      ctx.publish(ns, '/containers/update', EV + 'ContainerUpdate', { id: c.id, image: c.image, labels: c.labels, snapshotKey: c.snapshotKey });
      return { container: containerToProto(c) };
    }),
    Delete: unary(async (req, call) => {
      const ns = namespaceOf(call);
      await ctx.db.containers.delete(ns, req.id);
      ctx.publish(ns, '/containers/delete', EV + 'ContainerDelete', { id: req.id });
      return {};
    }),
  }),
});
