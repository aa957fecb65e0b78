import test from 'ava';
import { closeSync, openSync } from 'node:fs';
import { spawnProcess } from '../../api/spawn.ts';

const collect = (s: NodeJS.ReadableStream) => new Promise<string>((resolve) => { let out = ''; s.on('data', (d) => { out += d; }); s.on('end', () => resolve(out)); });

test('spawnProcess: pipes by fd, environment, cwd, argv0, and the exit status once reaped', async (t) => {
  const p = spawnProcess('/bin/sh', ['-c', 'read line; echo "$0 $line $FOO $(pwd)"; echo err >&2; echo three >&3; exit 7'], {
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'], env: { FOO: 'bar', PATH: '/usr/bin:/bin' }, cwd: '/tmp', argv0: 'named',
  });
  const [out, err, three] = [collect(p.stdio[1]!), collect(p.stdio[2]!), collect(p.stdio[3]!)];
  p.stdio[0]!.end('hello\n');
  t.deepEqual(await p.exited, { code: 7, signal: null });
  t.deepEqual(p.exit, { code: 7, signal: null });
  t.is(await out, 'named hello bar /tmp\n');
  t.is(await err, 'err\n');
  t.is(await three, 'three\n');
});

test('spawnProcess: ignored stdio is /dev/null; death by signal is reported; the child starts with SIGPIPE at its default', async (t) => {
  const p = spawnProcess('/bin/sh', ['-c', 'grep SigIgn /proc/self/status; read x; echo "[$x]"; kill -TERM $$'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const out = collect(p.stdio[1]!);
  t.deepEqual(await p.exited, { code: null, signal: 'SIGTERM' });
  const [ignored, read] = (await out).trim().split('\n');
  t.is(BigInt(`0x${ignored!.split(/\s+/)[1]}`) & (1n << 12n), 0n, 'SIGPIPE (13) not ignored');
  t.is(read, '[]');
});

test('spawnProcess: a file that does not exist is refused with ENOENT, and a session of its own with detached', async (t) => {
  const err = t.throws(() => spawnProcess('/nonexistent/program', [], { stdio: ['ignore'] }));
  t.is((err as NodeJS.ErrnoException).code, 'ENOENT');
  const p = spawnProcess('/bin/sh', ['-c', 'ps -o sid= -p $$'], { stdio: ['ignore', 'pipe'], detached: true });
  const out = collect(p.stdio[1]!);
  await p.exited;
  t.is(Number((await out).trim()), p.pid);
});

test('spawnProcess: none of our fds but the ones given reach the child, close-on-exec or not', async (t) => {
  const { libc } = await import('../../api/libc.ts');
  const { load, DataType } = libc();
  const fd = openSync('/dev/null', 'r');
  t.teardown(() => closeSync(fd));
  // As lmdb leaves its files: inheritable.
  t.is(load({ library: 'libc', funcName: 'fcntl', retType: DataType.I32, paramsType: [DataType.I32, DataType.I32, DataType.I32], paramsValue: [fd, 2 /* F_SETFD */, 0] }), 0);
  const p = spawnProcess('/bin/ls', ['/proc/self/fd'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const out = await collect(p.stdio[1]!);
  await p.exited;
  const fds = out.trim().split('\n').map(Number);
  t.false(fds.includes(fd), `fd ${fd} was inherited: ${fds.join(' ')}`);
  t.true(fds.every((n) => n <= 3), `only stdio (and ls's own directory fd): ${fds.join(' ')}`);
});
