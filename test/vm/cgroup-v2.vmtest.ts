// The v2 manager on a pure cgroup2 host: a QEMU guest (see vm.ts) runs guest-v2.ts and reports each check.
import test from 'ava';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/tmp.ts';
import { buildInitramfs, guestKernel, runGuest } from './qemu.ts';

const here = dirname(fileURLToPath(import.meta.url));

test('cgroup v2 manager on a pure-v2 guest kernel: every check passes', async (t) => {
  t.timeout(420_000);
  const kernel = guestKernel();
  if (!kernel) return t.fail('no /boot/vmlinuz-*-cloud-amd64: run scripts/setup.sh (it installs linux-image-cloud-amd64)');
  const initramfs = buildInitramfs(join(here, 'guest-cgroup-v2.ts'), tempDir(t), resolve(here, '../..'));
  const output = await runGuest(kernel, initramfs, 400_000);
  const checks = [...output.matchAll(/^CHECK (ok|fail) (.*)$/gm)];
  t.log(`${checks.length} guest checks`);
  for (const [, verdict, detail] of checks) t.is(verdict, 'ok', detail!.trim());
  t.regex(output, /GUEST-DONE/, `guest did not finish:\n${output.slice(-3000)}`);
  t.true(checks.length >= 12, `only ${checks.length} checks reported`);
});
