// Error kinds shared by every part, mapped to gRPC status codes the way containerd's errdefs are, so an
// error keeps its meaning across a socket (gRPC or ttrpc) and back.

export const ErrorCode = {
  Unknown: 'unknown',
  InvalidArgument: 'invalid argument',
  NotFound: 'not found',
  AlreadyExists: 'already exists',
  FailedPrecondition: 'failed precondition',
  Unavailable: 'unavailable',
  NotImplemented: 'not implemented',
  Canceled: 'canceled',
  DeadlineExceeded: 'deadline exceeded',
  PermissionDenied: 'permission denied',
  ResourceExhausted: 'resource exhausted',
  Aborted: 'aborted',
  OutOfRange: 'out of range',
  Internal: 'internal',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** gRPC status code numbers (grpc/status codes), as on the wire. */
export const GrpcStatus = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16,
} as const;

const toGrpc: Record<ErrorCode, number> = {
  [ErrorCode.Unknown]: GrpcStatus.UNKNOWN,
  [ErrorCode.InvalidArgument]: GrpcStatus.INVALID_ARGUMENT,
  [ErrorCode.NotFound]: GrpcStatus.NOT_FOUND,
  [ErrorCode.AlreadyExists]: GrpcStatus.ALREADY_EXISTS,
  [ErrorCode.FailedPrecondition]: GrpcStatus.FAILED_PRECONDITION,
  [ErrorCode.Unavailable]: GrpcStatus.UNAVAILABLE,
  [ErrorCode.NotImplemented]: GrpcStatus.UNIMPLEMENTED,
  [ErrorCode.Canceled]: GrpcStatus.CANCELLED,
  [ErrorCode.DeadlineExceeded]: GrpcStatus.DEADLINE_EXCEEDED,
  [ErrorCode.PermissionDenied]: GrpcStatus.PERMISSION_DENIED,
  [ErrorCode.ResourceExhausted]: GrpcStatus.RESOURCE_EXHAUSTED,
  [ErrorCode.Aborted]: GrpcStatus.ABORTED,
  [ErrorCode.OutOfRange]: GrpcStatus.OUT_OF_RANGE,
  [ErrorCode.Internal]: GrpcStatus.INTERNAL,
};

const fromGrpc = new Map<number, ErrorCode>(
  Object.entries(toGrpc).map(([code, status]) => [status, code as ErrorCode]),
);

/** An error that carries its kind. Messages name the problem ("content sha256:ab..: not found"). */
export class BerthError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BerthError';
    this.code = code;
  }
}

const make = (code: ErrorCode) => (message: string, cause?: unknown) =>
  new BerthError(code, message, cause === undefined ? undefined : { cause });

export const errInvalidArgument = make(ErrorCode.InvalidArgument);
export const errNotFound = make(ErrorCode.NotFound);
export const errAlreadyExists = make(ErrorCode.AlreadyExists);
export const errFailedPrecondition = make(ErrorCode.FailedPrecondition);
export const errUnavailable = make(ErrorCode.Unavailable);
export const errNotImplemented = make(ErrorCode.NotImplemented);
export const errInternal = make(ErrorCode.Internal);

export function codeOf(err: unknown): ErrorCode {
  if (err instanceof BerthError) return err.code;
  const grpcCode = (err as { code?: unknown } | null)?.code;
  if (typeof grpcCode === 'number') return fromGrpc.get(grpcCode) ?? ErrorCode.Unknown;
  return ErrorCode.Unknown;
}

export const isNotFound = (err: unknown) => codeOf(err) === ErrorCode.NotFound;
export const isAlreadyExists = (err: unknown) => codeOf(err) === ErrorCode.AlreadyExists;

export function grpcStatusOf(err: unknown): number {
  return toGrpc[codeOf(err)];
}

/** Rebuilds a BerthError from a status received over the wire. */
export function fromStatus(status: number, message: string): BerthError {
  return new BerthError(fromGrpc.get(status) ?? ErrorCode.Unknown, message);
}
