// What runsc can do on this host, found by running it: the first platform whose sandbox boots and runs /bin/true
// (systrap, then kvm where /dev/kvm exists, then ptrace: kvm spins under nested PVM, so every trial is bounded and
// killed with its process group), whether it can put the sandbox in the spec's cgroups (else --ignore-cgroups),
// and whether --network=sandbox can take the interfaces of a network namespace (runsc 20221219 refuses every
// namespace on kernels where net.core.rmem_default is per namespace, taking each for the root one). Probed once
// per runsc binary, kernel and /dev/kvm presence, and cached in /run/berth (gone at reboot, as the answer may be).
import { spawn, execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const CACHE_DIR = '/run/berth';
const TRIAL_MS = 10_000;
const PLATFORMS = ['systrap', 'kvm', 'ptrace'];

export interface RunscHost {
  platform: string;
  ignoreCgroups: boolean;
  /** --network=sandbox works with a namespace the spec names. */
  sandboxNetwork: boolean;
  /** Why each rejected choice was rejected (for the shim log and `berth doctor`). */
  rejected: string[];
}

const env = () => {
  const e = { ...process.env };
  delete e.NODE_EXTRA_CA_CERTS;
  return e;
};

function cacheKey(binary: string): string {
  let path = binary;
  try { path = realpathSync(binary.includes('/') ? binary : whichSync(binary)); } catch { /* not found: the trials say so */ }
  let stamp = '';
  try { const s = statSync(path); stamp = `${s.size}:${s.mtimeMs}`; } catch { /* as above */ }
  return JSON.stringify([path, stamp, release(), existsSync('/dev/kvm')]);
}

function whichSync(name: string): string {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (existsSync(join(dir, name))) return join(dir, name);
  }
  return name;
}

const cacheFile = (key: string) => join(CACHE_DIR, `runsc-host-${createHash('sha256').update(key).digest('hex').slice(0, 16)}.json`);

/** The probe's answer if this host has one cached; never runs runsc. */
export function cachedRunscHost(binary: string): RunscHost | undefined {
  const key = cacheKey(binary);
  try {
    const c = JSON.parse(readFileSync(cacheFile(key), 'utf8')) as { key: string; host: RunscHost };
    return c.key === key ? c.host : undefined;
  } catch {
    return undefined;
  }
}

/** Runs `runsc run` of a bundle whose root is the host's / (read-only) and whose process is /bin/true. */
async function trial(binary: string, flags: string[], netns?: string): Promise<string | undefined> {
  mkdirSync(CACHE_DIR, { recursive: true, mode: 0o711 });
  const dir = mkdtempSync(join(CACHE_DIR, 'runsc-probe-'));
  const id = `berth-probe-${process.pid}-${Date.now().toString(36)}`;
  const global = ['--root', join(dir, 'state'), ...flags];
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    ociVersion: '1.0.2', root: { path: '/', readonly: true }, hostname: 'probe',
    process: { terminal: false, user: { uid: 0, gid: 0 }, args: ['/bin/true'], env: ['PATH=/usr/bin:/bin'], cwd: '/' },
    mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }],
    linux: {
      namespaces: ['pid', 'mount', 'ipc', 'uts'].map((type) => ({ type })).concat([{ type: 'network', ...(netns ? { path: netns } : {}) }]),
      cgroupsPath: `/${id}`,
    },
  }));
  try {
    // Pipes, never /dev/null: runsc chowns the stdio it is given to its sandbox user.
    const child = spawn(binary, [...global, 'run', '--bundle', dir, id], { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: env() });
    child.stdin.end();
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdout.resume();
    const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, TRIAL_MS);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
      child.on('error', (e) => { err = e.message; resolve([null, null]); });
      child.on('exit', (c, s) => resolve([c, s]));
    });
    clearTimeout(timer);
    if (code === 0) return undefined;
    if (signal === 'SIGKILL') return `no answer within ${TRIAL_MS / 1000} s`;
    return err.trim().split('\n').pop() || `exit ${code ?? signal}`;
  } finally {
    await run(binary, [...global, 'delete', '--force', id], { timeout: TRIAL_MS, env: env() }).catch(() => undefined);
    killNamed(id);
    rmSync(dir, { recursive: true, force: true });
    removeCgroups(id);
  }
}

