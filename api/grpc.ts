// The server side of gRPC for berthd: service definitions built from berth's .proto files (no code
// generation) and handler wrappers that turn thrown errors into gRPC statuses. The namespace travels in the
// `containerd-namespace` header, as containerd's clients send it. Clients use api/grpc-client.ts.
import * as grpc from '@grpc/grpc-js';
import { BerthError, ErrorCode, grpcStatusOf } from './errdefs.ts';
import { CONVERT, protos } from './proto.ts';
import type protobuf from 'protobufjs';

import { NAMESPACE_HEADER } from './grpc-client.ts';

export { LEASE_HEADER, NAMESPACE_HEADER } from './grpc-client.ts';

const definitions = new Map<string, grpc.ServiceDefinition>();

function codec(type: protobuf.Type) {
  return {
    serialize: (value: object) => Buffer.from(type.encode(type.fromObject(value as Record<string, unknown>)).finish()),
    deserialize: (bytes: Buffer) => type.toObject(type.decode(bytes), CONVERT),
  };
}

/** The grpc-js definition of a service, e.g. "containerd.services.version.v1.Version"; keys are method names. */
export function serviceDefinition(fullName: string): grpc.ServiceDefinition {
  let def = definitions.get(fullName);
  if (def) return def;
  const service = protos().lookupService(fullName);
  const out: Record<string, grpc.MethodDefinition<any, any>> = {};
  for (const method of Object.values(service.methods)) {
    method.resolve();
    const req = codec(method.resolvedRequestType!);
    const res = codec(method.resolvedResponseType!);
    out[method.name] = {
      path: `/${fullName}/${method.name}`,
      requestStream: !!method.requestStream,
      responseStream: !!method.responseStream,
      requestSerialize: req.serialize,
      requestDeserialize: req.deserialize,
      responseSerialize: res.serialize,
      responseDeserialize: res.deserialize,
      originalName: method.name,
    };
  }
  def = out as grpc.ServiceDefinition;
  definitions.set(fullName, def);
  return def;
}

/** The namespace a call is for; failed-precondition when the client sent none, as containerd answers. */
export function namespaceOf(call: { metadata: grpc.Metadata }): string {
  const value = call.metadata.get(NAMESPACE_HEADER)[0];
  if (typeof value !== 'string' || value === '') {
    throw new BerthError(ErrorCode.FailedPrecondition, 'namespace is required: set the containerd-namespace header (berth -n / --namespace)');
  }
  return value;
}

/** A gRPC error for the wire: the status code mapped from berth's error code, the message as it is. */
export function toServiceError(err: unknown): grpc.ServiceError {
  const message = err instanceof Error ? err.message : String(err);
  return Object.assign(new Error(message), { code: grpcStatusOf(err), details: message, metadata: new grpc.Metadata() });
}

type Req = Record<string, any>;
type UnaryHandler = (req: Req, call: grpc.ServerUnaryCall<Req, Req>) => Promise<Req> | Req;
type ServerStreamHandler = (req: Req, call: grpc.ServerWritableStream<Req, Req>) => Promise<void>;
type BidiHandler = (call: grpc.ServerDuplexStream<Req, Req>) => Promise<void>;

export function unary(fn: UnaryHandler): grpc.handleUnaryCall<Req, Req> {
  return (call, callback) => {
    Promise.resolve().then(() => fn(call.request, call)).then(
      (res) => callback(null, res),
      (err) => callback(toServiceError(err)),
    );
  };
}

// A streaming call ends with an error by emitting it: grpc-js then sends it as the call's status
// (destroying the stream instead would drop the status).
export function serverStream(fn: ServerStreamHandler): grpc.handleServerStreamingCall<Req, Req> {
  return (call) => {
    fn(call.request, call).then(() => call.end(), (err) => call.emit('error', toServiceError(err)));
  };
}

export function bidiStream(fn: BidiHandler): grpc.handleBidiStreamingCall<Req, Req> {
  return (call) => {
    fn(call).then(() => call.end(), (err) => call.emit('error', toServiceError(err)));
  };
}

