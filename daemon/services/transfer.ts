// berth.services.transfer.v1.Transfer: images in and out of berthd. Pull resolves, fetches with verification,
// records and unpacks; Import does the same from an archive; Push sends an image to a registry; Export
// streams an archive. Progress streams to the client. Everything written is held by a lease that expires on its own, so a
// pull that is cancelled or dies with the daemon leaves resumable ingests and nothing else behind.
import { randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { bidiStream, namespaceOf, serverStream } from '../../api/grpc.ts';
import { importArchive } from '../images/import.ts';
import { exportDockerArchive, exportOciArchive } from '../images/export.ts';
import { pushImage } from '../remotes/push.ts';
import { resolveManifests } from '../images/image.ts';
import { hostPlatform, onlyPlatform } from '../images/platforms.ts';
import { errInvalidArgument, isAlreadyExists } from '../../api/errdefs.ts';
import type { Platform } from '../../content/types.ts';
import { pullImage, type PulledLayer } from '../remotes/pull.ts';
import type { FetchProgress } from '../remotes/fetcher.ts';
import type { Image } from '../metadata/types.ts';
import { LayerStager, unpackManifest, type UnpackOptions } from '../unpack/unpack.ts';
import { descriptorToProto, toTimestamp } from './convert.ts';
import { registerService, type DaemonContext } from './service.ts';

const LEASE_TTL_MS = 60 * 60 * 1000;
const PROGRESS_INTERVAL_MS = 100;

const imageToProto = (i: Image) => ({
  name: i.name, labels: i.labels, target: descriptorToProto(i.target),
  createdAt: toTimestamp(i.createdAt), updatedAt: toTimestamp(i.updatedAt),
});

function platformsOf(req: Record<string, any>): 'all' | Platform[] | undefined {
  if (req.allPlatforms) return 'all';
  const list = (req.platforms ?? []) as { os: string; architecture: string; variant: string }[];
  if (list.length === 0) return undefined;
  return list.map((p) => {
    if (!p.os || !p.architecture) throw errInvalidArgument(`platform ${JSON.stringify(p)}: os and architecture are required`);
    return { os: p.os, architecture: p.architecture, ...(p.variant ? { variant: p.variant } : {}) };
  });
}

/** Creates the image record, or points the existing one at the new target (a re-pull of a moved tag). */
async function recordImage(ctx: DaemonContext, ns: string, name: string, target: Image['target'], labels: Record<string, string>): Promise<Image> {
  try {
    const image = await ctx.db.images.create(ns, { name, target, labels });
    ctx.publish(ns, '/images/create', 'containerd.services.images.v1.ImageCreate', { name, labels: image.labels });
    return image;
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    const paths = ['target', ...Object.keys(labels).map((k) => `labels.${k}`)];
    const image = await ctx.db.images.update(ns, { name, target, labels }, paths);
    ctx.publish(ns, '/images/update', 'containerd.services.images.v1.ImageUpdate', { name, labels: image.labels });
    return image;
  }
}

function unpackOptions(ctx: DaemonContext, ns: string, lease: string, snapshotterName: string, write: (m: object) => void): UnpackOptions {
  const snapshotter = snapshotterName || ctx.defaultSnapshotter;
  return {
    content: ctx.db.content(ns, { lease }), snapshotter: ctx.db.snapshotter(ns, snapshotter, { lease }), snapshotterName: snapshotter,
    scratch: ctx.scratch, stageInParallel: snapshotter === 'overlayfs',
    onLayer: (layer, status) => write({ stage: 'unpack', digest: layer.digest, mediaType: layer.mediaType, status, total: layer.size }),
  };
}

/** Unpacks the host platform's image below `target` into the request's snapshotter (or the default). */
async function unpack(ctx: DaemonContext, ns: string, target: Image['target'], o: UnpackOptions): Promise<void> {
  const [manifest] = await resolveManifests(o.content, target, onlyPlatform(hostPlatform()));
  const stats = ctx.stats.transfer;
  const onLayer: UnpackOptions['onLayer'] = (layer, status) => {
    if (status === 'unpacked') stats.unpackBytes += layer.size;
    o.onLayer?.(layer, status);
  };
  await stats.timed(stats.unpackSeconds, () => unpackManifest(manifest!, { ...o, onLayer }));
}

function expiringLease(ctx: DaemonContext, ns: string, what: string) {
  return ctx.db.leases.create(ns, {
    id: `${what}-${Date.now()}-${randomBytes(4).toString('hex')}`,
    labels: { 'containerd.io/gc.expire': new Date(Date.now() + LEASE_TTL_MS).toISOString() },
  });
}

registerService({
  name: 'berth.services.transfer.v1.Transfer',
  plugin: { type: 'io.containerd.grpc.v1', id: 'berth-transfer' },
  create: (ctx) => ({
    Pull: serverStream((req, call) => ctx.stats.transfer.timed(ctx.stats.transfer.pullSeconds, async () => {
      const ns = namespaceOf(call);
      if (!req.ref) throw errInvalidArgument('pull: a reference is required');
      const abort = new AbortController();
      call.on('cancelled', () => abort.abort(new Error('pull cancelled by the client')));
      const lease = await expiringLease(ctx, ns, 'pull');
      let stager: LayerStager | undefined;
      try {
        const lastSent = new Map<string, { at: number; status: string }>();
        const onProgress = (p: FetchProgress) => {
          const prev = lastSent.get(p.digest);
          const now = Date.now();
          if (prev && prev.status === p.status && now - prev.at < PROGRESS_INTERVAL_MS) return;
          lastSent.set(p.digest, { at: now, status: p.status });
          call.write({ stage: 'layer', digest: p.digest, mediaType: p.mediaType, status: p.status, offset: p.offset, total: p.total });
        };
        call.write({ stage: 'resolve', status: 'resolving' });
        const credentials = req.username ? () => ({ username: req.username, password: req.password }) : undefined;
        const platforms = platformsOf(req);
        const unpacking = req.skipUnpack ? undefined : unpackOptions(ctx, ns, lease.id, req.snapshotter, (m) => call.write(m));
        // Into an overlay snapshotter, layers are applied while they download (a pull of the host platform only,
        // so every layer belongs to the image that is unpacked).
        stager = unpacking?.stageInParallel && !platforms ? new LayerStager(unpacking) : undefined;
        const staging = stager;
        const onLayerData = staging && ((layer: PulledLayer, data: Readable) => staging.stage(layer, data));
        const result = await pullImage(req.ref, {
          store: ctx.db.content(ns, { lease: lease.id }), onProgress, signal: abort.signal, ...(onLayerData ? { onLayerData } : {}),
          onFetched: (bytes) => { ctx.stats.transfer.pullBytes += bytes; },
          ...(platforms ? { platforms } : {}),
          ...(req.plainHttp ? { plainHttp: true } : {}),
          ...(req.insecureHosts?.length ? { insecureHosts: req.insecureHosts } : {}),
          ...(credentials ? { credentials } : {}),
          ...(req.maxConcurrentDownloads ? { concurrency: req.maxConcurrentDownloads } : {}),
        });
        const image = await recordImage(ctx, ns, result.image.name, result.image.target, req.labels ?? {});
        if (unpacking) await unpack(ctx, ns, image.target, { ...unpacking, ...(staging ? { stager: staging } : {}) });
        call.write({ stage: 'done', status: 'done', image: imageToProto(image) });
      } finally {
        stager?.discard();
        await ctx.db.leases.delete(ns, lease.id).catch((err) => ctx.log.warn({ err, lease: lease.id }, 'pull lease not released'));
      }
    })),
    Push: serverStream(async (req, call) => {
      const ns = namespaceOf(call);
      const image = await ctx.db.images.get(ns, req.name);
      const credentials = req.username ? () => ({ username: req.username, password: req.password }) : undefined;
      const result = await pushImage(req.ref || req.name, {
        store: ctx.db.content(ns), target: image.target,
        ...(req.plainHttp ? { plainHttp: true } : {}),
        ...(req.insecureHosts?.length ? { insecureHosts: req.insecureHosts } : {}),
        ...(credentials ? { credentials } : {}),
      });
      for (const [digest, outcome] of result.outcomes) call.write({ stage: 'push', digest, status: String(outcome) });
      call.write({ stage: 'done', status: 'done', image: imageToProto({ ...image, name: result.name }) });
    }),
    Export: serverStream(async (req, call) => {
      const ns = namespaceOf(call);
      if (!req.names?.length) throw errInvalidArgument('export: name at least one image');
      const images = [];
      for (const name of req.names) images.push(await ctx.db.images.get(ns, name));
      const out = new PassThrough();
      const writing = (req.format === 'docker' ? exportDockerArchive : exportOciArchive)(ctx.db.content(ns), images, out);
      writing.then(() => out.end(), (err) => out.destroy(err));
      for await (const chunk of out) {
        if (!call.write({ data: chunk })) await new Promise((resolve) => call.once('drain', resolve));
      }
      await writing;
    }),
    Import: bidiStream(async (call) => {
      const ns = namespaceOf(call);
      const input = new PassThrough();
      let first: Record<string, any> | undefined;
      const gotFirst = new Promise<void>((resolve, reject) => {
        call.on('data', (m: Record<string, any>) => {
          if (!first) { first = m; resolve(); }
          if (m.data?.length && !input.write(m.data)) { call.pause(); input.once('drain', () => call.resume()); }
        });
        call.on('end', () => { input.end(); resolve(); });
        call.on('cancelled', () => { const err = new Error('import cancelled by the client'); input.destroy(err); reject(err); });
      });
      await gotFirst;
      const lease = await expiringLease(ctx, ns, 'import');
      try {
        const images = await importArchive(ctx.db.content(ns, { lease: lease.id }), input, first?.baseName ? { baseName: first.baseName } : {});
        for (const record of images) {
          const image = await recordImage(ctx, ns, record.name, record.target, record.labels ?? {});
          if (!first?.skipUnpack) await unpack(ctx, ns, image.target, unpackOptions(ctx, ns, lease.id, first?.snapshotter ?? '', (m) => call.write(m)));
          call.write({ stage: 'done', status: 'done', image: imageToProto(image) });
        }
      } finally {
        await ctx.db.leases.delete(ns, lease.id).catch((err) => ctx.log.warn({ err, lease: lease.id }, 'import lease not released'));
      }
    }),
  }),
});
