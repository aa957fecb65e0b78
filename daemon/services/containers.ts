// containerd.services.containers.v1.Containers; publishes /containers/{create,update,delete}.
import { namespaceOf, serverStream, unary } from '../../api/grpc.ts';
import { errFailedPrecondition, errInvalidArgument } from '../../api/errdefs.ts';
import type { Any, Container } from '../metadata/types.ts';
import type { NewContainer } from '../metadata/containers.ts';
import { fieldPaths, toTimestamp } from './convert.ts';
import { registerService, type DaemonContext } from './service.ts';
import { updateLabels } from '../../content/labels.ts';
import { admitContainer, ISOLATION_LABEL } from '../policy/enforce.ts';

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

/** An update is checked on the container it would make; its runtime cannot change (containerd's rule), so one the
 * policy would upgrade is refused. The policy's label and forced spec go in with it. */
async function admitUpdate(ctx: DaemonContext, ns: string, next: NewContainer, paths: string[] | undefined): Promise<{ container: NewContainer; paths: string[] | undefined }> {
  const current = await ctx.db.containers.get(ns, next.id);
  const touches = (f: string) => !paths?.length || paths.includes(f);
  const candidate: NewContainer = {
    ...current,
    labels: paths?.length && !paths.some((p) => p === 'labels' || p.startsWith('labels.')) ? current.labels
      : updateLabels(current.labels, next.labels ?? {}, paths?.filter((p) => p === 'labels' || p.startsWith('labels.'))),
    image: touches('image') ? next.image : current.image,
    ...(touches('spec') ? (next.spec ? { spec: next.spec } : {}) : (current.spec ? { spec: current.spec } : {})),
  };
  if (touches('spec') && !next.spec) delete candidate.spec;
  const admitted = await admitContainer(ctx, ns, candidate, 'containers.update');
  if (admitted.runtime.name !== current.runtime.name || !sameAny(admitted.runtime.options, current.runtime.options)) {
    throw errFailedPrecondition(`policy: container ${next.id}: ${admitted.labels?.[ISOLATION_LABEL]} needs another runtime, and a container's runtime cannot change: create it again`);
  }
  const container = { ...next, labels: { ...next.labels, [ISOLATION_LABEL]: admitted.labels?.[ISOLATION_LABEL] ?? '' }, ...(admitted.spec ? { spec: admitted.spec } : {}) };
  if (!paths?.length) return { container, paths };
  const more = [`labels.${ISOLATION_LABEL}`, ...(admitted.spec !== candidate.spec ? ['spec'] : [])];
  return { container, paths: [...new Set([...paths, ...more])] };
}

const sameAny = (a: Any | undefined, b: Any | undefined) => (a?.typeUrl ?? '') === (b?.typeUrl ?? '') && Buffer.from(a?.value ?? []).equals(Buffer.from(b?.value ?? []));

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
      const c = await ctx.db.containers.create(ns, await admitContainer(ctx, ns, fromProto(req.container), 'containers.create'));
      ctx.publish(ns, '/containers/create', EV + 'ContainerCreate', {
        id: c.id, image: c.image, runtime: { name: c.runtime.name, ...(c.runtime.options ? { options: c.runtime.options } : {}) },
      });
      return { container: containerToProto(c) };
    }),
    Update: unary(async (req, call) => {
      const ns = namespaceOf(call);
      const { container, paths } = await admitUpdate(ctx, ns, fromProto(req.container), fieldPaths(req.updateMask));
      const c = await ctx.db.containers.update(ns, container, paths);
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
