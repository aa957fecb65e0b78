import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { LocalContentStore } from '../../content/local.ts';
import type { ContentStore } from '../../content/types.ts';
import { exportDockerArchive, exportOciArchive } from '../../daemon/images/export.ts';
import { readBlob, resolveManifests } from '../../daemon/images/image.ts';
import { importArchive } from '../../daemon/images/import.ts';
import { MediaType } from '../../daemon/images/mediatypes.ts';
import { allPlatforms, onlyPlatform } from '../../daemon/images/platforms.ts';
import { pullImage } from '../../daemon/remotes/pull.ts';
import { buildImage, buildIndex, busyboxImage, tarEntries, writeImageToStore, type TestImage } from '../helpers/image.ts';
import { startRegistry } from '../helpers/registry.ts';
import { tempDir } from '../helpers/tmp.ts';

const newStore = (t: ExecutionContext) => LocalContentStore.open(join(tempDir(t), 'content'));

async function toFile(path: string, write: (out: NodeJS.WritableStream) => Promise<void>) {
  const out = createWriteStream(path);
  await write(out as never);
}

async function digests(store: ContentStore): Promise<string[]> {
  const all: string[] = [];
  await store.walk((i) => { all.push(i.digest); });
  return all.sort();
}

async function multiPlatform(): Promise<TestImage> {
  const arm = buildImage({ layers: [await tarEntries([{ name: 'arm', data: 'arm64' }])], platform: { os: 'linux', architecture: 'arm64' }, compression: 'zstd' });
  return buildIndex([await busyboxImage({ tag: 'archive' }), arm]);
}

test('OCI archive: export, skopeo reads it, import round-trips every blob with GC labels', async (t) => {
  const dir = tempDir(t);
  const image = await multiPlatform();
  const src = await newStore(t);
  await writeImageToStore(src, image);
  const name = 'example.com/berth/multi:1.0';
  await toFile(join(dir, 'oci.tar'), (out) => exportOciArchive(src, [{ name, target: image.target }], out as never));

  const inspect = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${join(dir, 'oci.tar')}:1.0`], { encoding: 'utf8' }));
  t.is(inspect.mediaType, MediaType.OciIndex);

  const dst = await newStore(t);
  const images = await importArchive(dst, createReadStream(join(dir, 'oci.tar')));
  t.deepEqual(images, [{ name, target: image.target }]);
  t.deepEqual(await digests(dst), [...image.blobs.keys()].sort());
  t.is((await dst.info(image.target.digest)).labels['containerd.io/gc.ref.content.m.1'], image.manifests[1]!.descriptor.digest);
  const resolved = await resolveManifests(dst, image.target, allPlatforms);
  t.is(resolved.length, 2);
  t.deepEqual(await digests(dst).then((d) => d.length), image.blobs.size);
});

test('OCI archive of one platform re-imports with the index entries it lacks', async (t) => {
  const dir = tempDir(t);
  const image = await multiPlatform();
  const src = await newStore(t);
  await writeImageToStore(src, image);
  await toFile(join(dir, 'amd64.tar'), (out) => exportOciArchive(src, [{ name: 'berth/x:amd64', target: image.target }], out as never, { platforms: onlyPlatform({ os: 'linux', architecture: 'amd64' }) }));
  const dst = await newStore(t);
  const [record] = await importArchive(dst, createReadStream(join(dir, 'amd64.tar')));
  t.is(record!.name, 'docker.io/berth/x:amd64');
  t.is((await digests(dst)).length, image.blobs.size - 3);
});

test('docker save archive: export (uncompressed layers), skopeo reads it, import as Docker schema2', async (t) => {
  const dir = tempDir(t);
  const image = await busyboxImage({ tag: 'docker-save' });
  const src = await newStore(t);
  await writeImageToStore(src, image);
  await toFile(join(dir, 'docker.tar'), (out) => exportDockerArchive(src, [{ name: 'busybox:berth', target: image.target }], out as never));
  const listing = execFileSync('tar', ['tf', join(dir, 'docker.tar')], { encoding: 'utf8' });
  t.regex(listing, /^manifest\.json$/m);
  t.regex(listing, /^repositories$/m);
  const m = image.manifests[0]!;
  const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${join(dir, 'docker.tar')}`], { encoding: 'utf8' }));
  t.deepEqual(inspect.Layers, m.layers.map((l) => l.diffId));
  t.deepEqual(inspect.RepoTags, []);

  const dst = await newStore(t);
  const [record] = await importArchive(dst, createReadStream(join(dir, 'docker.tar')));
  t.is(record!.name, 'docker.io/library/busybox:berth');
  t.is(record!.target.mediaType, MediaType.DockerManifest);
  const [resolved] = await resolveManifests(dst, record!.target, allPlatforms);
  t.deepEqual(resolved!.layers.map((l) => l.descriptor.digest), m.layers.map((l) => l.diffId));
  t.true(resolved!.layers.every((l) => l.descriptor.mediaType === MediaType.DockerLayer));
  t.deepEqual(await readBlob(dst, m.config.descriptor), m.config.data);
});

