// Deterministic test images: layer tars from the host's busybox-static or from listed entries, compressed
// (none, gzip, zstd via the zstd CLI), configs with matching diff_ids, OCI or Docker schema2 manifests, and
// (multi-platform) indexes or manifest lists. Built images can be written to a ContentStore (then pushed with
// daemon/remotes/push.ts) or to an OCI image-layout directory.
//
//   const image = await busyboxImage();                       // 2 gzip layers, OCI, linux/amd64
//   const multi = buildIndex([await busyboxImage(), buildImage({ layers: [...], platform: { os: 'linux', architecture: 'arm64' } })]);
//   await writeImageToStore(store, multi);
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import type { ContentStore, Descriptor, Platform } from '../../content/types.ts';
import { EPOCH, makeBusyboxRootfs } from './rootfs.ts';

export type Compression = 'none' | 'gzip' | 'zstd';

export interface TarEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  data?: Buffer | string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Target of a symlink or hardlink. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes, written as SCHILY.xattr PAX records. */
  xattrs?: Record<string, string>;
  /** Further PAX records, written as given (e.g. libarchive's LIBARCHIVE.xattr.*). */
  pax?: Record<string, string>;
  mtime?: Date;
}

export interface Blob {
  descriptor: Descriptor;
  data: Buffer;
}

export interface TestLayer extends Blob {
  /** Digest of the uncompressed tar. */
  diffId: string;
}

export interface TestManifest extends Blob {
  platform: Platform;
  config: Blob;
  layers: TestLayer[];
}

export interface TestImage {
  /** What a tag points at: the manifest, or the index of a multi-platform image. */
  target: Descriptor;
  /** Every blob of the image (index, manifests, configs, layers) by digest. */
  blobs: Map<string, Buffer>;
  manifests: TestManifest[];
}

const sha256 = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');

export function blobOf(mediaType: string, data: Buffer | string, extra: Partial<Descriptor> = {}): Blob {
  const buf = Buffer.from(data);
  return { descriptor: { mediaType, digest: sha256(buf), size: buf.length, ...extra }, data: buf };
}

/** A tar of the given entries, in order, owned by root unless said otherwise, mtime EPOCH. */
export async function tarEntries(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const out: Buffer[] = [];
  pack.on('data', (c) => out.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => { pack.on('end', resolve); pack.on('error', reject); });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const data = type === 'file' ? Buffer.from(e.data ?? '') : undefined;
    const header = {
      name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
      uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: e.mtime ?? EPOCH, linkname: e.linkname, size: data?.length ?? 0,
      devmajor: e.devmajor, devminor: e.devminor,
      ...(e.xattrs || e.pax ? { pax: { ...Object.fromEntries(Object.entries(e.xattrs ?? {}).map(([k, v]) => [`SCHILY.xattr.${k}`, v])), ...e.pax } } : {}),
    };
    await new Promise<void>((resolve, reject) => pack.entry(header, data ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(out);
}

/** A tar of a directory tree: names sorted, root-owned, mtime EPOCH, so equal trees give equal bytes. */
export async function tarDirectory(dir: string): Promise<Buffer> {
  const entries: TarEntry[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, path));
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) { entries.push({ name: path + '/', type: 'directory', mode }); walk(path); }
      else if (st.isSymbolicLink()) entries.push({ name: path, type: 'symlink', linkname: readlinkSync(join(dir, path)), mode });
      else if (st.isFile()) entries.push({ name: path, data: readFileSync(join(dir, path)), mode });
    }
  };
  walk('');
  return tarEntries(entries);
}

export function compress(data: Buffer, compression: Compression): Buffer {
  if (compression === 'gzip') return gzipSync(data, { level: 6 });
  if (compression === 'zstd') return execFileSync('zstd', ['-q', '-c', '-3'], { input: data, maxBuffer: 1 << 30 });
  return data;
}

const mediaTypes = {
  oci: { index: 'application/vnd.oci.image.index.v1+json', manifest: 'application/vnd.oci.image.manifest.v1+json', config: 'application/vnd.oci.image.config.v1+json',
    layer: { none: 'application/vnd.oci.image.layer.v1.tar', gzip: 'application/vnd.oci.image.layer.v1.tar+gzip', zstd: 'application/vnd.oci.image.layer.v1.tar+zstd' } },
  docker: { index: 'application/vnd.docker.distribution.manifest.list.v2+json', manifest: 'application/vnd.docker.distribution.manifest.v2+json', config: 'application/vnd.docker.container.image.v1+json',
    layer: { none: 'application/vnd.docker.image.rootfs.diff.tar', gzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip', zstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd' } },
};

