// Reading blobs and image trees from the daemon's content store over gRPC (Content.Read), for the verbs
// that show what an image holds (sizes, platforms).
import type { ApiClient } from '../api/grpc-client.ts';

const CONTENT = 'containerd.services.content.v1.Content';

export async function readBlob(client: ApiClient, digest: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const m of client.stream<{ data: Buffer }>(CONTENT, 'Read', { digest })) parts.push(m.data);
  return Buffer.concat(parts);
}

interface Desc { mediaType: string; digest: string; size: number; platform?: { os: string; architecture: string; variant?: string } }

const isIndex = (t: string) => t.endsWith('image.index.v1+json') || t.endsWith('manifest.list.v2+json');
const isManifest = (t: string) => t.endsWith('image.manifest.v1+json') || t.endsWith('distribution.manifest.v2+json');

/** The image's size (every blob of its tree that is present) and its platforms. */
export async function imageSummary(client: ApiClient, target: Desc): Promise<{ size: number; platforms: string[] }> {
  let size = 0;
  const platforms = new Set<string>();
  const seen = new Set<string>();
  const visit = async (d: Desc, platform?: string): Promise<void> => {
    if (seen.has(d.digest)) return;
    seen.add(d.digest);
    let data: Buffer;
    if (isIndex(d.mediaType) || isManifest(d.mediaType)) {
      try { data = await readBlob(client, d.digest); } catch { return; }
      size += data.length;
      const doc = JSON.parse(data.toString('utf8')) as { manifests?: Desc[]; config?: Desc; layers?: Desc[] };
      for (const m of doc.manifests ?? []) {
        if (m.platform?.os === 'unknown') continue;
        await visit(m, m.platform ? [m.platform.os, m.platform.architecture, m.platform.variant].filter(Boolean).join('/') : undefined);
      }
      if (doc.config) {
        if (platform) platforms.add(platform);
        else {
          try {
            const cfg = JSON.parse((await readBlob(client, doc.config.digest)).toString('utf8')) as { os?: string; architecture?: string; variant?: string };
            platforms.add([cfg.os, cfg.architecture, cfg.variant].filter(Boolean).join('/'));
          } catch { /* config absent */ }
        }
        size += doc.config.size;
        for (const l of doc.layers ?? []) size += l.size;
      }
    }
  };
  await visit(target);
  return { size, platforms: [...platforms].sort() };
}
