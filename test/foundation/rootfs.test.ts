import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { makeBusyboxRootfs } from '../helpers/rootfs.ts';
import { tempDir } from '../helpers/tmp.ts';

test('busybox rootfs is deterministic and runnable via chroot', (t) => {
  const a = makeBusyboxRootfs(join(tempDir(t), 'a'));
  const b = makeBusyboxRootfs(join(tempDir(t), 'b'));
  const listing = (d: string) => execFileSync('sh', ['-c', `cd ${d} && find . -printf '%p %y %m %T@ %s\\n' | sort`], { encoding: 'utf8' });
  t.is(listing(a), listing(b));
  t.is(readlinkSync(join(a, 'bin/sh')), 'busybox');
  t.is(execFileSync('chroot', [a, '/bin/sh', '-c', 'echo hi'], { encoding: 'utf8' }), 'hi\n');
});
