// Opens the snapshotters the config names, each under <root>/io.containerd.snapshotter.v1.<name>, through
// the snapshotter registry. One that fails to open is reported by Introspection with its error (as a
// containerd plugin that failed to initialize) and the daemon goes on without it.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { openSnapshotter } from '../snapshotters/registry.ts';
import type { Snapshotter } from '../snapshotters/types.ts';
import type { DaemonConfig } from './config.ts';
import type { PluginInfo } from './services/service.ts';
import '../snapshotters/index.ts';

export async function openSnapshotters(config: DaemonConfig, log: Logger, plugins: PluginInfo[]): Promise<Record<string, Snapshotter>> {
  const out: Record<string, Snapshotter> = {};
  for (const name of config.snapshotters) {
    const root = join(config.root, `io.containerd.snapshotter.v1.${name}`);
    try {
      out[name] = await openSnapshotter(name, root);
      plugins.push({ type: 'io.containerd.snapshotter.v1', id: name, exports: { root } });
    } catch (err) {
      log.warn({ err, snapshotter: name }, 'snapshotter not available');
      plugins.push({ type: 'io.containerd.snapshotter.v1', id: name, initError: (err as Error).message });
    }
  }
  return out;
}
