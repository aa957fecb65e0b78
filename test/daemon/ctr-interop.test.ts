// containerd's own ctr (Debian's 1.6.20) driving berthd: what an operator with containerd's tools sees.
import test from 'ava';
import { runOnPty } from '../helpers/pty.ts';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LocalContentStore } from '../../content/local.ts';
import { pushImage } from '../../daemon/remotes/push.ts';
import { busyboxImage, writeImageToStore } from '../helpers/image.ts';
import { startRegistry } from '../helpers/registry.ts';
import { tempDir } from '../helpers/tmp.ts';
import { REPO, startDaemonProcess } from './helpers.ts';

const run = promisify(execFile);

function ctr(address: string) {
  return async (...args: string[]) => (await run('ctr', ['-a', address, ...args], { encoding: 'utf8' })).stdout;
}

test('ctr version, namespaces and plugins against berthd', async (t) => {
  const d = await startDaemonProcess(t);
  const c = ctr(d.address);
  const version = await c('version');
  t.regex(version, /Server:\s+Version:\s+v0\.\d+\.\d+/);
  await c('namespaces', 'create', 'team-a', 'owner=ops');
  t.regex(await c('namespaces', 'ls'), /team-a\s+owner=ops/);
  const plugins = await c('plugins', 'ls');
  t.regex(plugins, /io\.containerd\.grpc\.v1\s+content\s+-\s+ok/);
  // berthd's runtime classes are plugins too: a class this host cannot run is skipped, as containerd skips one.
  t.regex(plugins, /berth\.runtime-class\.v1\s+gvisor\s+linux\/amd64\s+ok/);
  // vm where QEMU and the guest image are (npm run build makes it where the guest kernel is installed), else skip.
  const vmUsable = existsSync(join(REPO, 'dist', 'vm', 'manifest.json')) && existsSync('/usr/bin/qemu-system-x86_64');
  t.regex(plugins, vmUsable ? /berth\.runtime-class\.v1\s+vm\s+linux\/amd64\s+ok/ : /berth\.runtime-class\.v1\s+vm\s+linux\/amd64\s+skip/);
  const vm = await c('plugins', 'ls', '--detailed', 'type==berth.runtime-class.v1', 'id==vm');
  t.regex(vm, /Exports:\s+[^]*isolation\s+vm/);
});

test('ctr content ingest, ls, get, label and rm against berthd', async (t) => {
  const d = await startDaemonProcess(t);
  const c = ctr(d.address);
  const data = 'hello from ctr\n';
  const { createHash } = await import('node:crypto');
  const digest = 'sha256:' + createHash('sha256').update(data).digest('hex');
  const child = execFile('ctr', ['-a', d.address, 'content', 'ingest', '--expected-size', String(data.length), '--expected-digest', digest, 'ingest-1']);
  child.stdin!.end(data);
  await new Promise((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve(code) : reject(new Error(`ctr content ingest exited ${code}`)))));
  t.regex(await c('content', 'ls'), new RegExp(digest));
  t.is(await c('content', 'get', digest), data);
  await c('content', 'label', digest, 'containerd.io/gc.root=yes');
  t.regex(await c('content', 'ls'), /containerd\.io\/gc\.root=yes/);
  await c('content', 'rm', digest);
  t.notRegex(await c('content', 'ls'), new RegExp(digest));
  const bad = await t.throwsAsync(run('ctr', ['-a', d.address, 'content', 'get', 'sha256:' + '0'.repeat(64)]));
  t.regex((bad as any).stderr, /not found/);
});

test('ctr content fetch from a registry into berthd, then ls and rm', async (t) => {
  const registry = await startRegistry(t);
  const image = await busyboxImage({ tag: 'ctr' });
  const src = await LocalContentStore.open(join(tempDir(t), 'content'));
  await writeImageToStore(src, image);
  const ref = `${registry.host}/test/busybox:ctr`;
  await pushImage(ref, { store: src, target: image.target, plainHttp: true });
  const d = await startDaemonProcess(t);
  const c = ctr(d.address);
  await c('content', 'fetch', '--plain-http', ref);
  const images = await c('images', 'ls');
  t.regex(images, new RegExp(`${ref.replace(/[.]/g, '\\.')}\\s+application/vnd\\.oci\\.image\\.manifest\\.v1\\+json\\s+${image.target.digest}`));
  const content = await c('content', 'ls', '-q');
  for (const digest of image.blobs.keys()) t.true(content.includes(digest), `blob ${digest} fetched`);
  await c('images', 'rm', '--sync', ref);
  t.is((await c('images', 'ls', '-q')).trim(), '');
  t.is((await c('content', 'ls', '-q')).trim(), '', 'garbage collection removed the unreferenced blobs');
});

