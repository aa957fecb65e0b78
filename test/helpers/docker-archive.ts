// A `docker save` archive of the busybox test image, for `docker load` (Docker 20.10 loads only this format,
// not OCI layouts): manifest.json naming the config and the uncompressed layer tars, tagged `tag`.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { busyboxLayerTar, tarEntries } from './image.ts';

const hex = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

export async function writeBusyboxDockerArchive(path: string, tag = 'busybox:berth'): Promise<void> {
  const layer = await busyboxLayerTar();
  const layerId = hex(layer);
  const config = JSON.stringify({
    architecture: 'amd64', os: 'linux', created: '2020-01-01T00:00:00Z',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${layerId}`] },
    history: [{ created: '2020-01-01T00:00:00Z', created_by: 'berth test image: busybox-static' }],
  });
  const configName = `${hex(config)}.json`;
  const archive = await tarEntries([
    { name: `${layerId}/`, type: 'directory' },
    { name: `${layerId}/layer.tar`, data: layer },
    { name: configName, data: config },
    { name: 'manifest.json', data: JSON.stringify([{ Config: configName, RepoTags: [tag], Layers: [`${layerId}/layer.tar`] }]) },
  ]);
  writeFileSync(path, archive);
}
