// containerd.services.diff.v1.Diff: Apply unpacks a layer blob from the content store onto mounts (containerd's
// ctr unpacks client-side through this); Diff is not implemented yet.
import { namespaceOf, unary } from '../../api/grpc.ts';
import { errInvalidArgument, errNotImplemented } from '../../api/errdefs.ts';
import type { Mount } from '../../api/mount.ts';
import { blobStream } from '../images/image.ts';
import { decompressStream } from '../images/compression.ts';
import { layerCompressionOf } from '../images/mediatypes.ts';
import { applyToMounts } from '../unpack/apply-mounts.ts';
import { leaseOf, registerService } from './service.ts';

registerService({
  name: 'containerd.services.diff.v1.Diff',
  plugin: { type: 'io.containerd.grpc.v1', id: 'diff' },
  create: (ctx) => ({
    Apply: unary(async (req, call) => {
      const ns = namespaceOf(call);
      if (!req.diff?.digest) throw errInvalidArgument('apply: the diff descriptor is required');
      const mounts: Mount[] = (req.mounts ?? []).map((m: any) => ({ type: m.type, source: m.source, target: m.target, options: m.options }));
      if (!mounts.length) throw errInvalidArgument('apply: mounts are required');
      const lease = leaseOf(call);
      const content = ctx.db.content(ns, lease ? { lease } : {});
      await content.info(req.diff.digest);
      const result = await applyToMounts(mounts, () => decompressStream(blobStream(content, req.diff.digest), layerCompressionOf(req.diff.mediaType)), ctx.scratch);
      return { applied: { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: result.diffId, size: result.size, annotations: {} } };
    }),
    Diff: unary(() => { throw errNotImplemented('computing a diff between mounts is not supported yet'); }),
  }),
});
