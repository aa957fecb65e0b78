import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { detachAll, mountAll } from '../../api/mounting.ts';
import { removeSoon, removeTree } from '../../api/remove-soon.ts';

function tree(root: string, outside: string): void {
  for (let d = 0, dir = root; d < 40; d++, dir = join(dir, `level${d}`)) {
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 5; f++) writeFileSync(join(dir, `file${f}`), 'x');
  }
  mkdirSync(join(root, 'wide'));
  for (let f = 0; f < 2000; f++) writeFileSync(join(root, 'wide', `f${f}`), '');
  symlinkSync(outside, join(root, 'link-to-outside'));
  symlinkSync(join(outside, 'kept'), join(root, 'link-to-file'));
}

test('removeTree removes deep and wide trees without following symlinks out of them', async (t) => {
  const base = mkdtempSync('/var/tmp/berth-rmtree-');
  try {
    const outside = join(base, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'kept'), 'still here');
    tree(join(base, 'doomed'), outside);
    await removeTree(join(base, 'doomed'));
    t.false(existsSync(join(base, 'doomed')));
    t.is(readFileSync(join(outside, 'kept'), 'utf8'), 'still here');
    await t.notThrowsAsync(removeTree(join(base, 'missing')));
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('removeTree never enters a mount inside the tree: EBUSY, and the mounted files stay', async (t) => {
  const base = mkdtempSync('/var/tmp/berth-rmtree-');
  const mnt = join(base, 'doomed', 'mounted');
  try {
    mkdirSync(mnt, { recursive: true });
    writeFileSync(join(base, 'doomed', 'plain'), 'x');
    await mountAll([{ type: 'tmpfs', source: 'tmpfs', target: '', options: ['size=1m'] }], mnt);
    writeFileSync(join(mnt, 'precious'), 'keep me');
    const err = await t.throwsAsync(removeTree(join(base, 'doomed')));
    t.is((err as NodeJS.ErrnoException).code, 'EBUSY');
    t.is(readFileSync(join(mnt, 'precious'), 'utf8'), 'keep me');
    t.false(existsSync(join(base, 'doomed', 'plain')), 'what is not under the mount goes');
  } finally {
    detachAll(mnt);
    rmSync(base, { recursive: true, force: true });
  }
});

test('removeSoon frees the name at once and removes the tree in the background', async (t) => {
  const base = mkdtempSync('/var/tmp/berth-rmtree-');
  try {
    tree(join(base, 'bundle'), join(base, 'nowhere'));
    removeSoon(join(base, 'bundle'));
    t.false(existsSync(join(base, 'bundle')));
    for (let i = 0; i < 200 && readdirCount(base) > 0; i++) await new Promise((r) => setTimeout(r, 10));
    t.is(readdirCount(base), 0);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

function readdirCount(dir: string): number {
  return readdirSync(dir).length;
}
