// The ContentStore conformance suite: every implementation runs it (test/content/local.test.ts for the local
// store; the daemon's namespaced view and any remote store reuse it with their own factory).
import test, { type ExecutionContext } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { sha256Digest } from '../../api/digest.ts';
import { codeOf, ErrorCode } from '../../api/errdefs.ts';
import type { ContentInfo, ContentStore } from '../../content/types.ts';

export interface StoreUnderTest {
  store: ContentStore;
  /** A new instance over the same data, as after a daemon restart (the old one is no longer used). */
  reopen(): Promise<ContentStore>;
}

export type ContentStoreFactory = (t: ExecutionContext) => Promise<StoreUnderTest>;

async function put(store: ContentStore, data: Buffer, ref = 'ref-' + randomBytes(4).toString('hex'), labels?: Record<string, string>) {
  const digest = sha256Digest(data);
  const w = await store.writer({ ref, expected: { digest, size: data.length } });
  await w.write(data);
  await w.commit(data.length, digest, labels ? { labels } : undefined);
  return digest;
}

async function readAll(store: ContentStore, digest: string, offset?: number, length?: number): Promise<Buffer> {
  const r = await store.reader(digest);
  try {
    const chunks: Buffer[] = [];
    for await (const c of r.stream(offset, length)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  } finally {
    await r.close();
  }
}

async function list(store: ContentStore, filters?: string[]): Promise<ContentInfo[]> {
  const out: ContentInfo[] = [];
  await store.walk((i) => { out.push(i); }, filters);
  return out.sort((a, b) => a.digest.localeCompare(b.digest));
}

function code(t: ExecutionContext, err: unknown, expected: ErrorCode) {
  t.is(codeOf(err), expected, `got ${String(err)}`);
}

export function contentStoreConformance(name: string, factory: ContentStoreFactory): void {
  const it = (title: string, fn: (t: ExecutionContext, s: StoreUnderTest) => Promise<void>) =>
    test(`${name}: ${title}`, async (t) => fn(t, await factory(t)));

  it('writes, commits and reads back a blob, whole and by range', async (t, { store }) => {
    const data = randomBytes(100_000);
    const digest = await put(store, data);
    const info = await store.info(digest);
    t.is(info.digest, digest);
    t.is(info.size, data.length);
    t.deepEqual(info.labels, {});
    t.true(info.createdAt instanceof Date);
    t.deepEqual(await readAll(store, digest), data);
    t.deepEqual(await readAll(store, digest, 1000, 5000), data.subarray(1000, 6000));
    t.deepEqual(await readAll(store, digest, 99_990), data.subarray(99_990));
    t.deepEqual(await readAll(store, digest, 100_000), Buffer.alloc(0));
    const r = await store.reader(digest);
    t.is(r.size, data.length);
    t.deepEqual(await r.read(12345, 100), data.subarray(12345, 12445));
    t.deepEqual(await r.read(99_950, 100), data.subarray(99_950), 'a read past the end is short');
    await t.throwsAsync(r.read(-1, 10), { message: /invalid read range/ });
    await r.close();
  });

  it('a digest mismatch fails naming both digests, and nothing becomes visible', async (t, { store }) => {
    const data = Buffer.from('hello world');
    const wrong = sha256Digest('something else');
    const w = await store.writer({ ref: 'mismatch' });
    await w.write(data);
    const err = await t.throwsAsync(w.commit(data.length, wrong));
    code(t, err, ErrorCode.FailedPrecondition);
    t.true(err!.message.includes(wrong) && err!.message.includes(sha256Digest(data)), err!.message);
    code(t, await t.throwsAsync(store.info(wrong)), ErrorCode.NotFound);
    code(t, await t.throwsAsync(store.info(sha256Digest(data))), ErrorCode.NotFound);
    t.deepEqual(await list(store), []);
    t.is((await store.status('mismatch')).offset, data.length, 'the ingest is kept for a retry');
    await w.commit(data.length, sha256Digest(data));
    t.is((await store.info(sha256Digest(data))).size, data.length);
    code(t, await t.throwsAsync(store.status('mismatch')), ErrorCode.NotFound);
  });

  it('a size mismatch fails naming both sizes', async (t, { store }) => {
    const w = await store.writer({ ref: 'size' });
    await w.write(Buffer.from('12345'));
    const err = await t.throwsAsync(w.commit(6, sha256Digest('12345')));
    code(t, err, ErrorCode.FailedPrecondition);
    t.regex(err!.message, /\b5\b.*\b6\b/);
    await w.close();
    t.deepEqual(await list(store), []);
  });

  it('refuses writes of content already present', async (t, { store }) => {
    const data = Buffer.from('dup');
    const digest = await put(store, data);
    code(t, await t.throwsAsync(store.writer({ ref: 'again', expected: { digest } })), ErrorCode.AlreadyExists);
    const w = await store.writer({ ref: 'again-no-expected' });
    await w.write(data);
    code(t, await t.throwsAsync(w.commit(data.length, digest)), ErrorCode.AlreadyExists);
    t.deepEqual(await store.listStatuses(), [], 'the losing ingest is removed');
    t.deepEqual(await readAll(store, digest), data);
  });

  it('one writer per ref; a second gets unavailable, a later one resumes', async (t, { store }) => {
    const data = randomBytes(50_000);
    const w1 = await store.writer({ ref: 'locked', expected: { size: data.length } });
    await w1.write(data.subarray(0, 20_000));
    code(t, await t.throwsAsync(store.writer({ ref: 'locked' })), ErrorCode.Unavailable);
    code(t, await t.throwsAsync(store.abort('locked')), ErrorCode.Unavailable);
    const other = await store.writer({ ref: 'other' });
    await other.close();
    await w1.close();
    const w2 = await store.writer({ ref: 'locked' });
    const st = await w2.status();
    t.is(st.offset, 20_000);
    t.is(st.total, data.length);
    t.is(st.ref, 'locked');
    await w2.write(data.subarray(20_000));
    t.is(w2.digest(), sha256Digest(data), 'the running digest covers the resumed part');
    await w2.commit(data.length, sha256Digest(data));
    t.deepEqual(await readAll(store, sha256Digest(data)), data);
  });

  it('an ingest resumes after a restart', async (t, { store, reopen }) => {
    const data = randomBytes(300_000);
    const digest = sha256Digest(data);
    const w = await store.writer({ ref: 'restart', expected: { digest, size: data.length } });
    await w.write(data.subarray(0, 123_456));
    await w.close();
    const again = await reopen();
    const [status] = await again.listStatuses();
    t.like(status, { ref: 'restart', offset: 123_456, total: data.length, expected: digest });
    t.true(status!.startedAt instanceof Date && status!.updatedAt instanceof Date);
    const w2 = await again.writer({ ref: 'restart', expected: { digest, size: data.length } });
    await w2.write(data.subarray(123_456));
    await w2.commit(data.length, digest);
    t.deepEqual(await readAll(again, digest), data);
  });

  it('truncate(0) restarts an ingest', async (t, { store }) => {
    const w = await store.writer({ ref: 'trunc' });
    await w.write(Buffer.from('garbage'));
    await w.truncate(0);
    t.is((await w.status()).offset, 0);
    await w.write(Buffer.from('good'));
    await w.commit(4, sha256Digest('good'));
    t.deepEqual(await readAll(store, sha256Digest('good')), Buffer.from('good'));
  });

  it('labels: set at commit, updated by fieldpaths, persisted', async (t, { store, reopen }) => {
    const digest = await put(store, Buffer.from('labelled'), 'l', { a: '1', b: '2' });
    t.deepEqual((await store.info(digest)).labels, { a: '1', b: '2' });
    let info = await store.update({ digest, labels: { b: '3', c: '4' } }, ['labels.b', 'labels.a']);
    t.deepEqual(info.labels, { b: '3' }, 'labels.a absent from the update deletes it; c is not in the fieldpaths');
    info = await store.update({ digest, labels: { x: 'y' } }, ['labels']);
    t.deepEqual(info.labels, { x: 'y' });
    info = await store.update({ digest, labels: { z: '1', 'containerd.io/gc.ref.content.m': 'q' } });
    t.deepEqual(info.labels, { z: '1', 'containerd.io/gc.ref.content.m': 'q' });
    code(t, await t.throwsAsync(store.update({ digest, labels: {} }, ['size'])), ErrorCode.InvalidArgument);
    code(t, await t.throwsAsync(store.update({ digest, labels: { '': 'v' } })), ErrorCode.InvalidArgument);
    code(t, await t.throwsAsync(store.update({ digest: sha256Digest('missing'), labels: {} })), ErrorCode.NotFound);
    t.deepEqual((await (await reopen()).info(digest)).labels, { z: '1', 'containerd.io/gc.ref.content.m': 'q' });
  });

  it('walk with filters', async (t, { store }) => {
    const a = await put(store, Buffer.from('aaa'), 'a', { kind: 'layer', 'io.x.tier': 'base' });
    const b = await put(store, Buffer.from('bbbb'), 'b', { kind: 'config' });
    const c = await put(store, Buffer.from('c'), 'c');
    t.deepEqual((await list(store)).map((i) => i.digest), [a, b, c].sort());
    t.deepEqual((await list(store, ['labels.kind==layer'])).map((i) => i.digest), [a]);
    t.deepEqual((await list(store, ['labels.kind'])).map((i) => i.digest), [a, b].sort());
    t.deepEqual((await list(store, ['labels."io.x.tier"==base,labels.kind==layer'])).map((i) => i.digest), [a]);
    t.deepEqual((await list(store, ['labels.kind==config', `digest==${c}`])).map((i) => i.digest), [b, c].sort());
    t.deepEqual((await list(store, ['size==4'])).map((i) => i.digest), [b]);
    t.deepEqual((await list(store, [`digest~=^${a.slice(0, 12)}`])).map((i) => i.digest), [a]);
    code(t, await t.throwsAsync(list(store, ['labels.kind=layer'])), ErrorCode.InvalidArgument);
  });

  it('delete removes a blob; errors name the digest', async (t, { store }) => {
    const digest = await put(store, Buffer.from('gone soon'));
    await store.delete(digest);
    code(t, await t.throwsAsync(store.info(digest)), ErrorCode.NotFound);
    const err = await t.throwsAsync(store.delete(digest));
    code(t, err, ErrorCode.NotFound);
    t.true(err!.message.includes(digest));
    code(t, await t.throwsAsync(store.reader(digest)), ErrorCode.NotFound);
    t.deepEqual(await list(store), []);
  });

  it('invalid digests and refs are invalid arguments', async (t, { store }) => {
    for (const bad of ['sha256:xyz', 'nope', 'md5:' + 'a'.repeat(32), 'sha256:' + 'A'.repeat(64), '../../etc/passwd']) {
      code(t, await t.throwsAsync(store.info(bad)), ErrorCode.InvalidArgument);
      code(t, await t.throwsAsync(store.delete(bad)), ErrorCode.InvalidArgument);
      code(t, await t.throwsAsync(store.reader(bad)), ErrorCode.InvalidArgument);
      code(t, await t.throwsAsync(store.writer({ ref: 'x', expected: { digest: bad } })), ErrorCode.InvalidArgument);
    }
    code(t, await t.throwsAsync(store.writer({ ref: '' })), ErrorCode.InvalidArgument);
    const w = await store.writer({ ref: 'badcommit' });
    await w.write(Buffer.from('x'));
    code(t, await t.throwsAsync(w.commit(1, 'sha256:nothex')), ErrorCode.InvalidArgument);
    await w.close();
    await store.abort('badcommit');
  });

  it('abort and listStatuses with ref filters', async (t, { store }) => {
    for (const ref of ['layer-1', 'layer-2', 'manifest-1']) {
      const w = await store.writer({ ref });
      await w.write(Buffer.from(ref));
      await w.close();
    }
    t.deepEqual((await store.listStatuses()).map((s) => s.ref).sort(), ['layer-1', 'layer-2', 'manifest-1']);
    t.deepEqual((await store.listStatuses(['ref~=^layer-'])).map((s) => s.ref).sort(), ['layer-1', 'layer-2']);
    t.deepEqual((await store.listStatuses(['ref==manifest-1'])).map((s) => s.offset), [10]);
    await store.abort('layer-1');
    code(t, await t.throwsAsync(store.status('layer-1')), ErrorCode.NotFound);
    code(t, await t.throwsAsync(store.abort('layer-1')), ErrorCode.NotFound);
    t.deepEqual((await store.listStatuses()).map((s) => s.ref).sort(), ['layer-2', 'manifest-1']);
    const w = await store.writer({ ref: 'layer-1' });
    t.is((await w.status()).offset, 0, 'an aborted ref starts afresh');
    await w.close();
  });

  it('committed content and labels persist across a restart', async (t, { store, reopen }) => {
    const digest = await put(store, Buffer.from('durable'), 'd', { keep: 'yes' });
    const again = await reopen();
    const info = await again.info(digest);
    t.is(info.size, 7);
    t.deepEqual(info.labels, { keep: 'yes' });
    t.deepEqual(await readAll(again, digest), Buffer.from('durable'));
  });

  it('streams a large blob in chunks with the digest computed in-stream', async (t, { store }) => {
    const chunk = randomBytes(1 << 20);
    const n = 64;
    const expect = createHash('sha256');
    for (let i = 0; i < n; i++) expect.update(chunk);
    const digest = 'sha256:' + expect.digest('hex');
    const started = process.hrtime.bigint();
    const w = await store.writer({ ref: 'big', expected: { digest, size: n * chunk.length } });
    for (let i = 0; i < n; i++) await w.write(chunk);
    await w.commit(n * chunk.length, digest);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    t.log(`${name}: wrote ${n} MiB in ${ms.toFixed(0)} ms (${(n / (ms / 1000)).toFixed(0)} MiB/s)`);
    t.is((await store.info(digest)).size, n * chunk.length);
  });
}
