import test from 'ava';
import { existsSync } from 'node:fs';
import { sha256Digest } from '../../api/digest.ts';
import { codeOf, ErrorCode } from '../../api/errdefs.ts';
import { contentStoreConformance } from '../content/conformance.ts';
import { openTestDB, putBlob } from './helpers.ts';

// The namespaced view must behave as a content store in its own right. A lease keeps what the suite writes
// safe from the GC that its deletes trigger, as a real client's lease does.
contentStoreConformance('namespaced view', async (t) => {
  const tdb = await openTestDB(t);
  await tdb.db.leases.create('suite', { id: 'suite-lease' });
  return {
    store: tdb.db.content('suite', { lease: 'suite-lease' }),
    reopen: async () => (await tdb.reopen()).content('suite', { lease: 'suite-lease' }),
  };
});

test('a namespace sees only its own content; writes dedupe on disk', async (t) => {
  const { db, backend } = await openTestDB(t);
  await db.leases.create('a', { id: 'l' });
  await db.leases.create('b', { id: 'l' });
  const a = db.content('a', { lease: 'l' });
  const b = db.content('b', { lease: 'l' });
  const desc = await putBlob(a, 'shared layer', { from: 'a' });
  code(await t.throwsAsync(b.info(desc.digest)), ErrorCode.NotFound);
  code(await t.throwsAsync(b.reader(desc.digest)), ErrorCode.NotFound);
  const walked: string[] = [];
  await b.walk((i) => { walked.push(i.digest); });
  t.deepEqual(walked, []);

  // b proves nothing by asking: with an expected digest already on disk it is handed the content at once.
  const dedupe = await t.throwsAsync(b.writer({ ref: 'again', expected: { digest: desc.digest, size: desc.size } }));
  code(dedupe, ErrorCode.AlreadyExists);
  t.is((await b.info(desc.digest)).size, desc.size);
  t.deepEqual((await b.info(desc.digest)).labels, {}, 'labels are per namespace');
  t.deepEqual((await a.info(desc.digest)).labels, { from: 'a' });
  t.deepEqual(await b.listStatuses(), [], 'no ingest was started');
  t.deepEqual(await db.leases.listResources('b', 'l'), [{ type: 'content', id: desc.digest }]);

  // Writing data already on disk without an expected digest also lands as one blob.
  const c = db.content('c');
  const w = await c.writer({ ref: 'c-ref' });
  await w.write(Buffer.from('shared layer'));
  await w.commit(0);
  t.is((await c.info(desc.digest)).size, desc.size);
  const blobs: string[] = [];
  await backend.walk((i) => { blobs.push(i.digest); });
  t.deepEqual(blobs, [desc.digest]);
});

test('ingests are per namespace', async (t) => {
  const { db } = await openTestDB(t);
  const a = db.content('a');
  const b = db.content('b');
  const wa = await a.writer({ ref: 'same-ref' });
  await wa.write(Buffer.from('aaaa'));
  const wb = await b.writer({ ref: 'same-ref' });
  await wb.write(Buffer.from('bb'));
  t.deepEqual((await a.listStatuses()).map((s) => [s.ref, s.offset]), [['same-ref', 4]]);
  t.deepEqual((await b.listStatuses()).map((s) => [s.ref, s.offset]), [['same-ref', 2]]);
  t.is((await wa.status()).ref, 'same-ref');
  await wa.close();
  await wb.close();
  await a.abort('same-ref');
  code(await t.throwsAsync(a.status('same-ref')), ErrorCode.NotFound);
  t.is((await b.status('same-ref')).offset, 2);
});

test('deleting from one namespace keeps the blob while another holds it', async (t) => {
  const { db, backend } = await openTestDB(t);
  const a = db.content('a');
  const b = db.content('b');
  const desc = await putBlob(a, 'twice');
  await t.throwsAsync(b.writer({ ref: 'x', expected: { digest: desc.digest } }));
  for (const ns of ['a', 'b']) await db.content(ns).update({ digest: desc.digest, labels: { 'containerd.io/gc.root': 'x' } });
  await a.delete(desc.digest);
  code(await t.throwsAsync(a.info(desc.digest)), ErrorCode.NotFound);
  await db.gc();
  t.true(existsSync(backend.blobPath(desc.digest)));
  t.is((await b.info(desc.digest)).size, 5);
  await b.delete(desc.digest);
  const result = await db.gc();
  t.deepEqual(result.blobs, [desc.digest]);
  t.false(existsSync(backend.blobPath(desc.digest)));
});

test('namespaced content: bad input', async (t) => {
  const { db } = await openTestDB(t);
  t.is(codeOf(t.throws(() => db.content('not a namespace'))), ErrorCode.InvalidArgument);
  const s = db.content('ok', { lease: 'missing-lease' });
  const err = await t.throwsAsync(s.writer({ ref: 'r' }));
  t.is(codeOf(err), ErrorCode.NotFound);
  t.regex(err!.message, /lease "missing-lease"/);
  code(await t.throwsAsync(db.content('ok').info(sha256Digest('nothing'))), ErrorCode.NotFound);
  code(await t.throwsAsync(db.content('ok').delete('sha256:short')), ErrorCode.InvalidArgument);
});

function code(err: unknown, expected: ErrorCode) {
  if (codeOf(err) !== expected) throw new Error(`expected ${expected}, got ${String(err)}`);
}
