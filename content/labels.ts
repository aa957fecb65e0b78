// Label rules and fieldpath updates shared by every store that keeps labels (content, metadata), as
// containerd's labels.Validate and its "labels" / "labels.<key>" fieldpath handling.
import { errInvalidArgument } from '../api/errdefs.ts';

const maxLabelSize = 4096;

/** Throws invalid-argument for an empty key or a key+value longer than 4096 bytes. */
export function validateLabels(labels: Record<string, string>): void {
  for (const [k, v] of Object.entries(labels)) {
    if (k === '') throw errInvalidArgument('label key must not be empty');
    if (typeof v !== 'string') throw errInvalidArgument(`label ${JSON.stringify(k)}: value must be a string`);
    if (Buffer.byteLength(k) + Buffer.byteLength(v) > maxLabelSize) {
      throw errInvalidArgument(`label ${JSON.stringify(k.slice(0, 64))}: key and value exceed ${maxLabelSize} bytes`);
    }
  }
}

/**
 * Applies an update to `current` labels. Without fieldpaths the labels are replaced; "labels" replaces them
 * too; "labels.<key>" sets that key from `next` or deletes it when `next` lacks it. Other fieldpaths are
 * accepted only when `allowed` lists them (the caller applies those itself).
 */
export function updateLabels(current: Record<string, string>, next: Record<string, string>, fieldpaths: readonly string[] | undefined,
  allowed: readonly string[] = []): Record<string, string> {
  validateLabels(next);
  if (!fieldpaths || fieldpaths.length === 0) return { ...next };
  let out = { ...current };
  for (const path of fieldpaths) {
    if (path === 'labels') out = { ...next };
    else if (path.startsWith('labels.')) {
      const key = path.slice('labels.'.length);
      if (key === '') throw errInvalidArgument(`invalid fieldpath ${JSON.stringify(path)}: empty label key`);
      if (key in next) out[key] = next[key]!;
      else delete out[key];
    } else if (!allowed.includes(path)) {
      throw errInvalidArgument(`cannot update fieldpath ${JSON.stringify(path)}`);
    }
  }
  return out;
}