export interface BuildOptions {
  /** Uncompressed layer tars, bottom first. */
  layers: Buffer[];
  compression?: Compression;
  /** Docker schema2 media types instead of OCI. */
  docker?: boolean;
  platform?: Platform;
  /** Merged into the config's "config" (Env, Cmd, ...). */
  config?: Record<string, unknown>;
  /** Overrides the computed diff_ids (for hostile tests). */
  diffIds?: string[];
}

/** One single-platform image. */
export function buildImage(opts: BuildOptions): TestImage {
  const types = opts.docker ? mediaTypes.docker : mediaTypes.oci;
  const compression = opts.compression ?? 'gzip';
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const layers: TestLayer[] = opts.layers.map((tarData) => ({ ...blobOf(types.layer[compression], compress(tarData, compression)), diffId: sha256(tarData) }));
  const config = blobOf(types.config, JSON.stringify({
    created: EPOCH.toISOString(), architecture: platform.architecture, os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'], ...opts.config },
    rootfs: { type: 'layers', diff_ids: opts.diffIds ?? layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created: EPOCH.toISOString(), created_by: 'berth test helper' })),
  }));
  const manifest = blobOf(types.manifest, JSON.stringify({
    schemaVersion: 2, mediaType: types.manifest,
    config: config.descriptor, layers: layers.map((l) => l.descriptor),
  }), { platform });
  const blobs = new Map<string, Buffer>([[manifest.descriptor.digest, manifest.data], [config.descriptor.digest, config.data]]);
  for (const l of layers) blobs.set(l.descriptor.digest, l.data);
  const { platform: _, ...target } = manifest.descriptor;
  return { target, blobs, manifests: [{ ...manifest, platform, config, layers }] };
}

/** A multi-platform image: an OCI index (or Docker manifest list) over the manifests of `images`. */
export function buildIndex(images: TestImage[], opts: { docker?: boolean } = {}): TestImage {
  const types = opts.docker ? mediaTypes.docker : mediaTypes.oci;
  const manifests = images.flatMap((i) => i.manifests);
  const index = blobOf(types.index, JSON.stringify({
    schemaVersion: 2, mediaType: types.index,
    manifests: manifests.map((m) => ({ ...m.descriptor, platform: m.platform })),
  }));
  const blobs = new Map<string, Buffer>([[index.descriptor.digest, index.data]]);
  for (const i of images) for (const [d, b] of i.blobs) blobs.set(d, b);
  return { target: index.descriptor, blobs, manifests };
}

let busyboxTar: Buffer | undefined;
/** The uncompressed tar of test/helpers/rootfs.ts's busybox rootfs (built once per process). */
export async function busyboxLayerTar(): Promise<Buffer> {
  if (!busyboxTar) {
    const dir = mkdtempSync(join(tmpdir(), 'berth-busybox-layer-'));
    try { busyboxTar = await tarDirectory(makeBusyboxRootfs(dir)); } finally { rmSync(dir, { recursive: true, force: true }); }
  }
  return busyboxTar;
}

/** Busybox plus a small second layer (/etc/berth-release with `tag`): a runnable two-layer image. */
export async function busyboxImage(opts: Omit<BuildOptions, 'layers'> & { tag?: string } = {}): Promise<TestImage> {
  const extra = await tarEntries([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/berth-release', data: `berth test image ${opts.tag ?? ''}\n` },
  ]);
  return buildImage({ ...opts, layers: [await busyboxLayerTar(), extra] });
}

/** Commits every blob of `image` into a content store (already present ones are skipped). */
export async function writeImageToStore(store: ContentStore, image: TestImage): Promise<void> {
  for (const [digest, data] of image.blobs) {
    try { await store.info(digest); continue; } catch { /* not there yet */ }
    const w = await store.writer({ ref: `test-${digest}`, expected: { digest, size: data.length } });
    try { await w.write(data); await w.commit(data.length, digest); } finally { await w.close().catch(() => {}); }
  }
}

/** Writes an OCI image-layout directory (oci-layout, index.json, blobs/sha256/...) holding `image` as `refName`. */
export function writeOciLayout(dir: string, image: TestImage, refName = 'latest'): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  for (const [digest, data] of image.blobs) writeFileSync(join(dir, 'blobs', 'sha256', digest.slice(7)), data);
  writeFileSync(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2, mediaType: mediaTypes.oci.index,
    manifests: [{ ...image.target, annotations: { 'org.opencontainers.image.ref.name': refName } }],
  }));
}
