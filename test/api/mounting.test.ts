import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { detachAll, mountAll } from '../../api/mounting.ts';

const mounted = (dir: string) => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === dir);

test('detachAll takes every mount stacked at a target off at once; the files written through it are in the upper directory', async (t) => {
  const d = mkdtempSync('/var/tmp/berth-detach-');
  try {
    for (const x of ['lower', 'upper', 'work', 'root']) mkdirSync(join(d, x));
    const root = join(d, 'root');
    await mountAll([{ type: 'overlay', source: 'overlay', target: '', options: [`lowerdir=${d}/lower`, `upperdir=${d}/upper`, `workdir=${d}/work`] }], root);
    writeFileSync(join(root, 'kept'), 'yes');
    await mountAll([{ type: 'tmpfs', source: 'tmpfs', target: '', options: ['size=1m'] }], root);
    t.true(mounted(root));
    detachAll(root);
    t.false(mounted(root));
    t.is(readFileSync(join(d, 'upper', 'kept'), 'utf8'), 'yes');
    t.notThrows(() => detachAll(root), 'nothing mounted');
    t.notThrows(() => detachAll(join(d, 'missing')), 'no such directory');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
