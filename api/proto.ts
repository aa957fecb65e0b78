// Loads berth's .proto files (api/proto/, containerd's packages and field numbers) into one protobufjs Root,
// and converts between wire bytes and plain objects. Field names are camelCase (media_type → mediaType);
// int64 values become numbers (sizes and offsets stay far below 2^53), enums their names, bytes Buffers.
// From the sources the .proto files are parsed; the build also writes the parsed result as dist/proto.json,
// which the bundles load instead (several times faster: a CLI pays for every millisecond of start-up).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

export const PROTO_DIR = fileURLToPath(new URL('./proto/', import.meta.url));
const PROTO_JSON = fileURLToPath(new URL('./proto.json', import.meta.url));

export const CONVERT: protobuf.IConversionOptions = {
  longs: Number, enums: String, bytes: Buffer, defaults: true, arrays: true, objects: true,
};

let root: protobuf.Root | undefined;

function protoFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...protoFiles(path));
    else if (entry.name.endsWith('.proto')) out.push(path);
  }
  return out.sort();
}

/** Every message, enum and service berth speaks (types resolve on first use). */
export function protos(): protobuf.Root {
  if (root) return root;
  root = existsSync(PROTO_JSON) ? protobuf.Root.fromJSON(JSON.parse(readFileSync(PROTO_JSON, 'utf8'))) : parseProtos();
  return root;
}

/** Parses every .proto file under api/proto into a resolved Root. */
export function parseProtos(): protobuf.Root {
  const r = new protobuf.Root();
  // Imports name files relative to api/proto ("types/mount.proto"); protobufjs's bundled well-known types
  // answer "google/protobuf/*.proto".
  r.resolvePath = (_origin, target) => {
    if (target.startsWith('google/protobuf/')) return target;
    return target.startsWith('/') ? target : join(PROTO_DIR, target);
  };
  r.loadSync(protoFiles(PROTO_DIR).map((f) => relative(PROTO_DIR, f)), { keepCase: false });
  // protobufjs defines the well-known Any from JSON with its snake_case name; rename it so every message,
  // Any included, uses camelCase (same field number, so the wire is unchanged).
  const any = r.lookupType('google.protobuf.Any');
  const typeUrl = any.fields['type_url'];
  if (typeUrl) {
    any.remove(typeUrl);
    any.add(new protobuf.Field('typeUrl', 1, 'string'));
  }
  r.resolveAll();
  return r;
}

export function messageType(name: string): protobuf.Type {
  return protos().lookupType(name);
}

export function encodeMessage(name: string, value: object): Uint8Array {
  const type = messageType(name);
  return type.encode(type.fromObject(value as Record<string, unknown>)).finish();
}

export function decodeMessage<T = Record<string, any>>(name: string, bytes: Uint8Array): T {
  const type = messageType(name);
  return type.toObject(type.decode(bytes), CONVERT) as T;
}

/** A google.protobuf.Any as protobufjs objects carry it. */
export interface AnyMessage {
  typeUrl: string;
  value: Uint8Array;
}

/** Packs a message into an Any, with containerd's type URL form (the bare full name). */
export function packAny(name: string, value: object): AnyMessage {
  return { typeUrl: name, value: encodeMessage(name, value) };
}

/** Unpacks an Any whose type berth knows (type URL "types.googleapis.com/x.Y" or bare "x.Y"). */
export function unpackAny<T = Record<string, any>>(any: AnyMessage): T {
  const name = any.typeUrl.slice(any.typeUrl.lastIndexOf('/') + 1);
  return decodeMessage<T>(name, any.value);
}

export interface TimestampMessage {
  seconds: number;
  nanos: number;
}

export function toTimestamp(date: Date): TimestampMessage {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1e6 };
}

export function fromTimestamp(ts: TimestampMessage | null | undefined): Date {
  if (!ts) return new Date(0);
  return new Date(Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6));
}
