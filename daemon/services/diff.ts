// containerd.services.diff.v1.Diff: Apply unpacks a layer blob from the content store onto mounts (containerd's
// ctr unpacks client-side through this); Diff writes the layer that turns the left mounts into the right ones
// into the content store (gzip, zstd or plain tar), labelled with its uncompressed digest, as containerd's walking
// differ does.
import { namespaceOf, unary } from '../../api/grpc.ts';
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { errInvalidArgument, isAlreadyExists } from '../../api/errdefs.ts';
import type { Mount } from '../../api/mount.ts';
import { compressStream } from '../images/compression.ts';
import { blobStream } from '../images/image.ts';
import { layerCompressionOf, type Compression } from '../images/mediatypes.ts';
import { applyToMounts } from '../unpack/apply-mounts.ts';
import { applyingLayer } from '../unpack/apply-layer.ts';
import { diffMounts } from '../unpack/diff-mounts.ts';
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
      const compression = layerCompressionOf(req.diff.mediaType);
      const result = await applyingLayer(req.diff.digest, compression, () => applyToMounts(mounts, () => blobStream(content, req.diff.digest), compression, ctx.scratch));
      return { applied: { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: result.diffId, size: result.size, annotations: {} } };
    }),
    Diff: unary(async (req, call) => {
      const ns = namespaceOf(call);
      const toMounts = (ms: any[] | undefined): Mount[] => (ms ?? []).map((m: any) => ({ type: m.type, source: m.source, target: m.target, options: m.options ?? [] }));
      const [left, right] = [toMounts(req.left), toMounts(req.right)];
      if (!left.length || !right.length) throw errInvalidArgument('diff: left and right mounts are required');
      const mediaType: string = req.mediaType || 'application/vnd.oci.image.layer.v1.tar+gzip';
      let compression: Compression;
      try { compression = layerCompressionOf(mediaType); } catch { throw errInvalidArgument(`diff: media type ${mediaType} is not a layer type`); }
      const lease = leaseOf(call);
      const content = ctx.db.content(ns, lease ? { lease } : {});
      const writer = await content.writer({ ref: req.ref || `diff-${randomBytes(8).toString('hex')}` });
      try {
        const uncompressed = createHash('sha256');
        const tarStream = new PassThrough();
        const compressed = compressStream(tarStream, compression);
        tarStream.on('data', (d: Buffer) => uncompressed.update(d));
        let size = 0;
        const written = (async () => { for await (const chunk of compressed) { size += chunk.length; await writer.write(chunk as Buffer); } })();
        // A differ that fails ends the tar stream with its error, so the writing side stops too.
        const walked = diffMounts(left, right, ctx.scratch, tarStream).catch((err) => { tarStream.destroy(err); throw err; });
        await Promise.all([walked, written]);
        const digest = writer.digest();
        const labels = { ...(req.labels ?? {}), 'containerd.io/uncompressed': 'sha256:' + uncompressed.digest('hex') };
        await writer.commit(size, digest, { labels }).catch(async (err) => {
          if (!isAlreadyExists(err)) throw err;
          await content.update({ digest, labels }, Object.keys(labels).map((k) => `labels.${k}`));
        });
        return { diff: { mediaType, digest, size, annotations: {} } };
      } finally {
        await writer.close().catch(() => undefined);
      }
    }),
  }),
});
