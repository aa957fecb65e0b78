// Snapshotters by name: each implementation registers a factory when imported (snapshotters/index.ts
// imports them all); the daemon opens them by the names in its config.
import { errNotFound } from '../api/errdefs.ts';
import type { Snapshotter } from './types.ts';

export type SnapshotterFactory = (root: string) => Promise<Snapshotter>;

const factories = new Map<string, SnapshotterFactory>();

export function registerSnapshotter(name: string, factory: SnapshotterFactory): void {
  factories.set(name, factory);
}

export function snapshotterNames(): string[] {
  return [...factories.keys()];
}

export function openSnapshotter(name: string, root: string): Promise<Snapshotter> {
  const factory = factories.get(name);
  if (!factory) throw errNotFound(`snapshotter ${JSON.stringify(name)} is not known (have ${snapshotterNames().join(', ')})`);
  return factory(root);
}
