// The handler side of berthd's gRPC services: wrappers that run a service method and turn what it returns or
// throws into the call's messages and status (api/grpc-server.ts is the transport). The namespace travels in
// the `containerd-namespace` header, as containerd's clients send it. Clients use api/grpc-client.ts.
import { BerthError, ErrorCode } from './errdefs.ts';
import type { Metadata, MethodHandler, ServerCall } from './grpc-server.ts';
import { NAMESPACE_HEADER } from './grpc-client.ts';

export { LEASE_HEADER, NAMESPACE_HEADER } from './grpc-client.ts';
export type { Metadata, ServerCall, ServiceImplementation } from './grpc-server.ts';

/** The namespace a call is for; failed-precondition when the client sent none, as containerd answers. */
export function namespaceOf(call: { metadata: Metadata }): string {
  const value = call.metadata.get(NAMESPACE_HEADER)[0];
  if (typeof value !== 'string' || value === '') {
    throw new BerthError(ErrorCode.FailedPrecondition, 'namespace is required: set the containerd-namespace header (berth -n / --namespace)');
  }
  return value;
}

type Req = Record<string, any>;

/** One request, one response. */
export function unary(fn: (req: Req, call: ServerCall) => Promise<Req> | Req): MethodHandler {
  return (call) => {
    Promise.resolve().then(() => fn(call.request, call)).then(
      (res) => call.reply(res),
      (err) => call.fail(err),
    );
  };
}

/** One request, responses written by the handler; its return ends the call with OK, its error with a status. */
export function serverStream(fn: (req: Req, call: ServerCall) => Promise<void>): MethodHandler {
  return (call) => { fn(call.request, call).then(() => call.end(), (err) => call.fail(err)); };
}

/** Request messages read from the call (client- or bidirectional streaming), responses written to it. */
export function bidiStream(fn: (call: ServerCall) => Promise<void>): MethodHandler {
  return (call) => { fn(call).then(() => call.end(), (err) => call.fail(err)); };
}
