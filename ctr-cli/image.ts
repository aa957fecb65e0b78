// What `run` needs from an image in the daemon: the manifest for this host's platform, the config, and the
// chain ID of its top layer (the name of the unpacked snapshot to build on).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, codeOf, errFailedPrecondition, errNotFound } from '../api/errdefs.ts';
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

/** What an image's target digest resolves to on this host (its config and top layer's chain ID) never changes:
 * content is named by its digest. Kept under /run, it spares `run` reading the manifest and config from the
 * daemon each time (two calls). */
const RESOLVED_DIR = '/run/berth/images';

/** Where a digest's resolution is kept; none for a digest that is not a plain sha256 (it could name a path). */
const resolutionFile = (digest: string) => (/^sha256:[0-9a-f]{64}$/.test(digest) ? join(RESOLVED_DIR, `${digest.replace(':', '-')}-${hostArch}.json`) : undefined);

function cachedResolution(file: string): Omit<RunnableImage, 'name'> | undefined {
  try { return JSON.parse(readFileSync(file, 'utf8')); } catch { return undefined; }
}

function cacheResolution(file: string, resolved: Omit<RunnableImage, 'name'>): void {
  try {
    mkdirSync(RESOLVED_DIR, { recursive: true, mode: 0o700 });
    writeFileSync(`${file}.${process.pid}`, JSON.stringify(resolved), { mode: 0o600 });
    renameSync(`${file}.${process.pid}`, file);
  } catch { /* not ours to write (another user's daemon): resolve each time */ }
}

export async function runnableImage(client: ApiClient, name: string): Promise<RunnableImage> {
  const { image } = await client.call('containerd.services.images.v1.Images', 'Get', { name }).catch((err) => {
    if (codeOf(err) !== ErrorCode.NotFound) throw err;
    throw errNotFound(`image ${JSON.stringify(name)}: not found (pull or import it first): ${(err as Error).message}`);
  });
  const file = resolutionFile(image.target.digest);
  const cached = file && cachedResolution(file);
  if (cached) return { name, ...cached };
  const resolved = await resolveImage(client, name, image.target);
  if (file) cacheResolution(file, { config: resolved.config, chainId: resolved.chainId });
  return resolved;
}

async function resolveImage(client: ApiClient, name: string, target: Desc): Promise<RunnableImage> {
  let desc: Desc = target;
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