test('interop with skopeo: its oci-archive pushed to the registry pulls with berth; its docker-archive imports', async (t) => {
  const reg = await startRegistry(t);
  const dir = tempDir(t);
  const image = await busyboxImage({ tag: 'skopeo-copy' });
  const src = await newStore(t);
  await writeImageToStore(src, image);
  await toFile(join(dir, 'oci.tar'), (out) => exportOciArchive(src, [{ name: 'berth/img:v1', target: image.target }], out as never));
  execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci-archive:${join(dir, 'oci.tar')}:v1`, `docker://${reg.host}/skopeo/img:v1`]);
  const pulled = await pullImage(`${reg.host}/skopeo/img:v1`, { store: await newStore(t) });
  t.is(pulled.image.target.digest, image.target.digest);

  execFileSync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/skopeo/img:v1`, `docker-archive:${join(dir, 'skopeo-docker.tar')}:skopeo/img:v1`]);
  const dst = await newStore(t);
  const [record] = await importArchive(dst, createReadStream(join(dir, 'skopeo-docker.tar')));
  t.is(record!.name, 'docker.io/skopeo/img:v1');
  const [resolved] = await resolveManifests(dst, record!.target, allPlatforms);
  t.deepEqual(resolved!.layers.map((l) => l.diffId), image.manifests[0]!.layers.map((l) => l.diffId));
});

test('bad archives are refused naming the problem, and leave nothing in the store', async (t) => {
  const layer = await tarEntries([{ name: 'f', data: 'f' }]);
  const tarOf = async (files: Record<string, string | Buffer>) => tarEntries(Object.entries(files).map(([name, data]) => ({ name, data })));
  const config = JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: ['sha256:' + '0'.repeat(64)] } });
  const image = buildImage({ layers: [layer] });
  const blobFiles = Object.fromEntries([...image.blobs].map(([d, b]) => [`blobs/sha256/${d.slice(7)}`, b]));
  const index = JSON.stringify({ schemaVersion: 2, manifests: [image.target] });
  const cases: [Buffer, RegExp][] = [
    [Buffer.from('this is not a tar archive at all, just words. '.repeat(20)), /not a readable tar archive/],
    [await tarOf({ 'hello.txt': 'hi' }), /neither index.json \(OCI layout\) nor manifest.json \(docker save\)/],
    [await tarOf({ 'manifest.json': '{oops' }), /manifest.json is not valid JSON/],
    [await tarOf({ 'manifest.json': JSON.stringify([{ Config: 'c.json', Layers: ['l/layer.tar'] }]), 'c.json': config }), /layer "l\/layer.tar" is not in the archive/],
    [await tarOf({ 'manifest.json': JSON.stringify([{ Config: 'c.json', Layers: ['l/layer.tar'] }]), 'c.json': config, 'l/layer.tar': layer }), /has digest sha256:[0-9a-f]+ but the config's diff_id 0 is sha256:0000/],
    [await tarOf({ 'manifest.json': JSON.stringify([{ Config: 'c.json', Layers: [] }]), 'c.json': config }), /0 layers but the config lists 1 diff_ids/],
    [await tarOf({ ...blobFiles, [`blobs/sha256/${image.target.digest.slice(7)}`]: 'tampered', 'index.json': index }), /holds content with digest/],
    [await tarOf({ [`blobs/sha256/${image.target.digest.slice(7)}`]: image.blobs.get(image.target.digest)!, 'index.json': index }), /needs sha256:[0-9a-f]+, which is not in the archive/],
    [await tarOf({ ...blobFiles, 'index.json': index, 'oci-layout': '{"imageLayoutVersion":"9"}' }), /unsupported imageLayoutVersion "9"/],
  ];
  for (const [data, message] of cases) {
    const store = await newStore(t);
    await t.throwsAsync(importArchive(store, Readable.from([data])), { message });
    t.deepEqual(await digests(store), [], String(message));
    t.deepEqual(await store.listStatuses(), []);
  }
});
