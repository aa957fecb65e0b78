import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { sha256Digest } from '../../api/digest.ts';
import { codeOf, ErrorCode } from '../../api/errdefs.ts';
import { LocalContentStore } from '../../content/local.ts';
import { tempDir } from '../helpers/tmp.ts';
import { contentStoreConformance } from './conformance.ts';

contentStoreConformance('local', async (t) => {
  const root = join(tempDir(t, 'berth-content-'), 'content');
  return { store: await LocalContentStore.open(root), reopen: () => LocalContentStore.open(root) };
});

const ingestDir = (root: string, ref: string) => join(root, 'ingest', createHash('sha256').update(ref).digest('hex'));

test('local: on-disk layout is containerd\'s, with nothing left in ingest after commit', async (t) => {
  const root = tempDir(t);
  const store = await LocalContentStore.open(root);
  const w = await store.writer({ ref: 'layout' });
  await w.write(Buffer.from('abc'));
  t.deepEqual(readdirSync(ingestDir(root, 'layout')).sort(), ['data', 'lock', 'ref', 'startedat']);
  t.is(readFileSync(join(ingestDir(root, 'layout'), 'ref'), 'utf8'), 'layout');
  await w.commit(3, sha256Digest('abc'));
  const hex = sha256Digest('abc').slice(7);
  t.is(readFileSync(join(root, 'blobs', 'sha256', hex), 'utf8'), 'abc');
  t.deepEqual(readdirSync(join(root, 'ingest')), []);
  t.is(store.blobPath(sha256Digest('abc')), join(root, 'blobs', 'sha256', hex));
});

test('local: a lock left by a dead process is stale and taken over', async (t) => {
  const root = tempDir(t);
  const store = await LocalContentStore.open(root);
  const w = await store.writer({ ref: 'crashed' });
  await w.write(Buffer.from('partial'));
  await w.close();
  const dead = spawnSync('true').pid!;
  writeFileSync(join(ingestDir(root, 'crashed'), 'lock'), `${dead} 12345`);
  const w2 = await store.writer({ ref: 'crashed' });
  t.is((await w2.status()).offset, 7);
  await w2.close();
  // A marker naming this very process but not held by any writer in it is left over, hence stale too.
  const again = await LocalContentStore.open(root);
  const w3 = await again.writer({ ref: 'crashed' });
  await w3.close();
  t.false(existsSync(join(ingestDir(root, 'crashed'), 'lock')));
});

test('local: a writer held by another live process makes ours unavailable', async (t) => {
  const root = tempDir(t);
  const script = `
    import { LocalContentStore } from ${JSON.stringify(new URL('../../content/local.ts', import.meta.url).href)};
    const s = await LocalContentStore.open(${JSON.stringify(root)});
    const w = await s.writer({ ref: 'shared' });
    await w.write(Buffer.from('x'));
    process.stdout.write('ready\\n');
    process.stdin.once('data', async () => { await w.close(); process.exit(0); });`;
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`child exited ${c}`)));
  });
  const store = await LocalContentStore.open(root);
  const err = await t.throwsAsync(store.writer({ ref: 'shared' }));
  t.is(codeOf(err), ErrorCode.Unavailable);
  t.regex(err!.message, /"shared" is locked/);
  child.stdin.write('go\n');
  await new Promise((r) => child.once('exit', r));
  const w = await store.writer({ ref: 'shared' });
  t.is((await w.status()).offset, 1);
  await w.close();
});

test('local: killing the writing process does not block the ref forever', async (t) => {
  const root = tempDir(t);
  const script = `
    import { LocalContentStore } from ${JSON.stringify(new URL('../../content/local.ts', import.meta.url).href)};
    const s = await LocalContentStore.open(${JSON.stringify(root)});
    const w = await s.writer({ ref: 'killed' });
    await w.write(Buffer.from('12345'));
    process.stdout.write('ready\\n');
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  const store = await LocalContentStore.open(root);
  const w = await store.writer({ ref: 'killed' });
  t.is((await w.status()).offset, 5);
  await w.close();
});

test('local: an ingest left half-created by a crash is usable', async (t) => {
  const root = tempDir(t);
  const store = await LocalContentStore.open(root);
  // Crash after mkdir and some data, before the ref file: the data still counts towards the digest.
  mkdirSync(ingestDir(root, 'half'));
  writeFileSync(join(ingestDir(root, 'half'), 'data'), 'hel');
  t.deepEqual(await store.listStatuses(), [], 'without a ref file it is not a listed ingest');
  const w = await store.writer({ ref: 'half' });
  t.is((await w.status()).offset, 3);
  await w.write(Buffer.from('lo'));
  await w.commit(5, sha256Digest('hello'));
  t.deepEqual(readdirSync(join(root, 'ingest')), []);
});
