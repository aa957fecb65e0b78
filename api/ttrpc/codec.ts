// The ttrpc envelope messages and per-method codecs, from berth's protos.
import type protobuf from 'protobufjs';
import { BerthError, ErrorCode, fromStatus, grpcStatusOf } from '../errdefs.ts';
import { CONVERT, messageType, protos } from '../proto.ts';

export type Msg = Record<string, any>;

export interface MethodCodec {
  request: protobuf.Type;
  response: protobuf.Type;
  requestStream: boolean;
  responseStream: boolean;
}

const codecs = new Map<string, MethodCodec>();

export function methodCodec(service: string, method: string): MethodCodec | undefined {
  const key = `${service}/${method}`;
  let c = codecs.get(key);
  if (c) return c;
  const svc = protos().lookup(service);
  const m = (svc as protobuf.Service | null)?.methods?.[method];
  if (!m) return undefined;
  m.resolve();
  c = { request: m.resolvedRequestType!, response: m.resolvedResponseType!, requestStream: !!m.requestStream, responseStream: !!m.responseStream };
  codecs.set(key, c);
  return c;
}

export const encode = (type: protobuf.Type, msg: Msg): Uint8Array => type.encode(type.fromObject(msg)).finish();
export const decode = (type: protobuf.Type, data: Uint8Array): Msg => type.toObject(type.decode(data), CONVERT);

export const REQUEST = () => messageType('ttrpc.Request');
export const RESPONSE = () => messageType('ttrpc.Response');

/** google.rpc.Status for an error thrown by a handler. */
export function statusOf(err: unknown): { code: number; message: string } {
  return { code: grpcStatusOf(err), message: err instanceof Error ? err.message : String(err) };
}

export function errorOf(status: { code: number; message: string } | null | undefined): BerthError | undefined {
  if (!status || !status.code) return undefined;
  return fromStatus(status.code, status.message || `ttrpc status ${status.code}`);
}

export function notImplemented(message: string): BerthError {
  return new BerthError(ErrorCode.NotImplemented, message);
}
