// Bad input: a clear error naming the problem, a non-zero exit, and nothing left behind (no state dir,
// cgroup, mount or process).
import test from 'ava';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { type Json, makeBundle } from '../helpers/bundle.ts';
import { mountsUnder, tempDir } from '../helpers/tmp.ts';
import { berthRunc, cgroupDirsOf, runtimeRoot, uniqueId } from './helpers.ts';

function refused(t: any, root: string, bundleDir: string, pattern: RegExp): void {
  const id = uniqueId('bad');
  const r = berthRunc(root, ['create', '--bundle', bundleDir, id]);
  t.not(r.status, 0, 'create must fail');
  t.regex(r.stderr, pattern);
  t.is(r.stderr.trim().split('\n').length, 1, 'one line');
  t.false(existsSync(join(root, id)), 'no state dir');
  t.deepEqual(cgroupDirsOf(id), [], 'no cgroup');
  t.deepEqual(mountsUnder(bundleDir), [], 'no mount');
}

const invalidConfigs: [string, (s: Json) => void, RegExp][] = [
  ['ociVersion', (s) => { s.ociVersion = 'banana'; }, /ociVersion: "banana" is not a supported version/],
  ['root.path', (s) => { s.root.path = 42; }, /root.path: must be a non-empty string/],
  ['process.args', (s) => { s.process.args = []; }, /process.args: must be a non-empty array/],
  ['process.cwd', (s) => { s.process.cwd = 'relative'; }, /process.cwd: "relative" must be an absolute path/],
  ['process.user', (s) => { s.process.user.uid = -1; }, /process.user: uid and gid/],
  ['process.env', (s) => { s.process.env = ['NOEQUALS']; }, /process.env: must be an array of "NAME=value"/],
  ['capability', (s) => { s.process.capabilities.bounding.push('CAP_FLY'); }, /unknown capability "CAP_FLY"/],
  ['rlimit type', (s) => { s.process.rlimits = [{ type: 'RLIMIT_BOGUS', soft: 1, hard: 1 }]; }, /unknown rlimit type "RLIMIT_BOGUS"/],
  ['rlimit order', (s) => { s.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 1 }]; }, /soft limit 10 exceeds hard limit 1/],
  ['namespace type', (s) => { s.linux.namespaces.push({ type: 'galaxy' }); }, /unknown namespace type "galaxy"/],
  ['duplicate namespace', (s) => { s.linux.namespaces.push({ type: 'pid' }); }, /namespace pid is listed twice/],
  ['hostname without uts', (s) => { s.linux.namespaces = s.linux.namespaces.filter((n: Json) => n.type !== 'uts'); }, /hostname: setting a hostname needs a new uts namespace/],
  ['id maps without userns', (s) => { s.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }]; }, /uidMappings: id mappings need a user namespace/],
  ['mount destination', (s) => { s.mounts.push({ destination: 'relative', type: 'tmpfs', source: 'tmpfs' }); }, /mounts\[7\].destination: "relative" must be an absolute path/],
  ['mount options', (s) => { s.mounts[0].options = 'ro'; }, /mounts\[0\].options: must be an array of strings/],
  ['hook path', (s) => { s.hooks = { prestart: [{ path: 'relative' }] }; }, /hooks.prestart\[0\].path: must be an absolute path/],
  ['hook timeout', (s) => { s.hooks = { createContainer: [{ path: '/bin/true', timeout: -1 }] }; }, /hooks.createContainer\[0\].timeout: must be a positive integer/],
  ['seccomp', (s) => { s.linux.seccomp = { defaultAction: 'SCMP_ACT_SOMETIMES' }; }, /linux.seccomp.defaultAction: unknown seccomp action "SCMP_ACT_SOMETIMES"/],
  ['terminal without a console socket', (s) => { s.process.terminal = true; }, /process.terminal is true: a --console-socket is needed/],
  ['rootfsPropagation', (s) => { s.linux.rootfsPropagation = 'sideways'; }, /unknown propagation "sideways"/],
];

