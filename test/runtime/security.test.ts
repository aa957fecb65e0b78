// Isolation that must hold whichever way a container is made (berth-runc and the shim's fast path), checked
// against runc where runc behaves the same: device rules over listed devices, --no-pivot under a user
// namespace, hooks under the container's seccomp filter and in its root, sysctls.
import test from 'ava';
import { readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { emulateDeviceRules } from '../../runtimes/cgroups/device-rules.ts';
import { runEach, scriptBundle } from './observe.ts';

test.after.always(() => {
  for (const h of readdirSync('/sys/fs/cgroup')) { try { rmdirSync(join('/sys/fs/cgroup', h, 'observed')); } catch { /* in use or absent */ } }
});

const KMSG = { path: '/dev/kmsg', type: 'c', major: 1, minor: 11, fileMode: 0o666, uid: 0, gid: 0 };
// Opening /dev/kmsg for writing needs no CAP_SYSLOG: the device cgroup alone decides.
const WRITE_KMSG = '[ -c /dev/kmsg ] && echo node-made; (echo berth-device-test > /dev/kmsg) 2>&1 | grep -o "Operation not permitted"; echo done';

test.serial('devices: a deny rule wins over linux.devices (the node is made, opening it is EPERM), as runc', async (t) => {
  const bundle = scriptBundle(t, WRITE_KMSG, (s) => {
    s.linux.devices = [KMSG];
    s.linux.resources.devices = [{ allow: false, access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 11, access: 'rwm' }];
  });
  const seen = await runEach(t, ['runc', 'berth-runc', 'fast'], bundle);
  for (const way of ['runc', 'berth-runc', 'fast'] as const) t.is(seen[way].stdout, 'node-made\nOperation not permitted\ndone\n', way);
});

test.serial('devices: a listed device is usable once a rule allows it, as runc', async (t) => {
  const bundle = scriptBundle(t, WRITE_KMSG, (s) => {
    s.linux.devices = [KMSG];
    s.linux.resources.devices = [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 11, access: 'rw' }];
  });
  const seen = await runEach(t, ['runc', 'berth-runc', 'fast'], bundle);
  for (const way of ['runc', 'berth-runc', 'fast'] as const) t.is(seen[way].stdout, 'node-made\ndone\n', way);
});

test('device rules reduce as the v1 controller holds them: exceptions to a default, in order', (t) => {
  t.deepEqual(emulateDeviceRules([{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 11, access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 11, access: 'w' }]),
    { defaultAllow: false, exceptions: [{ type: 'c', major: 1, minor: 11, access: 'rm' }] });
  t.deepEqual(emulateDeviceRules([{ allow: true, access: 'rwm' }, { allow: false, type: 'b', major: 8, access: 'rwm' }]),
    { defaultAllow: true, exceptions: [{ type: 'b', major: 8, minor: -1, access: 'rwm' }] });
  t.deepEqual(emulateDeviceRules([{ allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, { allow: false, type: 'a', access: 'rwm' }]),
    { defaultAllow: false, exceptions: [] });
  // The kernel would keep c *:* and let 1:11 through: refused, as runc refuses it.
  t.throws(() => emulateDeviceRules([{ allow: true, type: 'c', access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 11, access: 'rwm' }]),
    { message: /devices\[1\].*cannot punch a hole in the earlier wildcard rule c \*:\*/ });
});

test.serial('sysctls are written before /proc/sys turns read-only (Docker\'s and Podman\'s), as runc', async (t) => {
  const bundle = scriptBundle(t, 'cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/ping_group_range /proc/sys/kernel/shmmni; ' +
    '(echo 1 > /proc/sys/net/ipv4/ip_unprivileged_port_start) 2>/dev/null && echo writable || echo read-only', (s) => {
    s.linux.sysctl = { 'net.ipv4.ip_unprivileged_port_start': '0', 'net.ipv4.ping_group_range': '0 2147483647', 'kernel.shmmni': '1000' };
  });
  const seen = await runEach(t, ['runc', 'berth-runc', 'fast'], bundle);
  for (const way of ['runc', 'berth-runc', 'fast'] as const) t.deepEqual([seen[way].status, seen[way].stdout], [0, '0\n0\t2147483647\n1000\nread-only\n'], way);
});

test.serial('a sysctl of a namespace the container shares with the host is refused, as runc refuses it', async (t) => {
  const bundle = scriptBundle(t, 'true', (s) => {
    s.linux.namespaces = s.linux.namespaces.filter((n: { type: string }) => n.type !== 'network');
    s.linux.sysctl = { 'net.ipv4.ip_forward': '1' };
  });
  const seen = await runEach(t, ['runc', 'berth-runc', 'fast'], bundle);
  t.not(seen.runc.status, 0);
  for (const way of ['berth-runc', 'fast'] as const) {
    t.not(seen[way].status, 0, way);
    t.regex(seen[way].stderr, /linux\.sysctl "net\.ipv4\.ip_forward": is not allowed in the host's network namespace/, way);
  }
});

test.serial('hooks: startContainer runs under the container\'s seccomp filter, createContainer in its root directory, as runc', async (t) => {
  const bundle = scriptBundle(t, 'cat /started /created-here', (s) => {
    s.root.readonly = false;
    s.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] };
    s.hooks = {
      // Resolved in the runtime's view: the host's sh, cwd the container's rootfs.
      createContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'echo created-in-root > ./created-here'] }],
      // Resolved in the container: its busybox sh, with the process's filter loaded.
      startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'mkdir /hook-dir 2>/dev/null && echo mkdir-allowed > /started || echo mkdir-filtered > /started'] }],
    };
  });
  const seen = await runEach(t, ['runc', 'berth-runc', 'fast'], bundle);
  for (const way of ['runc', 'berth-runc', 'fast'] as const) t.deepEqual([seen[way].status, seen[way].stdout], [0, 'mkdir-filtered\ncreated-in-root\n'], way);
});

// --no-pivot leaves the host's root below the container's: a full proc or sysfs visible there would let a user
// namespace mount a fresh (unmasked) one.
test.serial('--no-pivot: a user namespace made inside the container cannot mount a fresh proc, as with runc', async (t) => {
  const bundle = scriptBundle(t, 'mkdir -p /tmp/p; unshare -mrpf sh -c "mount -t proc proc /tmp/p && echo mounted || echo refused"', (s) => {
    s.root.readonly = false;
    // Mapping root in the new user namespace needs CAP_SETFCAP (runc's bats test adds it the same way).
    for (const set of ['bounding', 'permitted', 'effective']) s.process.capabilities[set].push('CAP_SETFCAP');
  });
  const seen = await runEach(t, ['runc', 'berth-runc', 'fast'], bundle, { noPivot: true });
  for (const way of ['runc', 'berth-runc', 'fast'] as const) t.deepEqual([seen[way].status, seen[way].stdout.trim().split('\n').pop()], [0, 'refused'], way);
});

test.serial('--no-pivot with a user namespace of its own is refused, saying why', async (t) => {
  const bundle = scriptBundle(t, 'true', (s) => {
    s.linux.namespaces.push({ type: 'user' });
    s.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    s.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  });
  const seen = await runEach(t, ['berth-runc', 'fast'], bundle, { noPivot: true });
  for (const way of ['berth-runc', 'fast'] as const) {
    t.not(seen[way].status, 0, way);
    t.regex(seen[way].stderr, /--no-pivot with a user namespace is not supported/, way);
  }
});
