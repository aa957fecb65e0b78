// The berth CLI against berthd: each verb as an operator types it, output checked as they would read it.
import test from 'ava';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { LocalContentStore } from '../../content/local.ts';
import { pushImage } from '../../daemon/remotes/push.ts';
import { busyboxImage, writeImageToStore } from '../helpers/image.ts';
import { registryWithImage, startRegistry } from '../helpers/registry.ts';
import { tempDir } from '../helpers/tmp.ts';
import { startDaemon } from '../daemon/helpers.ts';
import { berth } from './helpers.ts';

test('version, namespaces and the namespace flag and environment', async (t) => {
  const d = await startDaemon(t);
  const version = await berth(d.address, ['version']);
  t.is(version.code, 0, version.stderr);
  t.regex(version.stdout, /Server:\n\s+Version:\s+v0\.1\.0/);
  t.is((await berth(d.address, ['namespaces', 'create', 'team-a', 'owner=ops'])).code, 0);
  t.is((await berth(d.address, ['ns', 'label', 'team-a', 'owner=', 'tier=gold'])).code, 0);
  const ls = await berth(d.address, ['ns', 'ls']);
  t.regex(ls.stdout, /^NAME\s+LABELS\nteam-a\s+tier=gold\n$/);
  t.is((await berth(d.address, ['namespaces', 'ls', '-q'])).stdout, 'team-a\n');
  t.deepEqual(JSON.parse((await berth(d.address, ['namespaces', 'ls', '--json'])).stdout), [{ name: 'team-a', labels: { tier: 'gold' } }]);
  await berth(d.address, ['-n', 'team-b', 'leases', 'create', '--id', 'l1']);
  t.regex((await berth(d.address, ['leases', 'ls', '-q'], { env: { BERTH_NAMESPACE: 'team-b' } })).stdout, /^l1\n$/);
  t.is((await berth(d.address, ['leases', 'ls', '-q'], { env: { CONTAINERD_NAMESPACE: 'team-a' } })).stdout, '');
});