for (const [name, edit, pattern] of invalidConfigs) {
  test(`invalid config.json (${name}) is refused`, (t) => {
    const bundle = makeBundle(join(tempDir(t), 'b'), { edit });
    refused(t, runtimeRoot(t), bundle.dir, pattern);
  });
}

test('missing bundle, missing config.json, malformed JSON and missing rootfs are refused', (t) => {
  const root = runtimeRoot(t);
  const dir = tempDir(t);
  refused(t, root, join(dir, 'nope'), /bundle .*nope does not exist/);
  mkdirSync(join(dir, 'empty'));
  refused(t, root, join(dir, 'empty'), /has no config.json/);
  const broken = makeBundle(join(dir, 'broken'), { rawConfig: '{"ociVersion": ' });
  refused(t, root, broken.dir, /config.json in .* is not valid JSON/);
  const noRoot = makeBundle(join(dir, 'noroot'));
  rmSync(noRoot.rootfs, { recursive: true });
  refused(t, root, noRoot.dir, /root.path: .*rootfs does not exist/);
});

test('mount destinations that climb out with .. are refused; symlinks out of the root lead inside it, nothing written outside', (t) => {
  const root = runtimeRoot(t);
  const dir = tempDir(t);
  const dots = makeBundle(join(dir, 'dots'), { edit: (s) => { s.mounts.push({ destination: '/../../escaped', type: 'tmpfs', source: 'tmpfs' }); } });
  refused(t, root, dots.dir, /climbs out of the container root/);

  // As runc (securejoin): a symlink is resolved as if the rootfs were /, so an absolute one names a path in the
  // container and `..` stops at its root. test/runtime/mounts.test.ts checks what the process sees.
  const outside = join(dir, 'outside');
  mkdirSync(outside);
  const link = makeBundle(join(dir, 'link'), { args: ['true'], edit: (s) => { s.mounts.push({ destination: '/evil/inner', type: 'tmpfs', source: 'tmpfs' }); } });
  symlinkSync(outside, join(link.rootfs, 'evil'));
  t.is(berthRunc(root, ['run', '--bundle', link.dir, uniqueId('link')]).status, 0);
  t.deepEqual(readdirSync(outside), [], 'nothing created outside the rootfs');
  t.true(existsSync(join(link.rootfs, outside, 'inner')), 'made inside it instead');

  const relLink = makeBundle(join(dir, 'rel'), { args: ['true'], edit: (s) => { s.mounts.push({ destination: '/up/x', type: 'tmpfs', source: 'tmpfs' }); } });
  symlinkSync('../../outside', join(relLink.rootfs, 'up'));
  t.is(berthRunc(root, ['run', '--bundle', relLink.dir, uniqueId('rel')]).status, 0);
  t.deepEqual(readdirSync(outside), []);
  t.true(existsSync(join(relLink.rootfs, 'outside/x')));
});

test('unknown ids, bad signals and unknown commands give clear errors', (t) => {
  const root = runtimeRoot(t);
  t.regex(berthRunc(root, ['kill', 'ghost']).stderr, /container ghost does not exist/);
  t.regex(berthRunc(root, ['start', 'ghost']).stderr, /container ghost does not exist/);
  t.regex(berthRunc(root, ['delete', 'ghost']).stderr, /container ghost does not exist/);
  t.regex(berthRunc(root, ['create', '--bundle', '/', '../x']).stderr, /invalid container id/);
  t.regex(berthRunc(root, ['fly']).stderr, /No help topic for 'fly'/);
  t.regex(berthRunc(root, ['--systemd-cgroup', 'list']).stderr, /no systemd cgroup driver/);
  const bundle = makeBundle(join(tempDir(t), 'b'), { args: ['/bin/sleep', '30'] });
  const id = uniqueId();
  t.is(berthRunc(root, ['create', '--bundle', bundle.dir, id]).status, 0);
  const r = berthRunc(root, ['kill', id, 'SIGNOPE']);
  t.not(r.status, 0);
  t.regex(r.stderr, /unknown signal "SIGNOPE"/);
  t.is(berthRunc(root, ['delete', '--force', id]).status, 0);
});
