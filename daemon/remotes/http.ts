// One HTTP exchange with a registry, on node:http(s): an idle timeout that covers both waiting for the answer
// and a body that stops flowing, redirects followed without leaking credentials, and errors that say which
// request failed and how.
import http from 'node:http';
import https from 'node:https';
import { rootCertificates as tlsRootCertificates } from 'node:tls';
import type { Readable } from 'node:stream';
import { BerthError, ErrorCode, errUnavailable } from '../../api/errdefs.ts';

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: Buffer | Readable;
  /** Milliseconds without any progress (connect, answer, or body bytes) before giving up. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Extra CA certificates (PEM) trusted for HTTPS, besides Node's bundled ones. */
  ca?: string | Buffer;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The final URL after redirects. */
  url: string;
  body: http.IncomingMessage;
}

const MAX_REDIRECTS = 5;
const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

export function errDeadline(message: string): BerthError {
  return new BerthError(ErrorCode.DeadlineExceeded, message);
}

function once(req: HttpRequest, url: URL): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const headers = { ...req.headers };
    if (Buffer.isBuffer(req.body)) headers['content-length'] = String(req.body.length);
    const tls = url.protocol === 'https:';
    const ca = tls && req.ca ? [...tlsRootCertificates, req.ca.toString()] : undefined;
    const r = mod.request(url, { method: req.method, headers, agent: tls ? agents.https : agents.http, signal: req.signal, ...(ca ? { ca } : {}) });
    const what = `${req.method} ${url.origin}${url.pathname}`;
    let response: http.IncomingMessage | undefined;
    r.setTimeout(req.timeoutMs, () => {
      const err = errDeadline(`${what}: registry did not answer within ${req.timeoutMs} ms`);
      // Destroying the body with the error makes a reader mid-stream see the timeout, not a bare reset.
      response?.destroy(err);
      r.destroy(err);
    });
    r.on('error', (e: NodeJS.ErrnoException) => {
      if (e instanceof BerthError) return reject(e);
      if (e.name === 'AbortError') return reject(new BerthError(ErrorCode.Canceled, `${what}: canceled`, { cause: e }));
      const hint = tls && /certificate|self.signed|SSL|TLS/i.test(`${e.code} ${e.message}`) ? ' (TLS: pass the registry CA, or mark the host insecure for plain HTTP)' : '';
      reject(errUnavailable(`${what}: ${e.code ?? ''} ${e.message}${hint}`.replace('  ', ' '), e));
    });
    r.on('response', (res) => {
      response = res;
      // The socket timeout keeps running while the body streams, so a body that stalls fails too.
      res.on('error', () => { /* surfaced to whoever reads the body */ });
      resolve({ status: res.statusCode ?? 0, headers: res.headers, url: url.toString(), body: res });
    });
    if (req.body === undefined) r.end();
    else if (Buffer.isBuffer(req.body)) r.end(req.body);
    else {
      req.body.on('error', (e) => r.destroy(e));
      req.body.pipe(r);
    }
  });
}

/** Sends a request, following redirects for GET/HEAD (Authorization is kept only on the same origin). */
export async function httpRequest(req: HttpRequest): Promise<HttpResponse> {
  let url = new URL(req.url);
  const origin = url.origin;
  for (let hop = 0; ; hop++) {
    const headers = { ...req.headers };
    if (url.origin !== origin) delete headers.authorization;
    const res = await once({ ...req, headers }, url);
    const location = res.headers.location;
    if (![301, 302, 303, 307, 308].includes(res.status) || !location || (req.method !== 'GET' && req.method !== 'HEAD')) return res;
    res.body.resume();
    if (hop >= MAX_REDIRECTS) throw errUnavailable(`${req.method} ${req.url}: more than ${MAX_REDIRECTS} redirects`);
    url = new URL(location, url);
  }
}

/** Reads a whole body, refusing more than `limit` bytes. */
export async function readBody(res: HttpResponse, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > limit) {
      res.body.destroy();
      throw errUnavailable(`${res.url}: response body larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Drains and discards a body so the connection can be reused. */
export async function discardBody(res: HttpResponse): Promise<void> {
  res.body.resume();
  await new Promise<void>((resolve) => { res.body.on('end', resolve); res.body.on('close', resolve); res.body.on('error', () => resolve()); });
}
