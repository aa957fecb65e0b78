// containerd.services.snapshots.v1.Snapshots: every request names its snapshotter; the namespaced view from
// the metadata DB does the bookkeeping (and lease attachment from the containerd-lease header).
import { namespaceOf, serverStream, unary, type Metadata } from '../../api/grpc.ts';
import { errInvalidArgument } from '../../api/errdefs.ts';
import type { Mount } from '../../api/mount.ts';
import type { SnapshotInfo, Snapshotter } from '../../snapshotters/types.ts';
import { batches, fieldPaths, toTimestamp } from './convert.ts';
import { leaseOf, registerService, type DaemonContext } from './service.ts';

const EV = 'containerd.events.';

const kinds = { view: 'VIEW', active: 'ACTIVE', committed: 'COMMITTED' } as const;

export const infoToProto = (i: SnapshotInfo) => ({
  name: i.name, parent: i.parent ?? '', kind: kinds[i.kind], labels: i.labels,
  createdAt: toTimestamp(i.created), updatedAt: toTimestamp(i.updated),
});

export const mountToProto = (m: Mount) => ({ type: m.type, source: m.source, target: m.target ?? '', options: m.options });

function snapshotter(ctx: DaemonContext, call: { metadata: Metadata }, name: string): Snapshotter {
  if (!name) throw errInvalidArgument('snapshotter name is required');
  const lease = leaseOf(call);
  return ctx.db.snapshotter(namespaceOf(call), name, lease ? { lease } : {});
}

registerService({
  name: 'containerd.services.snapshots.v1.Snapshots',
  plugin: { type: 'io.containerd.grpc.v1', id: 'snapshots' },
  create: (ctx) => ({
    Prepare: unary(async (req, call) => {
      const mounts = await snapshotter(ctx, call, req.snapshotter).prepare(req.key, req.parent || undefined, { labels: req.labels ?? {} });
      ctx.publish(namespaceOf(call), '/snapshot/prepare', EV + 'SnapshotPrepare', { key: req.key, parent: req.parent });
      return { mounts: mounts.map(mountToProto) };
    }),
    View: unary(async (req, call) => {
      const mounts = await snapshotter(ctx, call, req.snapshotter).view(req.key, req.parent || undefined, { labels: req.labels ?? {} });
      return { mounts: mounts.map(mountToProto) };
    }),
    Mounts: unary(async (req, call) => ({ mounts: (await snapshotter(ctx, call, req.snapshotter).mounts(req.key)).map(mountToProto) })),
    Commit: unary(async (req, call) => {
      await snapshotter(ctx, call, req.snapshotter).commit(req.name, req.key, { labels: req.labels ?? {} });
      ctx.publish(namespaceOf(call), '/snapshot/commit', EV + 'SnapshotCommit', { key: req.key, name: req.name });
      return {};
    }),
    Remove: unary(async (req, call) => {
      await snapshotter(ctx, call, req.snapshotter).remove(req.key);
      ctx.publish(namespaceOf(call), '/snapshot/remove', EV + 'SnapshotRemove', { key: req.key });
      return {};
    }),
    Stat: unary(async (req, call) => ({ info: infoToProto(await snapshotter(ctx, call, req.snapshotter).stat(req.key)) })),
    Update: unary(async (req, call) => {
      if (!req.info?.name) throw errInvalidArgument('snapshot update: info.name is required');
      const info = await snapshotter(ctx, call, req.snapshotter).update({ name: req.info.name, labels: req.info.labels ?? {} }, fieldPaths(req.updateMask));
      return { info: infoToProto(info) };
    }),
    List: serverStream(async (req, call) => {
      const infos: SnapshotInfo[] = [];
      await snapshotter(ctx, call, req.snapshotter).walk((i) => { infos.push(i); }, req.filters);
      for (const batch of batches(infos)) call.write({ info: batch.map(infoToProto) });
    }),
    Usage: unary(async (req, call) => snapshotter(ctx, call, req.snapshotter).usage(req.key)),
    Cleanup: unary(async (req, call) => {
      await snapshotter(ctx, call, req.snapshotter).cleanup();
      return {};
    }),
  }),
});
