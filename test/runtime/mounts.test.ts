// Mounts as the process sees them, made by berth-runc and by the shim's fast path, beside runc where runc
// does the same: recursive read-only binds, mount options that are refused rather than dropped, filesystem
// data, tmpcopyup, destinations behind symlinks (resolved inside the root), and a read-only /dev with submounts.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import { berthRunc } from './helpers.ts';
import { runEach, scriptBundle, type Way } from './observe.ts';

const ALL: Way[] = ['runc', 'berth-runc', 'fast'];
const OURS: Way[] = ['berth-runc', 'fast'];

test.after.always(() => {
  for (const h of readdirSync('/sys/fs/cgroup')) { try { rmdirSync(join('/sys/fs/cgroup', h, 'observed')); } catch { /* in use or absent */ } }
});

/** A host directory with a file and a tmpfs mounted on its `sub` directory (unmounted when the test ends). */
function volumeWithSubmount(t: Parameters<typeof tempDir>[0]): string {
  const dir = tempDir(t, 'volume-');
  mkdirSync(join(dir, 'sub'));
  execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', join(dir, 'sub')]);
  return dir;
}

const TOUCH_BOTH = 'touch /mnt/foo 2>/dev/null && echo top writable || echo top read-only; touch /mnt/sub/bar 2>/dev/null && echo sub writable || echo sub read-only';

for (const [options, expected] of [
  [['rbind', 'ro'], 'top read-only\nsub writable\n'],
  [['rbind', 'rro'], 'top read-only\nsub read-only\n'],
  [['rbind', 'ro', 'rro'], 'top read-only\nsub read-only\n'],
] as const) {
  test.serial(`a bind with ${options.join(',')}: ${expected.replace(/\n/g, ' ').trim()}, as runc`, async (t) => {
    const volume = volumeWithSubmount(t);
    const bundle = scriptBundle(t, TOUCH_BOTH, (s) => { s.mounts.push({ source: volume, destination: '/mnt', options }); });
    const seen = await runEach(t, ALL, bundle);
    for (const way of ALL) t.deepEqual([seen[way].status, seen[way].stdout], [0, expected], way);
  });
}

test.serial('recursive nosuid, noexec and an access-time mode reach every mount below a bind', async (t) => {
  const volume = volumeWithSubmount(t);
  const bundle = scriptBundle(t, 'grep -E " /mnt(/sub)? " /proc/self/mountinfo | awk \'{print $5, $6}\' | sort', (s) => {
    s.mounts.push({ source: volume, destination: '/mnt', options: ['rbind', 'rnosuid', 'rnoexec', 'rnoatime'] });
  });
  const seen = await runEach(t, OURS, bundle);
  for (const way of OURS) {
    t.is(seen[way].status, 0, way);
    const lines = seen[way].stdout.trim().split('\n');
    t.is(lines.length, 2, way);
    for (const line of lines) t.regex(line, /(^|,)nosuid(,|$)/, `${way}: ${line}`), t.regex(line, /noexec/, way), t.regex(line, /noatime/, way);
  }
});

test.serial('an option berth does not know is refused, naming it, where runc would drop it', async (t) => {
  const volume = volumeWithSubmount(t);
  const bundle = scriptBundle(t, 'true', (s) => { s.mounts.push({ source: volume, destination: '/mnt', options: ['rbind', 'rrro'] }); });
  const seen = await runEach(t, OURS, bundle);
  for (const way of OURS) {
    t.not(seen[way].status, 0, way);
    t.regex(seen[way].stderr, /mounts\[\d+\] \(\/mnt\): unknown mount option "rrro" \(a bind mount takes no filesystem data\)/, way);
  }
});

