// A repository on a registry (distribution spec v2): URLs, plain HTTP vs HTTPS, authentication retries and
// error answers turned into BerthErrors that name the request, the status and what the registry said.
import { BerthError, ErrorCode } from '../../api/errdefs.ts';
import type { Reference } from '../../api/reference.ts';
import { Authorizer, type CredentialsFunc } from './auth.ts';
import { type HttpRequest, type HttpResponse, httpRequest, readBody } from './http.ts';

export interface ResolverOptions {
  /** Credentials per host; anonymous when absent or when it returns undefined. */
  credentials?: CredentialsFunc;
  /** Hosts ("host:port") spoken to over plain HTTP. Loopback hosts always are. */
  insecureHosts?: string[];
  /** true: plain HTTP for every host; false: HTTPS even for loopback; default: plain for loopback and insecureHosts. */
  plainHttp?: boolean;
  /** Extra CA certificates (PEM) trusted for registries spoken to over HTTPS. */
  ca?: string | Buffer;
  /** Idle timeout per request (no answer or no body bytes for this long), default 30 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Shared between repositories of one operation so tokens are reused. */
  authorizer?: Authorizer;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

export function isLoopbackHost(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

export interface RepositoryRequest {
  method: HttpRequest['method'];
  /** A path below /v2/<name>/ ("manifests/latest"), or an absolute URL (an upload Location). */
  path: string;
  headers?: Record<string, string>;
  body?: HttpRequest['body'];
  /** Push access needed (else pull). */
  push?: boolean;
  /** More token scopes, e.g. pull on the source repository of a cross-repository mount. */
  extraScopes?: string[];
}

export class Repository {
  readonly host: string;
  readonly path: string;
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly authorizer: Authorizer;
  private readonly signal?: AbortSignal;
  private readonly ca?: string | Buffer;

  constructor(readonly reference: Reference, opts: ResolverOptions = {}) {
    this.host = reference.domain;
    this.path = reference.path;
    // docker.io names the Hub; its API lives on registry-1.docker.io, as containerd's default host config.
    const apiHost = this.host === 'docker.io' ? 'registry-1.docker.io' : this.host;
    const plain = opts.plainHttp ?? (isLoopbackHost(this.host) || (opts.insecureHosts ?? []).includes(this.host));
    this.baseUrl = `${plain ? 'http' : 'https'}://${apiHost}/v2/${this.path}/`;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.authorizer = opts.authorizer ?? new Authorizer(opts.credentials, this.timeoutMs, opts.ca);
    this.signal = opts.signal;
    this.ca = opts.ca;
  }

  url(path: string): string {
    return new URL(path, this.baseUrl).toString();
  }

  /**
   * Sends a request with authentication; on a 401 records the challenge and retries once (only when the body
   * can be replayed). Any status is returned: callers decide which ones they expect.
   */
  async request(req: RepositoryRequest): Promise<HttpResponse> {
    const scopes = [`repository:${this.path}:${req.push ? 'pull,push' : 'pull'}`, ...(req.extraScopes ?? [])];
    const replayable = req.body === undefined || Buffer.isBuffer(req.body);
    for (let attempt = 0; ; attempt++) {
      const headers = { ...req.headers };
      const authorization = await this.authorizer.header(this.host, scopes);
      if (authorization) headers.authorization = authorization;
      const res = await httpRequest({ method: req.method, url: this.url(req.path), headers, body: req.body, timeoutMs: this.timeoutMs, signal: this.signal, ca: this.ca });
      if (res.status !== 401 || attempt > 0 || !replayable) return res;
      if (!(await this.authorizer.challenged(this.host, res.headers['www-authenticate'] as string | undefined))) return res;
      res.body.resume();
    }
  }

  /** An error for an unexpected answer: the request, the status and the registry's own error codes. */
  async error(res: HttpResponse, what: string): Promise<BerthError> {
    let detail = '';
    try {
      const body = await readBody(res, 64 << 10);
      const type = String(res.headers['content-type'] ?? '');
      if (type.includes('json')) {
        const doc = JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
        detail = (doc.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
      } else if (body.length) {
        detail = `${type || 'untyped'} answer: ${JSON.stringify(body.subarray(0, 120).toString('utf8'))}`;
      }
    } catch { /* the status alone has to do */ }
    const code = res.status === 404 ? ErrorCode.NotFound
      : res.status === 401 || res.status === 403 ? ErrorCode.PermissionDenied
        : res.status === 429 || res.status >= 500 ? ErrorCode.Unavailable : ErrorCode.Unknown;
    return new BerthError(code, `${what} at ${this.host}/${this.path}: unexpected status ${res.status}${detail ? ` (${detail})` : ''}`);
  }
}
