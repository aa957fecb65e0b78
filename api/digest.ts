// OCI content digests ("sha256:<64 hex>"): parsing and validation shared by every part.
import { createHash } from 'node:crypto';
import { errInvalidArgument } from './errdefs.ts';

export type Digest = string;

const algorithms: Record<string, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

/** Splits and validates a digest; throws invalid-argument naming what is wrong. */
export function parseDigest(digest: string): { algorithm: string; encoded: string } {
  const colon = digest.indexOf(':');
  if (colon <= 0) throw errInvalidArgument(`invalid digest ${JSON.stringify(digest)}: want <algorithm>:<hex>`);
  const algorithm = digest.slice(0, colon);
  const encoded = digest.slice(colon + 1);
  const pattern = algorithms[algorithm];
  if (!pattern) throw errInvalidArgument(`invalid digest ${JSON.stringify(digest)}: unsupported algorithm ${algorithm}`);
  if (!pattern.test(encoded)) throw errInvalidArgument(`invalid digest ${JSON.stringify(digest)}: malformed ${algorithm} hex`);
  return { algorithm, encoded };
}

export function isDigest(s: string): boolean {
  try { parseDigest(s); return true; } catch { return false; }
}

export function sha256Digest(data: Uint8Array | string): Digest {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}
