import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { LocalContentStore } from '../../content/local.ts';
import { readBlob } from '../../daemon/images/image.ts';
import { decompressStream } from '../../daemon/images/compression.ts';
import { MediaType, layerCompressionOf } from '../../daemon/images/mediatypes.ts';
import { onlyPlatform } from '../../daemon/images/platforms.ts';
import { pullImage } from '../../daemon/remotes/pull.ts';
import { pushImage } from '../../daemon/remotes/push.ts';
import { resolve } from '../../daemon/remotes/resolver.ts';
import { buildImage, buildIndex, busyboxImage, tarEntries, writeImageToStore, type TestImage } from '../helpers/image.ts';
import { recordingProxy, startRegistry } from '../helpers/registry.ts';
import { tempDir } from '../helpers/tmp.ts';

const store = (t: Parameters<typeof tempDir>[0]) => LocalContentStore.open(join(tempDir(t), 'content'));

async function pushBuilt(t: Parameters<typeof tempDir>[0], image: TestImage, ref: string, opts: { chunkSize?: number } = {}) {
  const src = await store(t);
  await writeImageToStore(src, image);
  return { src, result: await pushImage(ref, { store: src, target: image.target, ...opts }) };
}

test('push then pull a single-platform OCI image: blobs, labels, layers in order', async (t) => {
  const reg = await startRegistry(t);
  const image = await busyboxImage({ tag: 'oci' });
  const ref = `${reg.host}/berth/busybox:1`;
  const { result } = await pushBuilt(t, image, ref);
  t.is(result.name, ref);
  t.true([...result.outcomes.values()].every((o) => o === 'uploaded'));

  const dst = await store(t);
  const layers: number[] = [];
  const pulled = await pullImage(ref, { store: dst, onLayer: (l) => { layers.push(l.index); } });
  t.deepEqual(pulled.image, { name: ref, target: image.target });
  t.deepEqual(layers.sort(), [0, 1]);
  for (const [digest, data] of image.blobs) t.deepEqual(await readBlob(dst, { digest, size: data.length, mediaType: '' }), data);
  const m = image.manifests[0]!;
  t.deepEqual(pulled.manifests[0]!.layers.map((l) => l.diffId), m.layers.map((l) => l.diffId));
  const manifestLabels = (await dst.info(image.target.digest)).labels;
  t.is(manifestLabels['containerd.io/gc.ref.content.config'], m.config.descriptor.digest);
  t.is(manifestLabels['containerd.io/gc.ref.content.l.0'], m.layers[0]!.descriptor.digest);
  t.is(manifestLabels['containerd.io/gc.ref.content.l.1'], m.layers[1]!.descriptor.digest);
  t.is((await dst.info(m.layers[1]!.descriptor.digest)).labels['containerd.io/distribution.source.127.0.0.1'], 'berth/busybox');
  t.deepEqual(await dst.listStatuses(), []);

  // Pushing again finds everything there.
  const again = await pushImage(ref, { store: dst, target: image.target });
  t.is(again.outcomes.get(m.layers[0]!.descriptor.digest), 'exists');
});

