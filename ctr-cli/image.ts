// What `run` needs from an image in the daemon: the manifest for this host's platform, the config, and the
// chain ID of its top layer (the name of the unpacked snapshot to build on).
import { createHash } from 'node:crypto';
import { errFailedPrecondition, errNotFound } from '../api/errdefs.ts';
import type { ApiClient } from '../api/grpc-client.ts';
import { readBlob } from './remote-content.ts';
import type { ImageConfig } from './spec.ts';

interface Desc { mediaType: string; digest: string; size: number; platform?: { os: string; architecture: string; variant?: string } }

const hostArch = process.arch === 'x64' ? 'amd64' : process.arch;

export interface RunnableImage {
  name: string;
  config: ImageConfig;
  /** Chain ID of the top layer: the committed snapshot a container's rootfs is prepared from. */
  chainId: string;
}

export function chainIdOf(diffIds: string[]): string {
  let chain = '';
  for (const d of diffIds) chain = chain ? 'sha256:' + createHash('sha256').update(`${chain} ${d}`).digest('hex') : d;
  return chain;
}

export async function runnableImage(client: ApiClient, name: string): Promise<RunnableImage> {
  const { image } = await client.call('containerd.services.images.v1.Images', 'Get', { name }).catch((err) => {
    throw errNotFound(`image ${JSON.stringify(name)}: not found (pull or import it first): ${(err as Error).message}`);
  });
  let desc: Desc = image.target;
  for (let depth = 0; depth < 4; depth++) {
    const doc = JSON.parse((await readBlob(client, desc.digest)).toString('utf8'));
    if (doc.manifests) {
      const match = (doc.manifests as Desc[]).find((m) => m.platform?.os === 'linux' && m.platform.architecture === hostArch);
      if (!match) throw errNotFound(`image ${name} has no manifest for linux/${hostArch}`);
      desc = match;
      continue;
    }
    const config = JSON.parse((await readBlob(client, doc.config.digest)).toString('utf8'));
    const diffIds: string[] = config.rootfs?.diff_ids ?? [];
    if (!diffIds.length) throw errFailedPrecondition(`image ${name} has no layers`);
    return { name, config: config.config ?? {}, chainId: chainIdOf(diffIds) };
  }
  throw errFailedPrecondition(`image ${name}: index nested too deep`);
}
