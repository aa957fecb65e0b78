// A real OCI registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1 and a free port,
// filesystem storage in a scratch dir, stopped by PID when the test ends. Variants with basic auth (htpasswd,
// bcrypt) and token auth (a small Bearer token server run here, signing RS256 JWTs with a throwaway cert).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createSign, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { LocalContentStore } from '../../content/local.ts';
import { pushImage } from '../../daemon/remotes/push.ts';
import { writeImageToStore, type TestImage } from './image.ts';
import { tempDir } from './tmp.ts';

export interface TestRegistry {
  /** "127.0.0.1:PORT": use as the registry host in references. */
  host: string;
  url: string;
  pid: number;
  /** Storage root (blobs under docker/registry/v2). */
  storage: string;
  /** Credentials the registry accepts, when it has auth. */
  username?: string;
  password?: string;
  /** Token requests the token server answered (token auth only), with their scopes. */
  tokenRequests: { scopes: string[]; user?: string }[];
  /** With `tls`: the PEM of the registry's self-signed certificate (for 127.0.0.1), to trust as a CA. */
  ca?: string;
}

export interface RegistryOptions {
  auth?: 'none' | 'basic' | 'token';
  /** Serve HTTPS with a throwaway certificate for 127.0.0.1 (clients need `plainHttp: false` and `ca`). */
  tls?: boolean;
  username?: string;
  password?: string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address() as AddressInfo; s.close(() => resolve(port)); });
  });
}

/** A bcrypt hash, from Python's crypt (libxcrypt) so no npm package or apache2-utils is needed. */
function bcrypt(password: string): string {
  return execFileSync('python3', ['-W', 'ignore', '-c',
    'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))', password],
  { encoding: 'utf8' }).trim();
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/** Serves docker's token protocol: Basic credentials in, a JWT granting the requested scopes out. */
async function startTokenServer(t: ExecutionContext, dir: string, reg: TestRegistry, user: string, password: string) {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=berth-test-token',
    '-keyout', join(dir, 'token.key'), '-out', join(dir, 'token.crt')], { stdio: 'ignore' });
  const key = readFileSync(join(dir, 'token.key'), 'utf8');
  const certDer = Buffer.from(readFileSync(join(dir, 'token.crt'), 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const auth = req.headers.authorization ?? '';
    const [u, p] = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString().split(':') : [];
    const scopes = url.searchParams.getAll('scope');
    reg.tokenRequests.push({ scopes, user: u });
    if (auth && (u !== user || p !== password)) { res.writeHead(401).end(); return; }
    const access = u === undefined ? [] : scopes.map((s) => {
      const [type, name, actions] = s.split(':');
      return { type, name, actions: (actions ?? '').split(',') };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const claims = { iss: 'berth-test-issuer', sub: u ?? '', aud: 'berth-test-registry', exp: now + 600, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = createSign('RSA-SHA256').update(input).sign(key);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `${input}.${b64url(signature)}`, expires_in: 600 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
}

function authConfig(kind: string, dir: string, realm: string | undefined, user: string, password: string): string {
  if (kind === 'basic') {
    writeFileSync(join(dir, 'htpasswd'), `${user}:${bcrypt(password)}\n`);
    return `auth:\n  htpasswd:\n    realm: berth-test\n    path: ${join(dir, 'htpasswd')}\n`;
  }
  if (kind === 'token') {
    return `auth:\n  token:\n    realm: ${realm}\n    service: berth-test-registry\n    issuer: berth-test-issuer\n    rootcertbundle: ${join(dir, 'token.crt')}\n`;
  }
  return '';
}

async function waitForV2(url: string, ca: string | undefined, child: ChildProcess, logs: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${logs()}`);
    const status = await new Promise<number>((resolve) => {
      (ca ? https : http).get(`${url}/v2/`, { ...(ca ? { ca } : {}) }, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', () => resolve(0));
    });
    if (status === 200 || status === 401) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not answer /v2/ within 15 s: ${logs()}`);
}

/** Starts a registry for this test; it is stopped (by PID) and its storage removed in teardown. */
export async function startRegistry(t: ExecutionContext, opts: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = tempDir(t, 'berth-registry-');
  const kind = opts.auth ?? 'none';
  const username = opts.username ?? 'berth';
  const password = opts.password ?? 'secret-' + randomBytes(4).toString('hex');
  const reg: TestRegistry = { host: '', url: '', pid: 0, storage: join(dir, 'storage'), tokenRequests: [] };
  if (kind !== 'none') Object.assign(reg, { username, password });
  const realm = kind === 'token' ? await startTokenServer(t, dir, reg, username, password) : undefined;
  let tlsConfig = '';
  if (opts.tls) {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.crt')], { stdio: 'ignore' });
    reg.ca = readFileSync(join(dir, 'tls.crt'), 'utf8');
    tlsConfig = `  tls:\n    certificate: ${join(dir, 'tls.crt')}\n    key: ${join(dir, 'tls.key')}\n`;
  }
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const config = join(dir, 'config.yml');
    writeFileSync(config, `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n`
      + `storage:\n  filesystem:\n    rootdirectory: ${reg.storage}\n  delete:\n    enabled: true\n`
      + `http:\n  addr: 127.0.0.1:${port}\n` + tlsConfig + authConfig(kind, dir, realm, username, password));
    const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    t.teardown(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid!, 'SIGTERM');
        const timer = setTimeout(() => { try { process.kill(child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 3000);
        await exited;
        clearTimeout(timer);
      }
    });
    reg.host = `127.0.0.1:${port}`;
    reg.url = `${opts.tls ? 'https' : 'http'}://${reg.host}`;
    reg.pid = child.pid!;
    try {
      await waitForV2(reg.url, reg.ca, child, () => stderr);
      return reg;
    } catch (e) {
      // Another process may have taken the port between probe and bind: try a new one.
      if (attempt >= 2 || !/address already in use/.test(stderr)) throw e;
    }
  }
}

/**
 * A pass-through HTTP proxy in front of `registry` that records each request ("PATCH /v2/a/b/blobs/uploads/..",
 * with Range and Content-Range headers), so tests can see which protocol paths a client took. Returns its host.
 */
export async function recordingProxy(t: ExecutionContext, registry: TestRegistry, log: string[]): Promise<string> {
  const server = http.createServer((req, res) => {
    const extra = ['range', 'content-range'].filter((h) => req.headers[h]).map((h) => ` ${h}=${req.headers[h]}`).join('');
    log.push(`${req.method} ${req.url}${extra}`);
    const upstream = http.request(`${registry.url}${req.url}`, { method: req.method, headers: { ...req.headers, host: registry.host } }, (up) => {
      const headers = { ...up.headers };
      // Upload locations are absolute URLs of the registry: point them back through the proxy.
      if (typeof headers.location === 'string') headers.location = headers.location.replace(registry.url, `http://${req.headers.host}`);
      res.writeHead(up.statusCode ?? 502, headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A test registry holding `image` at `<host>/<path>`: the reference to pull it by. */
export async function registryWithImage(t: ExecutionContext, image: TestImage, path: string): Promise<{ registry: TestRegistry; ref: string }> {
  const registry = await startRegistry(t);
  const src = await LocalContentStore.open(join(tempDir(t), 'content'));
  await writeImageToStore(src, image);
  const ref = `${registry.host}/${path}`;
  await pushImage(ref, { store: src, target: image.target, plainHttp: true });
  return { registry, ref };
}
