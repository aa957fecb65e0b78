// containerd.services.leases.v1.Leases
import { randomBytes } from 'node:crypto';
import { namespaceOf, unary } from '../../api/grpc.ts';
import { toTimestamp } from './convert.ts';
import { registerService } from './service.ts';
import type { Lease } from '../metadata/types.ts';

const toProto = (l: Lease) => ({ id: l.id, labels: l.labels, createdAt: toTimestamp(l.createdAt) });

registerService({
  name: 'containerd.services.leases.v1.Leases',
  plugin: { type: 'io.containerd.grpc.v1', id: 'leases' },
  create: (ctx) => ({
    Create: unary(async (req, call) => {
      const id = req.id || `${Date.now()}-${randomBytes(6).toString('hex')}`;
      return { lease: toProto(await ctx.db.leases.create(namespaceOf(call), { id, labels: req.labels })) };
    }),
    Delete: unary(async (req, call) => {
      await ctx.db.leases.delete(namespaceOf(call), req.id, { sync: req.sync });
      return {};
    }),
    List: unary(async (req, call) => ({ leases: (await ctx.db.leases.list(namespaceOf(call), req.filters)).map(toProto) })),
    AddResource: unary(async (req, call) => {
      await ctx.db.leases.addResource(namespaceOf(call), req.id, { id: req.resource?.id ?? '', type: req.resource?.type ?? '' });
      return {};
    }),
    DeleteResource: unary(async (req, call) => {
      await ctx.db.leases.deleteResource(namespaceOf(call), req.id, { id: req.resource?.id ?? '', type: req.resource?.type ?? '' });
      return {};
    }),
    ListResources: unary(async (req, call) => ({ resources: await ctx.db.leases.listResources(namespaceOf(call), req.id) })),
  }),
});
