// Opens a metadata database over a real local content store in a scratch dir; reopen() simulates a daemon
// restart (closes the DB and opens new instances of the DB and the content store over the same files).
import type { ExecutionContext } from 'ava';
import { join } from 'node:path';
import { sha256Digest } from '../../api/digest.ts';
import { LocalContentStore } from '../../content/local.ts';
import type { ContentStore } from '../../content/types.ts';
import { MetadataDB } from '../../daemon/metadata/db.ts';
import type { Snapshotter } from '../../snapshotters/types.ts';
import { tempDir } from '../helpers/tmp.ts';
import { MemorySnapshotter } from './memory-snapshotter.ts';

export interface TestDB {
  db: MetadataDB;
  root: string;
  backend: LocalContentStore;
  snapshotter: Snapshotter;
  reopen(): Promise<MetadataDB>;
}

export async function openTestDB(t: ExecutionContext, opts: { gcDelayMs?: number } = {}): Promise<TestDB> {
  const root = tempDir(t, 'berth-meta-');
  const snapshotter = new MemorySnapshotter();
  const open = async () => {
    const backend = await LocalContentStore.open(join(root, 'content'));
    const db = await MetadataDB.open({ path: join(root, 'metadata'), content: backend, snapshotters: { mem: snapshotter }, gcDelayMs: opts.gcDelayMs ?? 20 });
    return { db, backend };
  };
  let current = await open();
  t.teardown(() => current.db.close());
  const test: TestDB = {
    db: current.db, root, backend: current.backend, snapshotter,
    async reopen() {
      await current.db.close();
      current = await open();
      test.db = current.db;
      test.backend = current.backend;
      return current.db;
    },
  };
  return test;
}

/** Writes `data` into a content store and returns its descriptor. */
export async function putBlob(store: ContentStore, data: string | Buffer, labels?: Record<string, string>, mediaType = 'application/octet-stream') {
  const buf = Buffer.from(data);
  const digest = sha256Digest(buf);
  const w = await store.writer({ ref: 'put-' + digest, expected: { digest, size: buf.length } });
  await w.write(buf);
  await w.commit(buf.length, digest, labels ? { labels } : undefined);
  return { mediaType, digest, size: buf.length };
}
