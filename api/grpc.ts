// gRPC plumbing shared by berthd and the berth CLI: service definitions built from berth's .proto files
// (no code generation), handler wrappers that turn thrown errors into gRPC statuses, and a small client.
// The namespace travels in the `containerd-namespace` header, as containerd's clients send it.
import * as grpc from '@grpc/grpc-js';
import { BerthError, ErrorCode, codeOf, fromStatus, grpcStatusOf } from './errdefs.ts';
import { CONVERT, protos } from './proto.ts';
import type protobuf from 'protobufjs';

export const NAMESPACE_HEADER = 'containerd-namespace';
export const LEASE_HEADER = 'containerd-lease';

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

/** Turns a gRPC client error back into a BerthError with the same meaning. */
export function fromServiceError(err: unknown): BerthError {
  if (err instanceof BerthError) return err;
  const e = err as { code?: number; details?: string; message?: string };
  if (typeof e.code === 'number') return fromStatus(e.code, e.details || e.message || 'unknown error');
  return new BerthError(codeOf(err), e.message ?? String(err));
}

export interface ApiClientOptions {
  namespace?: string;
  /** Lease the calls run under (content written and snapshots created are attached to it). */
  lease?: string;
  /** Per-call deadline in ms; none by default. */
  timeoutMs?: number;
}

/** A client for containerd's API on a unix socket (or any grpc-js target), one channel for all services. */
export class ApiClient {
  private readonly clients = new Map<string, grpc.Client>();
  private readonly channel: grpc.Channel;

  constructor(readonly address: string, private readonly opts: ApiClientOptions = {}) {
    const target = address.includes('://') ? address : `unix://${address}`;
    this.channel = new grpc.Channel(target, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': 16 << 20,
      'grpc.max_send_message_length': 16 << 20,
    });
  }

  /** The same connection, calling with other options (namespace, lease). */
  with(opts: ApiClientOptions): ApiClient {
    const c = Object.create(this) as ApiClient;
    (c as unknown as { opts: ApiClientOptions }).opts = { ...this.opts, ...opts };
    return c;
  }

  private client(service: string): grpc.Client {
    let c = this.clients.get(service);
    if (!c) {
      const Ctor = grpc.makeGenericClientConstructor(serviceDefinition(service), service);
      c = new Ctor('unused', grpc.credentials.createInsecure(), { channelOverride: this.channel });
      this.clients.set(service, c);
    }
    return c;
  }

  private callOptions(): { metadata: grpc.Metadata; options: grpc.CallOptions } {
    const metadata = new grpc.Metadata();
    if (this.opts.namespace) metadata.set(NAMESPACE_HEADER, this.opts.namespace);
    if (this.opts.lease) metadata.set(LEASE_HEADER, this.opts.lease);
    const options: grpc.CallOptions = {};
    if (this.opts.timeoutMs) options.deadline = Date.now() + this.opts.timeoutMs;
    return { metadata, options };
  }

  /** A unary call; `service` is the full name ("containerd.services.images.v1.Images"). */
  call<T = Req>(service: string, method: string, request: Req = {}): Promise<T> {
    const c = this.client(service) as unknown as Record<string, Function>;
    const { metadata, options } = this.callOptions();
    return new Promise((resolve, reject) => {
      c[method]!.call(c, request, metadata, options, (err: unknown, res: T) => (err ? reject(fromServiceError(err)) : resolve(res)));
    });
  }

  /** A server-streaming call, as an async iterator of responses. */
  async *stream<T = Req>(service: string, method: string, request: Req = {}): AsyncGenerator<T> {
    const c = this.client(service) as unknown as Record<string, Function>;
    const { metadata, options } = this.callOptions();
    const call = c[method]!.call(c, request, metadata, options) as grpc.ClientReadableStream<T>;
    try {
      for await (const msg of call) yield msg as T;
    } catch (err) {
      throw fromServiceError(err);
    } finally {
      call.cancel();
    }
  }

  /** A bidirectional stream (Content.Write). */
  duplex(service: string, method: string): grpc.ClientDuplexStream<Req, Req> {
    const c = this.client(service) as unknown as Record<string, Function>;
    const { metadata, options } = this.callOptions();
    return c[method]!.call(c, metadata, options) as grpc.ClientDuplexStream<Req, Req>;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.channel.close();
  }
}
