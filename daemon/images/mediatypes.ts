// Media types of the OCI image spec and Docker's schema2, and what each one is.
import { errNotImplemented } from '../../api/errdefs.ts';

export const MediaType = {
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OciLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OciLayerNondistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  DockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export type Compression = 'none' | 'gzip' | 'zstd';

const layerCompression = new Map<string, Compression>([
  [MediaType.OciLayer, 'none'], [MediaType.OciLayerGzip, 'gzip'], [MediaType.OciLayerZstd, 'zstd'],
  [MediaType.OciLayerNondistributable, 'none'], [MediaType.OciLayerNondistributableGzip, 'gzip'],
  [MediaType.OciLayerNondistributableZstd, 'zstd'],
  [MediaType.DockerLayer, 'none'], [MediaType.DockerLayerGzip, 'gzip'], [MediaType.DockerLayerZstd, 'zstd'],
  [MediaType.DockerForeignLayerGzip, 'gzip'],
]);

export const isIndexType = (mt: string) => mt === MediaType.OciIndex || mt === MediaType.DockerManifestList;
export const isManifestType = (mt: string) => mt === MediaType.OciManifest || mt === MediaType.DockerManifest;
export const isConfigType = (mt: string) => mt === MediaType.OciConfig || mt === MediaType.DockerConfig;
export const isLayerType = (mt: string) => layerCompression.has(mt);

/** The compression of a layer media type; not-implemented naming the type when it is no known layer. */
export function layerCompressionOf(mt: string): Compression {
  const c = layerCompression.get(mt);
  if (!c) throw errNotImplemented(`unknown layer media type ${JSON.stringify(mt)}`);
  return c;
}

/** The layer media type for a compression, in the OCI or the Docker family. */
export function layerMediaType(compression: Compression, docker = false): string {
  if (docker) return { none: MediaType.DockerLayer, gzip: MediaType.DockerLayerGzip, zstd: MediaType.DockerLayerZstd }[compression];
  return { none: MediaType.OciLayer, gzip: MediaType.OciLayerGzip, zstd: MediaType.OciLayerZstd }[compression];
}

/** The kind of blob a media type names, used for ingest refs and GC labels. */
export function blobKind(mt: string): 'index' | 'manifest' | 'config' | 'layer' | 'unknown' {
  if (isIndexType(mt)) return 'index';
  if (isManifestType(mt)) return 'manifest';
  if (isConfigType(mt)) return 'config';
  if (isLayerType(mt)) return 'layer';
  return 'unknown';
}
