// containerd.services.namespaces.v1.Namespaces: needs no namespace header; publishes /namespaces/* events.
import { unary } from '../../api/grpc.ts';
import { errInvalidArgument, isNotFound } from '../../api/errdefs.ts';
import { fieldPaths } from './convert.ts';
import { registerService } from './service.ts';

const EV = 'containerd.events.';

registerService({
  name: 'containerd.services.namespaces.v1.Namespaces',
  plugin: { type: 'io.containerd.grpc.v1', id: 'namespaces' },
  create: (ctx) => ({
    // As containerd: a namespace nothing was created in yet has no labels, and asking is no error (dockerd reads
    // the labels of `moby` and `plugins.moby` when it connects, before it created anything there).
    Get: unary(async (req) => {
      try {
        return { namespace: await ctx.db.namespaces.get(req.name) };
      } catch (err) {
        if (isNotFound(err)) return { namespace: { name: req.name, labels: {} } };
        throw err;
      }
    }),
    List: unary(async (req) => ({ namespaces: await ctx.db.namespaces.list(req.filter ? [req.filter] : []) })),
    Create: unary(async (req) => {
      const ns = await ctx.db.namespaces.create(req.namespace?.name ?? '', req.namespace?.labels ?? {});
      ctx.publish(ns.name, '/namespaces/create', EV + 'NamespaceCreate', { name: ns.name, labels: ns.labels });
      return { namespace: ns };
    }),
    Update: unary(async (req) => {
      if (!req.namespace?.name) throw errInvalidArgument('namespace name is required');
      const ns = await ctx.db.namespaces.update(req.namespace, fieldPaths(req.updateMask));
      ctx.publish(ns.name, '/namespaces/update', EV + 'NamespaceUpdate', { name: ns.name, labels: ns.labels });
      return { namespace: ns };
    }),
    Delete: unary(async (req) => {
      await ctx.db.namespaces.delete(req.name);
      ctx.publish(req.name, '/namespaces/delete', EV + 'NamespaceDelete', { name: req.name });
      return {};
    }),
  }),
});