test('Docker schema2 manifest list: push, resolve, pull the host platform only', async (t) => {
  const reg = await startRegistry(t);
  const amd64 = await busyboxImage({ docker: true, tag: 'amd64' });
  const arm64 = buildImage({ docker: true, layers: [await tarEntries([{ name: 'arm64', data: 'arm64\n' }])], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
  const list = buildIndex([amd64, arm64], { docker: true });
  const ref = `${reg.host}/berth/multi:docker`;
  await pushBuilt(t, list, ref);
  const resolved = await resolve(ref);
  t.deepEqual(resolved.descriptor, list.target);
  t.is(resolved.descriptor.mediaType, MediaType.DockerManifestList);

  const dst = await store(t);
  const pulled = await pullImage(ref, { store: dst });
  t.is(pulled.manifests.length, 1);
  t.is(pulled.manifests[0]!.platform.architecture, 'amd64');
  await t.throwsAsync(dst.info(arm64.manifests[0]!.descriptor.digest), { message: /not found/ });
  const indexLabels = (await dst.info(list.target.digest)).labels;
  t.is(indexLabels['containerd.io/gc.ref.content.m.0'], amd64.target.digest);
  t.is(indexLabels['containerd.io/gc.ref.content.m.1'], arm64.target.digest);
});

test('multi-platform OCI index: --platform, arm64 falling back to arm/v7, all platforms', async (t) => {
  const reg = await startRegistry(t);
  const layer = (s: string) => tarEntries([{ name: s, data: s }]);
  const amd64 = buildImage({ layers: [await layer('amd64')] });
  const armv7 = buildImage({ layers: [await layer('armv7')], platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, compression: 'none' });
  const s390x = buildImage({ layers: [await layer('s390x')], platform: { os: 'linux', architecture: 's390x' }, compression: 'zstd' });
  const index = buildIndex([amd64, armv7, s390x]);
  const ref = `${reg.host}/berth/multi:oci`;
  await pushBuilt(t, index, ref);

  const one = await pullImage(ref, { store: await store(t), platforms: [{ os: 'linux', architecture: 's390x' }] });
  t.deepEqual(one.manifests.map((m) => m.descriptor.digest), [s390x.target.digest]);
  t.is(one.manifests[0]!.layers[0]!.descriptor.mediaType, MediaType.OciLayerZstd);

  const fallback = await pullImage(ref, { store: await store(t), platforms: [{ os: 'linux', architecture: 'arm64' }] });
  t.deepEqual(fallback.manifests.map((m) => m.descriptor.digest), [armv7.target.digest]);
  t.true(onlyPlatform({ os: 'linux', architecture: 'arm64' }).match(fallback.manifests[0]!.platform));

  const all = await pullImage(ref, { store: await store(t), platforms: 'all' });
  t.deepEqual(all.manifests.map((m) => m.descriptor.digest).sort(), [amd64, armv7, s390x].map((i) => i.target.digest).sort());

  await t.throwsAsync(pullImage(ref, { store: await store(t), platforms: [{ os: 'linux', architecture: 'ppc64le' }] }), { message: /no manifest for linux\/ppc64le/ });
});

test('chunked upload and cross-repository mount', async (t) => {
  const reg = await startRegistry(t);
  const log: string[] = [];
  const host = await recordingProxy(t, reg, log);
  const image = await busyboxImage({ tag: 'chunks' });
  const ref = `${host}/berth/chunked:1`;
  const { src } = await pushBuilt(t, image, ref, { chunkSize: 256 << 10 });
  const big = image.manifests[0]!.layers[0]!.descriptor;
  t.true(big.size > 512 << 10);
  t.is(log.filter((l) => l.startsWith('PATCH ')).length, Math.ceil(big.size / (256 << 10)), 'busybox layer in 256 KiB chunks; blobs under one chunk go in one PUT');
  t.true(log.some((l) => l.startsWith('PATCH ') && l.includes(`content-range=${256 << 10}-${(512 << 10) - 1}`)));
  log.length = 0;
  const dst = await store(t);
  const pulled = await pullImage(ref, { store: dst });
  t.is(pulled.image.target.digest, image.target.digest);
  for (const [digest, data] of image.blobs) t.deepEqual(await readBlob(dst, { digest, size: data.length, mediaType: '' }), data);

  // The source store now knows the blobs live in berth/chunked, so another repository mounts them.
  const mounted = await pushImage(`${host}/other/copy:2`, { store: src, target: image.target });
  for (const l of image.manifests[0]!.layers) t.is(mounted.outcomes.get(l.descriptor.digest), 'mounted');
  t.true(log.some((l) => l === `POST /v2/other/copy/blobs/uploads/?mount=${encodeURIComponent(big.digest)}&from=berth%2Fchunked`));
  t.false(log.some((l) => l.startsWith('PATCH ') || (l.startsWith('PUT ') && l.includes('/blobs/'))));
  const copy = await pullImage(`${reg.host}/other/copy:2`, { store: await store(t) });
  t.is(copy.image.target.digest, image.target.digest);
});

test('pull by digest, and skopeo reads what berth pushed', async (t) => {
  const reg = await startRegistry(t);
  const image = await busyboxImage({ tag: 'skopeo' });
  await pushBuilt(t, image, `${reg.host}/berth/peer:v1`);
  const byDigest = `${reg.host}/berth/peer@${image.target.digest}`;
  const pulled = await pullImage(byDigest, { store: await store(t) });
  t.is(pulled.image.name, byDigest);
  const inspect = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/berth/peer:v1`], { encoding: 'utf8' }));
  t.is(inspect.Digest, image.target.digest);
  t.deepEqual(inspect.Layers, image.manifests[0]!.layers.map((l) => l.descriptor.digest));
  await t.throwsAsync(pullImage(`${reg.host}/berth/peer:missing`, { store: await store(t) }), { message: /berth\/peer:missing: not found/ });
});

test('streaming hook: each layer\'s bytes reach onLayerData while downloading, and from the store when present', async (t) => {
  const reg = await startRegistry(t);
  const image = await busyboxImage({ tag: 'stream', compression: 'zstd' });
  const ref = `${reg.host}/berth/stream:1`;
  await pushBuilt(t, image, ref);
  const dst = await store(t);
  const diffIdsSeen = async () => {
    const seen: string[] = [];
    await pullImage(ref, {
      store: dst,
      onLayerData: async (layer, data) => {
        const hash = createHash('sha256');
        for await (const chunk of decompressStream(data, layerCompressionOf(layer.descriptor.mediaType))) hash.update(chunk);
        seen[layer.index] = 'sha256:' + hash.digest('hex');
      },
    });
    return seen;
  };
  const want = image.manifests[0]!.layers.map((l) => l.diffId);
  t.deepEqual(await diffIdsSeen(), want);
  t.deepEqual(await diffIdsSeen(), want, 'second pull: layers already stored');
  await t.throwsAsync(pullImage(ref, { store: await store(t), onLayerData: async () => { throw new Error('unpack failed: disk full'); } }), { message: 'unpack failed: disk full' });
});