test.serial('filesystem data still reaches the filesystem (tmpfs mode and size), and tmpcopyup copies what the tmpfs covers, as runc', async (t) => {
  const bundle = scriptBundle(t, 'stat -c "%a" /scratch; df -k /scratch | tail -1 | awk \'{print $2}\'; ls -l /etc/copied | grep -v ^total | awk \'{print $1, $3, $NF}\'; cat /etc/copied/file; echo new > /etc/copied/other && echo writable', (s) => {
    s.mounts.push({ destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=700', 'size=2m'] });
    s.mounts.push({ destination: '/etc/copied', type: 'tmpfs', source: 'tmpfs', options: ['tmpcopyup', 'mode=755'] });
  });
  mkdirSync(join(bundle.rootfs, 'etc/copied'));
  writeFileSync(join(bundle.rootfs, 'etc/copied/file'), 'from the image\n', { mode: 0o640 });
  symlinkSync('file', join(bundle.rootfs, 'etc/copied/link'));
  const seen = await runEach(t, ALL, bundle);
  for (const way of ALL) t.deepEqual([seen[way].status, seen[way].stdout], [0, seen.runc.stdout], way);
  t.regex(seen.runc.stdout, /^700\n2048\n-rw-r----- root file\nlrwxrwxrwx root file\nfrom the image\nwritable\n$/);
});

test.serial('a destination behind an absolute symlink is resolved inside the root (/var/run -> /run), as runc', async (t) => {
  const bundle = scriptBundle(t, 'ls -d /run/secrets /var/run/secrets; grep -c " /run/secrets " /proc/self/mountinfo', (s) => {
    s.mounts.push({ destination: '/var/run/secrets', type: 'tmpfs', source: 'tmpfs', options: ['ro'] });
  });
  symlinkSync('/run', join(bundle.rootfs, 'var/run'));
  const seen = await runEach(t, ALL, bundle);
  for (const way of ALL) t.deepEqual([seen[way].status, seen[way].stdout], [0, '/run/secrets\n/var/run/secrets\n1\n'], way);
});

test.serial('symlinks that point out of the root (through .. or at a host path) lead inside it, never out', async (t) => {
  const name = `berth-escape-${process.pid}-${Date.now()}`;
  const bundle = scriptBundle(t, `ls -d /etc/${name}-a /etc/${name}-b`, (s) => {
    s.mounts.push({ destination: `/up/${name}-a`, type: 'tmpfs', source: 'tmpfs' });
    s.mounts.push({ destination: `/abs/${name}-b`, type: 'tmpfs', source: 'tmpfs' });
  });
  symlinkSync('/../../../../etc', join(bundle.rootfs, 'up'));
  symlinkSync('/etc', join(bundle.rootfs, 'abs'));
  const seen = await runEach(t, ALL, bundle);
  for (const way of ALL) t.deepEqual([seen[way].status, seen[way].stdout], [0, `/etc/${name}-a\n/etc/${name}-b\n`], way);
  t.false(existsSync(`/etc/${name}-a`) || existsSync(`/etc/${name}-b`), 'nothing made on the host');
});

test.serial('proc is never mounted through a symlink', async (t) => {
  const bundle = scriptBundle(t, 'true');
  rmdirSync(join(bundle.rootfs, 'proc'));
  symlinkSync('/tmp', join(bundle.rootfs, 'proc'));
  const seen = await runEach(t, ['runc', ...OURS], bundle);
  for (const way of ['runc', ...OURS] as Way[]) t.not(seen[way].status, 0, way);
  for (const way of OURS) t.regex(seen[way].stderr, /mount destination \/proc: proc and sysfs must be mounted on ordinary directory/, way);
});

test.serial('a read-only /dev with submounts (pts, shm, mqueue) under it, as runc', async (t) => {
  const bundle = scriptBundle(t, 'touch /dev/x 2>/dev/null && echo dev writable || echo dev read-only; ls /dev/pts/ptmx /dev/null; echo hi > /dev/shm/f && cat /dev/shm/f; ' +
    'grep -E " /dev " /proc/self/mountinfo | awk \'{print $6}\' | cut -d, -f1', (s) => {
    const dev = s.mounts.find((m: { destination: string }) => m.destination === '/dev');
    dev.options.push('ro');
  });
  const seen = await runEach(t, ALL, bundle);
  for (const way of ALL) t.deepEqual([seen[way].status, seen[way].stdout], [0, 'dev read-only\n/dev/null\n/dev/pts/ptmx\nhi\nro\n'], way);
});

/** A bundle whose container root is host uid 100000: its directories must be open to that user. */
function usernsBundle(t: Parameters<typeof tempDir>[0], script: string, size: number) {
  const bundle = scriptBundle(t, script, userns(size));
  chmodSync(dirname(bundle.dir), 0o755);
  return bundle;
}

const userns = (size: number) => (s: any) => {
  s.linux.namespaces.push({ type: 'user' });
  s.linux.uidMappings = [{ containerID: 0, hostID: 100000, size }];
  s.linux.gidMappings = [{ containerID: 0, hostID: 100000, size }];
};

test.serial('a user namespace with the default mounts: mount points are made as its root (no EOVERFLOW), devpts keeps gid=5 (host 100005 in mountinfo), as runc', async (t) => {
  const bundle = usernsBundle(t, 'id -u; id -g; grep " /dev/pts " /proc/self/mountinfo | grep -o "gid=[0-9]*"; ls -d /dev/shm /dev/mqueue', 65536);
  const seen = await runEach(t, ALL, bundle);
  for (const way of ALL) t.deepEqual([seen[way].status, seen[way].stdout], [0, '0\n0\ngid=100005\n/dev/mqueue\n/dev/shm\n'], way);
});

test.serial('a user namespace that does not map gid 5: devpts is mounted without gid=5 (runc fails on it)', async (t) => {
  const bundle = usernsBundle(t, 'grep " /dev/pts " /proc/self/mountinfo | grep -c "gid=5"; ls -d /dev/pts/ptmx', 1);
  const seen = await runEach(t, OURS, bundle);
  for (const way of OURS) t.deepEqual([seen[way].stdout, seen[way].status], ['0\n/dev/pts/ptmx\n', 0], way);
});

test.serial('a user namespace binds sources its root cannot reach (a directory on the way is closed to it), as runc', async (t) => {
  const bundle = usernsBundle(t, 'cat /mnt/one/file /mnt/two/file', 65536);
  const spec = JSON.parse(readFileSync(join(bundle.dir, 'config.json'), 'utf8'));
  for (const name of ['one', 'two']) {
    // closed/<name>/dir: host root's, mode 0700 on `closed`, so host uid 100000 cannot search it.
    const closed = join(tempDir(t, 'closed-'), name);
    mkdirSync(join(closed, 'dir'), { recursive: true });
    writeFileSync(join(closed, 'dir', 'file'), `${name}\n`);
    chmodSync(closed, 0o700);
    spec.mounts.push({ source: join(closed, 'dir'), destination: `/mnt/${name}`, options: ['bind'] });
    mkdirSync(join(bundle.rootfs, 'mnt', name), { recursive: true }); // the image's root: not the container root's to make
  }
  writeFileSync(join(bundle.dir, 'config.json'), JSON.stringify(spec));
  const seen = await runEach(t, ALL, bundle);
  for (const way of ALL) t.deepEqual([seen[way].status, seen[way].stdout], [0, 'one\ntwo\n'], way);
});

test('features lists the mount options berth-runc takes, recursive ones and tmpcopyup included', (t) => {
  const features = JSON.parse(berthRunc(join(tempDir(t), 'root'), ['features']).stdout);
  for (const option of ['rbind', 'ro', 'rro', 'rrw', 'rnosuid', 'rnoatime', 'rslave', 'tmpcopyup', 'nosymfollow']) t.true(features.mountOptions.includes(option), option);
});