/** A sandbox or gofer of a trial that never answered may be in a session of its own and unknown to `delete`
 * (killed before runsc saved its state): each carries the trial's container id on its command line. */
function killNamed(id: string): void {
  let pids: string[] = [];
  try { pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p)); } catch { return; }
  for (const pid of pids) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(id)) process.kill(Number(pid), 'SIGKILL');
    } catch { /* gone */ }
  }
}

/** A network namespace of its own (a sleeping `unshare --net`) for the sandbox network trial. */
async function withNetns<T>(f: (path: string) => Promise<T>): Promise<T> {
  const holder = spawn('unshare', ['--net', 'sleep', '60'], { stdio: 'ignore' });
  holder.on('error', () => undefined); // no unshare: the trial runs in our namespace and fails, as it should
  try {
    const path = `/proc/${holder.pid}/ns/net`;
    for (let i = 0; i < 100 && readlinkOr(path) === readlinkOr('/proc/self/ns/net'); i++) await new Promise((r) => setTimeout(r, 10));
    return await f(path);
  } finally {
    holder.kill('SIGKILL');
  }
}

function readlinkOr(path: string): string {
  try { return readlinkSync(path); } catch { return ''; }
}

/** A trial killed before its delete may leave its cgroups (empty by then). */
function removeCgroups(name: string): void {
  let controllers: string[] = [];
  try { controllers = readdirSync('/sys/fs/cgroup'); } catch { return; }
  for (const c of ['', ...controllers]) {
    try { rmdirSync(join('/sys/fs/cgroup', c, name)); } catch { /* not there */ }
  }
}

async function probe(binary: string): Promise<RunscHost> {
  const rejected: string[] = [];
  let listed = PLATFORMS;
  try {
    const { stdout } = await run(binary, ['help', 'platforms'], { timeout: TRIAL_MS, env: env() });
    listed = stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  } catch { /* an older runsc: try them all */ }
  const candidates = PLATFORMS.filter((p) => listed.includes(p) && (p !== 'kvm' || existsSync('/dev/kvm')));
  for (const platform of candidates) {
    for (const ignoreCgroups of [false, true]) {
      const flags = [`--platform=${platform}`, '--network=none', ...(ignoreCgroups ? ['--ignore-cgroups'] : [])];
      const why = await trial(binary, flags);
      if (why) { rejected.push(`${flags.join(' ')}: ${why}`); continue; }
      const base = [`--platform=${platform}`, ...(ignoreCgroups ? ['--ignore-cgroups'] : [])];
      const net = await withNetns((ns) => trial(binary, [...base, '--network=sandbox'], ns));
      if (net) rejected.push(`--network=sandbox: ${net}`);
      return { platform, ignoreCgroups, sandboxNetwork: !net, rejected };
    }
  }
  throw new Error(`runsc runs no sandbox on this host: ${rejected.join('; ') || `no platform of ${PLATFORMS.join(', ')} is available`}`);
}

const probes = new Map<string, Promise<RunscHost>>();

/** What runsc can do here: from the cache, else probed (once per process, bounded) and cached. */
export function probeRunscHost(binary: string): Promise<RunscHost> {
  const cached = cachedRunscHost(binary);
  if (cached) return Promise.resolve(cached);
  const key = cacheKey(binary);
  let p = probes.get(key);
  if (!p) {
    p = probe(binary).then((host) => {
      const file = cacheFile(key);
      writeFileSync(`${file}.${process.pid}`, JSON.stringify({ key, host }));
      renameSync(`${file}.${process.pid}`, file);
      return host;
    });
    p.catch(() => probes.delete(key));
    probes.set(key, p);
  }
  return p;
}
