// The shared snapshotter suite (after containerd's snapshots/testsuite): every Snapshotter implementation runs
// it, files checked through real mounts. `snapshotterConformance(name, factory)` registers the tests.
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Mount } from '../../api/mount.ts';
import type { Snapshotter } from '../../snapshotters/types.ts';
import { mountsUnder, tempDir } from '../helpers/tmp.ts';

export type SnapshotterFactory = (root: string) => Promise<Snapshotter>;

/** Mounts `mounts` at a fresh dir (as a shim would), runs fn, unmounts. */
export async function withMounted<T>(t: ExecutionContext, mounts: Mount[], fn: (dir: string) => T | Promise<T>): Promise<T> {
  const dir = join(tempDir(t, 'mnt-'), 'm');
  mkdirSync(dir);
  const m = mounts[0]!;
  const isBind = m.type === 'bind';
  const opts = m.options.filter((o) => o !== 'rbind' && o !== 'bind');
  execFileSync('mount', isBind ? ['-o', ['rbind', ...opts].join(','), m.source, dir] : ['-t', m.type, '-o', opts.join(','), m.source, dir]);
  try {
    return await fn(dir);
  } finally {
    execFileSync('umount', [dir]);
  }
}

async function open(t: ExecutionContext, factory: SnapshotterFactory): Promise<{ s: Snapshotter; root: string }> {
  const root = join(tempDir(t, 'snap-'), 'root');
  const s = await factory(root);
  t.teardown(() => s.close());
  return { s, root };
}

/** Commits a layer holding `files` on top of `parent`. */
async function layer(t: ExecutionContext, s: Snapshotter, name: string, parent: string | undefined, files: Record<string, string | null>): Promise<void> {
  const mounts = await s.prepare(`${name}-active`, parent);
  await withMounted(t, mounts, (dir) => {
    for (const [path, content] of Object.entries(files)) {
      if (content === null) rmSync(join(dir, path), { recursive: true, force: true });
      else { mkdirSync(join(dir, path, '..'), { recursive: true }); writeFileSync(join(dir, path), content); }
    }
  });
  await s.commit(name, `${name}-active`);
}

export function snapshotterConformance(name: string, factory: SnapshotterFactory): void {
  test(`${name}: a chain of committed layers shows through a prepared snapshot, deletions included`, async (t) => {
    const { s } = await open(t, factory);
    await layer(t, s, 'l1', undefined, { 'a.txt': 'one', 'dir/b.txt': 'bee', 'gone.txt': 'x' });
    await layer(t, s, 'l2', 'l1', { 'a.txt': 'two', 'gone.txt': null, 'c.txt': 'sea' });
    const mounts = await s.prepare('work', 'l2');
    await withMounted(t, mounts, (dir) => {
      t.is(readFileSync(join(dir, 'a.txt'), 'utf8'), 'two');
      t.is(readFileSync(join(dir, 'dir/b.txt'), 'utf8'), 'bee');
      t.is(readFileSync(join(dir, 'c.txt'), 'utf8'), 'sea');
      t.false(existsSync(join(dir, 'gone.txt')));
      writeFileSync(join(dir, 'new.txt'), 'mine');
    });
    await withMounted(t, await s.mounts('work'), (dir) => t.is(readFileSync(join(dir, 'new.txt'), 'utf8'), 'mine'));
    t.like(await s.stat('work'), { kind: 'active', name: 'work', parent: 'l2' });
    t.like(await s.stat('l2'), { kind: 'committed', parent: 'l1' });
    t.true((await s.usage('work')).inodes >= 1);
  });

  test(`${name}: a view is read-only and cannot be committed`, async (t) => {
    const { s } = await open(t, factory);
    await layer(t, s, 'base', undefined, { 'f': 'data' });
    const mounts = await s.view('v', 'base');
    await withMounted(t, mounts, (dir) => {
      t.is(readFileSync(join(dir, 'f'), 'utf8'), 'data');
      t.throws(() => writeFileSync(join(dir, 'x'), 'no'), { code: 'EROFS' });
    });
    await t.throwsAsync(s.commit('v2', 'v'), { message: /only active/ });
  });

  test(`${name}: tree rules: duplicates, missing or uncommitted parents, removing parents, committed mounts`, async (t) => {
    const { s } = await open(t, factory);
    await layer(t, s, 'p', undefined, { 'f': '1' });
    await s.prepare('child', 'p');
    await t.throwsAsync(s.prepare('child', 'p'), { message: /already exists/ });
    await t.throwsAsync(s.prepare('x', 'nope'), { message: /not found/ });
    await t.throwsAsync(s.prepare('y', 'child'), { message: /not committed/ });
    await t.throwsAsync(s.remove('p'), { message: /has children/ });
    await t.throwsAsync(s.mounts('p'), { message: /committed/ });
    await s.remove('child');
    await s.remove('p');
    await t.throwsAsync(s.stat('p'), { message: /not found/ });
  });

  test(`${name}: labels update by fieldpath; walk filters`, async (t) => {
    const { s } = await open(t, factory);
    await s.prepare('a', undefined, { labels: { team: 'x', keep: '1' } });
    await s.prepare('b', undefined, { labels: { team: 'y' } });
    const updated = await s.update({ name: 'a', labels: { team: 'z' } }, ['labels.team']);
    t.deepEqual(updated.labels, { team: 'z', keep: '1' });
    const seen: string[] = [];
    await s.walk((i) => { seen.push(i.name); }, ['labels.team==z']);
    t.deepEqual(seen, ['a']);
    const all: string[] = [];
    await s.walk((i) => { all.push(i.name); });
    t.deepEqual(all.sort(), ['a', 'b']);
  });

  test(`${name}: cleanup removes directories no snapshot owns`, async (t) => {
    const { s, root } = await open(t, factory);
    await s.prepare('kept');
    mkdirSync(join(root, 'snapshots', '999', 'fs'), { recursive: true });
    mkdirSync(join(root, 'snapshots', 'rm-5'), { recursive: true });
    await s.cleanup();
    t.false(existsSync(join(root, 'snapshots', '999')));
    t.false(existsSync(join(root, 'snapshots', 'rm-5')));
    await withMounted(t, await s.mounts('kept'), () => t.pass());
  });

  test(`${name}: concurrent prepares of distinct keys all succeed`, async (t) => {
    const { s } = await open(t, factory);
    await layer(t, s, 'base', undefined, { 'f': 'x' });
    await Promise.all(Array.from({ length: 20 }, (_, i) => s.prepare(`k${i}`, 'base')));
    const seen: string[] = [];
    await s.walk((i) => { seen.push(i.name); });
    t.is(seen.length, 21);
    t.deepEqual(mountsUnder(tempDir(t)), []);
  });
}
