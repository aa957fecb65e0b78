// Conversions between berth's objects and the protobufjs objects of containerd's API.
import { errInvalidArgument } from '../../api/errdefs.ts';
import { fromTimestamp, toTimestamp, type TimestampMessage } from '../../api/proto.ts';
import type { Descriptor } from '../../content/types.ts';

export { fromTimestamp, toTimestamp };
export type { TimestampMessage };

export interface DescriptorMessage {
  mediaType: string;
  digest: string;
  size: number;
  annotations: Record<string, string>;
}

export function descriptorToProto(d: Descriptor): DescriptorMessage {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, annotations: { ...d.annotations } };
}

export function descriptorFromProto(m: DescriptorMessage | null | undefined, what: string): Descriptor {
  if (!m || !m.digest) throw errInvalidArgument(`${what}: a descriptor with a digest is required`);
  const d: Descriptor = { mediaType: m.mediaType, digest: m.digest, size: Number(m.size) };
  if (m.annotations && Object.keys(m.annotations).length > 0) d.annotations = { ...m.annotations };
  return d;
}

/** The paths of a google.protobuf.FieldMask, or undefined when absent or empty (= update everything). */
export function fieldPaths(mask: { paths?: string[] } | null | undefined): string[] | undefined {
  return mask?.paths && mask.paths.length > 0 ? mask.paths : undefined;
}

/** Sends `items` in batches (containerd streams list results in chunks, not one message per item). */
export function* batches<T>(items: T[], size = 100): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}
