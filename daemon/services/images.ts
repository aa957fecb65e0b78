// containerd.services.images.v1.Images; publishes /images/{create,update,delete}.
import { namespaceOf, unary } from '../../api/grpc.ts';
import { errInvalidArgument } from '../../api/errdefs.ts';
import type { Image } from '../metadata/types.ts';
import { descriptorFromProto, descriptorToProto, fieldPaths, toTimestamp } from './convert.ts';
import { registerService } from './service.ts';

// containerd 1.6 declares image events in the images service's package.
const IMAGE_EV = 'containerd.services.images.v1.';

const toProto = (i: Image) => ({
  name: i.name, labels: i.labels, target: descriptorToProto(i.target),
  createdAt: toTimestamp(i.createdAt), updatedAt: toTimestamp(i.updatedAt),
});

registerService({
  name: 'containerd.services.images.v1.Images',
  plugin: { type: 'io.containerd.grpc.v1', id: 'images' },
  create: (ctx) => ({
    Get: unary(async (req, call) => ({ image: toProto(await ctx.db.images.get(namespaceOf(call), req.name)) })),
    List: unary(async (req, call) => ({ images: (await ctx.db.images.list(namespaceOf(call), req.filters)).map(toProto) })),
    Create: unary(async (req, call) => {
      const ns = namespaceOf(call);
      if (!req.image?.name) throw errInvalidArgument('image create: image.name is required');
      const image = await ctx.db.images.create(ns, {
        name: req.image.name, labels: req.image.labels ?? {}, target: descriptorFromProto(req.image.target, `image ${req.image.name} target`),
      });
      ctx.publish(ns, '/images/create', IMAGE_EV + 'ImageCreate', { name: image.name, labels: image.labels });
      return { image: toProto(image) };
    }),
    Update: unary(async (req, call) => {
      const ns = namespaceOf(call);
      if (!req.image?.name) throw errInvalidArgument('image update: image.name is required');
      const paths = fieldPaths(req.updateMask);
      const wantsTarget = !paths || paths.includes('target');
      const image = await ctx.db.images.update(ns, {
        name: req.image.name, labels: req.image.labels ?? {},
        ...(wantsTarget ? { target: descriptorFromProto(req.image.target, `image ${req.image.name} target`) } : {}),
      }, paths);
      ctx.publish(ns, '/images/update', IMAGE_EV + 'ImageUpdate', { name: image.name, labels: image.labels });
      return { image: toProto(image) };
    }),
    Delete: unary(async (req, call) => {
      const ns = namespaceOf(call);
      await ctx.db.images.delete(ns, req.name, { sync: req.sync });
      ctx.publish(ns, '/images/delete', IMAGE_EV + 'ImageDelete', { name: req.name });
      return {};
    }),
  }),
});