test('images pull prints plain progress lines when not a terminal, then ls, tag, label and rm', async (t) => {
  const image = await busyboxImage({ tag: 'cli' });
  const { ref } = await registryWithImage(t, image, 'cli/busybox:1');
  const d = await startDaemon(t);
  const pull = await berth(d.address, ['images', 'pull', '--skip-unpack', ref]);
  t.is(pull.code, 0, pull.stderr);
  t.is(pull.stdout, `${ref} ${image.target.digest}\n`);
  t.regex(pull.stderr, new RegExp(`${ref.replace(/[.]/g, '\\.')}: resolving`));
  for (const l of image.manifests[0]!.layers) t.regex(pull.stderr, new RegExp(`${l.descriptor.digest.slice(7, 19)}: done`));
  t.notRegex(pull.stderr, /\x1b\[/, 'no terminal escapes in plain output');
  const ls = await berth(d.address, ['images', 'ls']);
  t.regex(ls.stdout, new RegExp(`${ref.replace(/[.]/g, '\\.')}\\s+application/vnd\\.oci\\.image\\.manifest\\.v1\\+json\\s+${image.target.digest}\\s+\\d+\\.\\d MiB\\s+linux/amd64\\s+-`));
  t.is((await berth(d.address, ['images', 'tag', ref, 'mine:latest'])).code, 0);
  t.regex((await berth(d.address, ['images', 'label', 'mine:latest', 'team=a'])).stdout, /team=a/);
  t.deepEqual((await berth(d.address, ['i', 'ls', '-q'])).stdout.trim().split('\n').sort(), ['mine:latest', ref].sort());
  const rm = await berth(d.address, ['images', 'rm', '--sync', ref, 'mine:latest', 'nope:1']);
  t.is(rm.code, 1, 'a missing image fails the command');
  t.regex(rm.stderr, /^berth: image "nope:1" in namespace default: not found\n$/);
  t.is((await berth(d.address, ['images', 'ls', '-q'])).stdout, '');
  t.is((await berth(d.address, ['content', 'ls', '-q'])).stdout, '', 'their blobs were collected');
});

test('content ls, get, label, rm and active', async (t) => {
  const d = await startDaemon(t);
  const c = d.client('default');
  const data = Buffer.from('blob for the cli\n');
  const { sha256Digest } = await import('../../api/digest.ts');
  const digest = sha256Digest(data);
  const w = c.open('containerd.services.content.v1.Content', 'Write');
  w.send({ action: 'COMMIT', ref: 'cli', total: data.length, expected: digest, data, labels: { 'containerd.io/gc.root': 'x' } });
  w.end();
  for await (const _ of w) { /* drain the acknowledgements */ }
  t.regex((await berth(d.address, ['content', 'ls'])).stdout, new RegExp(`${digest}\\s+17 B\\s+.*containerd\\.io/gc\\.root=x`));
  t.is((await berth(d.address, ['content', 'get', digest])).stdout, data.toString());
  t.regex((await berth(d.address, ['content', 'label', digest, 'containerd.io/gc.root=', 'a=b'])).stdout, /^a=b\n$/);
  t.regex((await berth(d.address, ['content', 'active'])).stdout, /^REF\s+SIZE\s+AGE\n$/);
  t.is((await berth(d.address, ['content', 'rm', digest])).code, 0);
  const gone = await berth(d.address, ['content', 'get', digest]);
  t.is(gone.code, 1);
  t.regex(gone.stderr, /not found/);
});

test('errors are one clear line: unknown command, unknown flag, no daemon', async (t) => {
  const d = await startDaemon(t);
  const unknown = await berth(d.address, ['frobnicate']);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /^berth: unknown command "frobnicate"\n$/);
  const flag = await berth(d.address, ['images', 'ls', '--bogus']);
  t.is(flag.code, 1);
  t.is(flag.stderr, 'berth: flag provided but not defined: -bogus\n');
  const nodaemon = await berth(join(tempDir(t), 'none.sock'), ['images', 'ls']);
  t.is(nodaemon.code, 1);
  t.regex(nodaemon.stderr, /^berth: cannot reach the daemon: .*ENOENT.* \(is berthd running\? set --address or \$BERTH_ADDRESS\)\n$/);
  const runNowhere = await berth(join(tempDir(t), 'none.sock'), ['run', '--rm', 'busybox:latest', 'x', '/bin/true']);
  t.regex(runNowhere.stderr, /^berth: cannot reach the daemon: .*ENOENT/, 'run says the daemon is missing, not the image');
  t.notRegex(nodaemon.stderr, /\n\s+at /, 'no stack trace without --debug');
  const help = await berth(d.address, ['images', 'pull', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /--plain-http/);
});

test('images push to a registry, export an OCI archive, import it into another namespace', async (t) => {
  const registry = await startRegistry(t);
  const image = await busyboxImage({ tag: 'push' });
  const src = await LocalContentStore.open(join(tempDir(t), 'content'));
  await writeImageToStore(src, image);
  const ref = `${registry.host}/cli/busybox:src`;
  await pushImage(ref, { store: src, target: image.target, plainHttp: true });
  const d = await startDaemon(t);
  t.is((await berth(d.address, ['images', 'pull', '--skip-unpack', ref])).code, 0);
  const dest = `${registry.host}/cli/copy:1`;
  const push = await berth(d.address, ['images', 'push', dest, ref]);
  t.is(push.code, 0, push.stderr);
  t.is(push.stdout, `${dest} ${image.target.digest}\n`);
  t.regex(push.stderr, /: (uploaded|mounted|exists)\n/);
  const pulledBack = await berth(d.address, ['-n', 'other', 'images', 'pull', '--skip-unpack', dest]);
  t.is(pulledBack.stdout, `${dest} ${image.target.digest}\n`, pulledBack.stderr);
  const archive = join(tempDir(t), 'out.tar');
  t.is((await berth(d.address, ['images', 'export', archive, ref])).code, 0);
  const imported = await berth(d.address, ['-n', 'third', 'images', 'import', '--skip-unpack', archive]);
  t.is(imported.code, 0, imported.stderr);
  t.regex(imported.stdout, new RegExp(`${image.target.digest}\\n$`));
  const bad = await berth(d.address, ['images', 'push', dest, 'missing:1']);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^berth: image "missing:1" in namespace default: not found\n$/);
});

test('doctor reports the host and the daemon; the bash completion script completes verbs and flags', async (t) => {
  const d = await startDaemon(t);
  const doctor = await berth(d.address, ['doctor', '--json']);
  t.is(doctor.code, 0, doctor.stderr);
  const checks = new Map((JSON.parse(doctor.stdout) as { name: string; status: string; detail: string }[]).map((c) => [c.name, c]));
  t.is(checks.get('root')?.status, 'ok');
  t.regex(checks.get('cgroups')!.detail, /^(v1|v2|hybrid)/);
  t.is(checks.get('runc')?.status, 'ok');
  t.is(checks.get('daemon')?.status, 'ok');
  const script = (await berth(d.address, ['completion', 'bash'])).stdout;
  const file = join(tempDir(t), 'berth.bash');
  (await import('node:fs')).writeFileSync(file, script);
  const complete = (words: string[]) => execFileSync('bash', ['-c', `source ${file}; COMP_WORDS=(${words.join(' ')}); COMP_CWORD=${words.length - 1}; _berth; echo "\${COMPREPLY[@]}"`]).toString().trim();
  t.is(complete(['berth', 'ima']), 'images');
  t.is(complete(['berth', 'images', 'p']), 'pull push');
  t.is(complete(['berth', 'run', '--r']), '--rm --read-only --runtime --runc-binary --runtime-class');
});
