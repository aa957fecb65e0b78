// Registry authentication: WWW-Authenticate challenges, Basic credentials and Bearer tokens fetched from the
// realm the registry names (docker's token protocol), cached per host and scope.
import { errInvalidArgument, BerthError, ErrorCode } from '../../api/errdefs.ts';
import { httpRequest, readBody } from './http.ts';

export interface Credentials {
  username: string;
  password: string;
}

/** Looks up credentials for a registry host ("127.0.0.1:5000"); undefined for anonymous access. */
export type CredentialsFunc = (host: string) => Credentials | undefined | Promise<Credentials | undefined>;

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses a WWW-Authenticate header: `Bearer realm="...",service="...",scope="..."`, possibly several. */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const s = header;
  const skipSpace = () => { while (i < s.length && /[\s,]/.test(s[i]!)) i++; };
  const token = () => { const m = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/.exec(s.slice(i)); if (!m) return ''; i += m[0].length; return m[0]; };
  while (true) {
    skipSpace();
    const scheme = token();
    if (!scheme) break;
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    while (true) {
      skipSpace();
      const save = i;
      const key = token();
      if (!key) break;
      while (s[i] === ' ') i++;
      if (s[i] !== '=') { i = save; break; } // the next challenge's scheme
      i++;
      while (s[i] === ' ') i++;
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') { if (s[i] === '\\') i++; value += s[i] ?? ''; i++; }
        i++;
      } else {
        // Strictly a token, but some servers send unquoted URLs: read up to the next separator.
        const m = /^[^\s,]*/.exec(s.slice(i))![0];
        value = m;
        i += m.length;
      }
      challenge.params[key.toLowerCase()] = value;
    }
  }
  return out;
}

interface HostAuth {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

/** Keeps what each host asked for and the tokens it granted; one per resolver. */
export class Authorizer {
  private readonly hosts = new Map<string, HostAuth>();
  private readonly tokens = new Map<string, { token: string; expires: number }>();

  constructor(private readonly credentials: CredentialsFunc | undefined, private readonly timeoutMs: number, private readonly ca?: string | Buffer) {}

  /** The Authorization header for a request to `host` needing `scopes`, if the host has challenged before. */
  async header(host: string, scopes: string[]): Promise<string | undefined> {
    const auth = this.hosts.get(host);
    if (!auth) return undefined;
    if (auth.scheme === 'basic') {
      const c = await this.credentials?.(host);
      return c ? 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64') : undefined;
    }
    return 'Bearer ' + (await this.token(host, auth.params, scopes));
  }

  /**
   * Records a 401's challenge. Returns false when retrying cannot help (no usable scheme, or a basic challenge
   * with no credentials to offer). Callers retry a request at most once.
   */
  async challenged(host: string, header: string | undefined): Promise<boolean> {
    const challenges = parseChallenges(header ?? '');
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer) {
      this.hosts.set(host, { scheme: 'bearer', params: bearer.params });
      // The cached tokens did not do: forget them so the retry asks the realm again.
      for (const key of this.tokens.keys()) if (key.startsWith(host + ' ')) this.tokens.delete(key);
      return true;
    }
    if (basic && (await this.credentials?.(host))) {
      this.hosts.set(host, { scheme: 'basic', params: basic.params });
      return true;
    }
    return false;
  }

  private async token(host: string, params: Record<string, string>, scopes: string[]): Promise<string> {
    const key = `${host} ${[...scopes].sort().join(' ')}`;
    const cached = this.tokens.get(key);
    if (cached && cached.expires > Date.now()) return cached.token;
    const url = new URL(params.realm!);
    if (params.service) url.searchParams.set('service', params.service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    const headers: Record<string, string> = { accept: 'application/json' };
    const c = await this.credentials?.(host);
    if (c) headers.authorization = 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64');
    const res = await httpRequest({ method: 'GET', url: url.toString(), headers, timeoutMs: this.timeoutMs, ca: this.ca });
    const body = await readBody(res, 1 << 20);
    if (res.status === 401 || res.status === 403) {
      throw new BerthError(ErrorCode.PermissionDenied, `token server ${url.origin}${url.pathname} refused ${c ? `user ${c.username}` : 'anonymous access'} (status ${res.status})`);
    }
    if (res.status !== 200) throw errInvalidArgument(`token server ${url.origin}${url.pathname}: unexpected status ${res.status}`);
    let doc: { token?: string; access_token?: string; expires_in?: number };
    try { doc = JSON.parse(body.toString('utf8')); } catch { throw errInvalidArgument(`token server ${url.origin}${url.pathname}: answer is not JSON`); }
    const token = doc.token || doc.access_token;
    if (!token) throw errInvalidArgument(`token server ${url.origin}${url.pathname}: answer has no token`);
    const ttl = Math.max(60, doc.expires_in ?? 60) * 1000;
    this.tokens.set(key, { token, expires: Date.now() + ttl - 10_000 });
    return token;
  }
}
