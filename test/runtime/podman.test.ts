// Debian's podman (with conmon and its stock containers.conf) driving berth-runc as its OCI runtime, with
// private storage and state: run, run -d, exec, top, logs, pause/unpause, stats, stop, rm -f, -t, --memory.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxImage, writeOciLayout } from '../helpers/image.ts';
import { tempDir } from '../helpers/tmp.ts';
import { CLI } from './helpers.ts';

const havePodman = spawnSync('podman', ['--version']).status === 0 && spawnSync('conmon', ['--version']).status === 0;

/**
 * Stock podman asks for RLIMIT_NOFILE 1048576; raising a hard limit needs CAP_SYS_RESOURCE, which some hosts
 * (this machine kind) withhold from root, and then runc fails alike. There the limits given are ones the host
 * allows.
 */
function ulimitFlags(): string[] {
  const capEff = /CapEff:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  if ((BigInt(`0x${capEff}`) >> 24n) & 1n) return [];
  const hard = /Max open files\s+\d+\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? '1024';
  return ['--ulimit', `nofile=${hard}:${hard}`, '--ulimit', 'nproc=4096:4096'];
}

interface Podman { (args: string[], timeout?: number): { status: number; stdout: string; stderr: string } }

async function podmanWithBerthRunc(t: Parameters<typeof tempDir>[0]): Promise<{ podman: Podman; image: string }> {
  const dir = tempDir(t, 'podman-');
  const wrapper = join(dir, 'berth-runc');
  writeFileSync(wrapper, `#!/bin/sh\nunset NODE_EXTRA_CA_CERTS\nexec ${process.execPath} ${CLI} "$@"\n`);
  chmodSync(wrapper, 0o755);
  const global = ['--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), '--tmpdir', join(dir, 'tmp'), '--storage-driver', 'vfs',
    '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', wrapper];
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const podman: Podman = (args, timeout = 120_000) => {
    const r = spawnSync('podman', [...global, ...args], { encoding: 'utf8', env, timeout, stdio: ['ignore', 'pipe', 'pipe'] });
    return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  t.teardown(() => { podman(['rm', '--all', '--force']); });
  // podman names an oci: image after its path, which must be lowercase (scratch directories are not).
  const layout = join(tmpdir(), `berth-podman-layout-${process.pid}-${layouts++}`);
  writeOciLayout(layout, await busyboxImage(), 'latest');
  t.teardown(() => rmSync(layout, { recursive: true, force: true }));
  const pulled = podman(['pull', `oci:${layout}:latest`]);
  if (pulled.status !== 0) throw new Error(`podman pull: ${pulled.stderr}`);
  return { podman, image: pulled.stdout.trim().split('\n').pop()! };
}

let layouts = 0;
const runFlags = () => ['--network', 'none', ...ulimitFlags()];

if (!havePodman) test('podman drives berth-runc', (t) => { t.pass('podman or conmon is not installed'); });
else {
  test.serial('podman run, run -t and exit statuses through berth-runc; podman info names it', async (t) => {
    const { podman, image } = await podmanWithBerthRunc(t);
    t.regex(podman(['info', '--format', '{{.Host.OCIRuntime.Version}}']).stdout, /berth-runc version \d+\.\d+\.\d+/);
    const run = podman(['run', '--rm', ...runFlags(), image, 'sh', '-c', 'echo hello from $(hostname); id -u']);
    t.is(run.status, 0, run.stderr);
    t.regex(run.stdout, /^hello from \S+\n0\n$/);
    const tty = podman(['run', '--rm', '-t', ...runFlags(), image, 'sh', '-c', 'tty']);
    t.is(tty.status, 0, tty.stderr);
    t.regex(tty.stdout, /^\/dev\/pts\/0\r?\n$/);
    t.is(podman(['run', '--rm', ...runFlags(), image, 'sh', '-c', 'exit 3']).status, 3);
  });

  test.serial('podman run -d, exec, top, logs, pause, unpause, stats, stop and rm -f of a container with --memory', async (t) => {
    const { podman, image } = await podmanWithBerthRunc(t);
    const run = podman(['run', '-d', '--memory', '64m', ...runFlags(), image, 'sh', '-c', 'echo started; exec sleep 1000']);
    t.is(run.status, 0, run.stderr);
    const id = run.stdout.trim();
    const exec = podman(['exec', id, 'sh', '-c', 'echo exec-ok; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max']);
    t.is(exec.status, 0, exec.stderr);
    t.is(exec.stdout, `exec-ok\n${64 << 20}\n`);
    const top = podman(['top', id]);
    t.is(top.status, 0, top.stderr);
    t.regex(top.stdout, /\n\S+\s+1\s+0\s.*sleep 1000/);
    t.regex(podman(['logs', id]).stdout, /^started\n/);
    t.is(podman(['pause', id]).status, 0);
    t.is(podman(['inspect', '--format', '{{.State.Status}}', id]).stdout.trim(), 'paused');
    t.is(podman(['unpause', id]).status, 0);
    t.is(podman(['inspect', '--format', '{{.State.Status}}', id]).stdout.trim(), 'running');
    const stats = podman(['stats', '--no-stream', '--format', '{{.MemUsage}} {{.PIDs}}', id]);
    t.is(stats.status, 0, stats.stderr);
    t.regex(stats.stdout, /\/ 67\.11MB 1\n$/);
    const stop = podman(['stop', '-t', '1', id]);
    t.is(stop.status, 0, stop.stderr);
    t.is(podman(['inspect', '--format', '{{.State.Status}}', id]).stdout.trim(), 'exited');
    t.is(podman(['rm', '-f', id]).status, 0);
    t.is(podman(['ps', '-aq']).stdout.trim(), '');
  });
}
