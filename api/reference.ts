// Image references ("docker.io/library/busybox:latest", "host:5000/a/b@sha256:..."), parsed and normalized as
// docker/containerd do, so the CLI and the daemon agree on what a name means.
import { parseDigest } from './digest.ts';
import { errInvalidArgument } from './errdefs.ts';

export interface Reference {
  /** Registry host, with port when given ("docker.io", "127.0.0.1:5000", "[::1]:5000"). */
  readonly domain: string;
  /** Repository path below the host ("library/busybox"). */
  readonly path: string;
  readonly tag?: string;
  readonly digest?: string;
}

export const DEFAULT_DOMAIN = 'docker.io';
export const DEFAULT_TAG = 'latest';
const MAX_NAME_LENGTH = 255;

const pathComponent = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const domainComponent = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const ipv6Host = /^\[[0-9a-fA-F:.]+(?:%[a-zA-Z0-9]+)?\]$/;
const tagPattern = /^[\w][\w.-]{0,127}$/;

function bad(input: string, problem: string): Error {
  return errInvalidArgument(`invalid reference ${JSON.stringify(input)}: ${problem}`);
}

/** True when `s` is a valid registry host: dotted names or IPv6 in brackets, with an optional port. */
export function isValidDomain(s: string): boolean {
  let host = s;
  const portMatch = /:(\d+)$/.exec(s);
  if (portMatch) {
    if (Number(portMatch[1]) > 65535) return false;
    host = s.slice(0, portMatch.index);
  }
  if (ipv6Host.test(host)) return true;
  return host.length > 0 && host.split('.').every((c) => domainComponent.test(c));
}

function looksLikeDomain(first: string): boolean {
  return first.includes('.') || first.includes(':') || first.startsWith('[') || first === 'localhost';
}

function splitObject(input: string, s: string): { name: string; tag?: string; digest?: string } {
  let name = s;
  let digest: string | undefined;
  const at = name.indexOf('@');
  if (at >= 0) {
    digest = name.slice(at + 1);
    name = name.slice(0, at);
    try { parseDigest(digest); } catch (e) { throw bad(input, (e as Error).message); }
  }
  let tag: string | undefined;
  const lastSlash = name.lastIndexOf('/');
  const lastColon = name.lastIndexOf(':');
  // A colon after the last slash (and not inside an IPv6 host) separates the tag.
  if (lastColon > lastSlash && !(lastSlash < 0 && name.startsWith('['))) {
    tag = name.slice(lastColon + 1);
    name = name.slice(0, lastColon);
    if (!tagPattern.test(tag)) throw bad(input, `invalid tag ${JSON.stringify(tag)}`);
  }
  return { name, tag, digest };
}

function checkPath(input: string, path: string): void {
  if (!path) throw bad(input, 'missing repository name');
  for (const c of path.split('/')) {
    if (!c) throw bad(input, 'empty path component');
    if (c !== c.toLowerCase() && pathComponent.test(c.toLowerCase())) throw bad(input, 'repository name must be lowercase');
    if (!pathComponent.test(c)) throw bad(input, `invalid path component ${JSON.stringify(c)}`);
  }
}

function build(input: string, domain: string, path: string, tag?: string, digest?: string): Reference {
  if (!isValidDomain(domain)) throw bad(input, `invalid registry host ${JSON.stringify(domain)}`);
  checkPath(input, path);
  if (domain.length + 1 + path.length > MAX_NAME_LENGTH) throw bad(input, `repository name longer than ${MAX_NAME_LENGTH} characters`);
  return { domain, path, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/**
 * Parses a fully qualified reference ("host/path[:tag][@digest]"): the first component must be a host.
 * Nothing is defaulted.
 */
export function parseReference(input: string): Reference {
  if (!input) throw bad(input, 'empty reference');
  const { name, tag, digest } = splitObject(input, input);
  const slash = name.indexOf('/');
  if (slash < 0 || !looksLikeDomain(name.slice(0, slash))) throw bad(input, 'not fully qualified: missing registry host');
  return build(input, name.slice(0, slash), name.slice(slash + 1), tag, digest);
}

/**
 * Parses a reference the way `docker pull` and `ctr` read one: "busybox" → docker.io/library/busybox:latest,
 * "index.docker.io" → docker.io, the tag "latest" when neither tag nor digest is given.
 */
export function parseNormalizedReference(input: string): Reference {
  if (!input) throw bad(input, 'empty reference');
  if (/^[a-f0-9]{64}$/.test(input)) throw bad(input, 'cannot be a 64-character hexadecimal string (an image id)');
  const { name, tag, digest } = splitObject(input, input);
  let domain = DEFAULT_DOMAIN;
  let path = name;
  const slash = name.indexOf('/');
  if (slash >= 0 && looksLikeDomain(name.slice(0, slash))) {
    domain = name.slice(0, slash);
    path = name.slice(slash + 1);
  } else if (name.startsWith('[') || (slash < 0 && looksLikeDomain(name) && name !== 'localhost' && /[:[]/.test(name))) {
    throw bad(input, 'missing repository name after registry host');
  }
  if (domain === 'index.docker.io') domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = `library/${path}`;
  return build(input, domain, path, tag ?? (digest ? undefined : DEFAULT_TAG), digest);
}

/** "domain/path" */
export function repositoryName(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The canonical string: "domain/path[:tag][@digest]". */
export function formatReference(ref: Reference): string {
  return repositoryName(ref) + (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest ? `@${ref.digest}` : '');
}

/** The short form users type: docker.io and library/ dropped ("busybox:latest"). */
export function familiarReference(ref: Reference): string {
  let name = repositoryName(ref);
  if (ref.domain === DEFAULT_DOMAIN) name = ref.path.startsWith('library/') && ref.path.split('/').length === 2 ? ref.path.slice(8) : ref.path;
  return name + (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest ? `@${ref.digest}` : '');
}

/** The tag or digest used to address the manifest in the registry (digest wins). */
export function objectOf(ref: Reference): string {
  const object = ref.digest ?? ref.tag;
  if (!object) throw errInvalidArgument(`reference ${formatReference(ref)}: no tag or digest`);
  return object;
}