test.serial('ctr images pull (client-side unpack through Snapshots and Diff) and ctr run --rm on berthd, through berth\'s shim and runc\'s (with and without runc options)', async (t) => {
  const registry = await startRegistry(t);
  const image = await busyboxImage({ tag: 'ctr-run' });
  const src = await LocalContentStore.open(join(tempDir(t), 'content'));
  await writeImageToStore(src, image);
  const ref = `${registry.host}/test/busybox:run`;
  await pushImage(ref, { store: src, target: image.target, plainHttp: true });
  const d = await startDaemonProcess(t);
  const c = ctr(d.address);
  await c('images', 'pull', '--plain-http', ref);
  t.regex(await c('snapshots', 'ls'), /sha256:[0-9a-f]{64}\s+.*Committed/);
  const berthRun = await c('run', '--rm', '--runtime', 'io.containerd.berth.v2', ref, 'ctr-berth', 'sh', '-c', 'echo ran by $(cat /etc/berth-release)');
  t.is(berthRun, 'ran by berth test image ctr-run\n');
  const runcRun = await c('run', '--rm', '--runtime', 'io.containerd.runc.v2', ref, 'ctr-runc', 'cat', '/etc/berth-release');
  t.is(runcRun, 'berth test image ctr-run\n');
  // With runc options, which reach `containerd-shim-runc-v2 start` as containerd writes them (the whole Any).
  const runcOptions = await c('run', '--rm', '--runtime', 'io.containerd.runc.v2', '--runc-binary', 'runc', ref, 'ctr-runc-opts', 'cat', '/etc/berth-release');
  t.is(runcOptions, 'berth test image ctr-run\n');
  t.is((await c('containers', 'ls', '-q')).trim(), '');
  t.is((await c('tasks', 'ls', '-q')).trim(), '');
});

test.serial('ctr tasks ls, exec, metrics, kill and delete on berthd', async (t) => {
  // Container ids, and so cgroup paths (/default/<id>), are the host's: unlike those of the CLI tests beside us.
  const d = await startDaemonProcess(t);
  const c = ctr(d.address);
  const archive = join(tempDir(t), 'busybox.tar');
  await run(process.execPath, ['--import', 'tsx', join(REPO, 'scripts', 'demo-image.ts'), archive, 'ctr-tasks']);
  await c('images', 'import', '--base-name', 'berth.local/busybox', archive);
  await c('run', '-d', '--runtime', 'io.containerd.berth.v2', 'berth.local/busybox:ctr-tasks', 'ctr-svc', 'sleep', '300');
  t.regex(await c('tasks', 'ls'), /ctr-svc\s+\d+\s+RUNNING/);
  t.is(await c('tasks', 'exec', '--exec-id', 'e1', 'ctr-svc', 'sh', '-c', 'echo from exec'), 'from exec\n');
  // From a real terminal: ctr exec -t gets a pty in the container, and ctr run -t a whole container on one.
  const exec = await runOnPty(['ctr', '-a', d.address, 'tasks', 'exec', '-t', '--exec-id', 'e2', 'ctr-svc', 'sh', '-c', '[ -t 0 ] && tty; exit 3'], { timeoutMs: 30_000 });
  t.is(exec.code, 3, exec.screen);
  t.regex(exec.screen, /\/dev\/pts\/\d+/);
  const runTty = await runOnPty(['ctr', '-a', d.address, 'run', '--rm', '-t', '--runtime', 'io.containerd.berth.v2', 'berth.local/busybox:ctr-tasks', 'ctr-tty1',
    'sh', '-c', 'echo type-now; read line; echo got:$line; exit 9'], { typed: [{ when: /type-now/, text: 'over ctr\r' }], timeoutMs: 30_000 });
  t.is(runTty.code, 9, runTty.screen);
  t.regex(runTty.screen, /got:over ctr\r+\n/);
  const metrics = await c('tasks', 'metrics', 'ctr-svc');
  t.regex(metrics, /memory\.usage_in_bytes\s+\d+/);
  t.regex(metrics, /pids\.current\s+[1-9]/);
  await c('tasks', 'kill', '-s', 'SIGKILL', 'ctr-svc');
  for (let i = 0; i < 50 && !/STOPPED/.test(await c('tasks', 'ls')); i++) await new Promise((r) => setTimeout(r, 50));
  t.regex(await c('tasks', 'ls'), /ctr-svc\s+\d+\s+STOPPED/);
  await c('tasks', 'delete', 'ctr-svc');
  await c('containers', 'rm', 'ctr-svc');
  t.is((await c('containers', 'ls', '-q')).trim(), '');
});
