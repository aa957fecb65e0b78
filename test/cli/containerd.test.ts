// berth driving containerd itself (Debian's 1.6.20): the CLI speaks containerd's API, so the same verbs work.
import test from 'ava';
import { startContainerd } from '../helpers/containerd.ts';
import { berth } from './helpers.ts';

test('berth drives containerd: version, namespaces, leases, content, images', async (t) => {
  const cd = await startContainerd(t);
  const version = await berth(cd.address, ['version']);
  t.is(version.code, 0, version.stderr);
  t.regex(version.stdout, /Server:\n\s+Version:\s+1\.6\.\d+/);
  t.is((await berth(cd.address, ['namespaces', 'create', 'from-berth', 'by=berth'])).code, 0);
  t.regex((await berth(cd.address, ['namespaces', 'ls'])).stdout, /from-berth\s+by=berth/);
  const lease = await berth(cd.address, ['-n', 'from-berth', 'leases', 'create', '--id', 'hold']);
  t.is(lease.stdout, 'hold\n', lease.stderr);
  t.regex((await berth(cd.address, ['-n', 'from-berth', 'leases', 'ls'])).stdout, /hold\s+.*containerd\.io\/gc\.expire=/);
  t.is((await berth(cd.address, ['content', 'ls', '-q'])).stdout, '');
  t.is((await berth(cd.address, ['images', 'ls', '-q'])).stdout, '');
  t.regex((await berth(cd.address, ['plugins', 'ls'])).stdout, /io\.containerd\.snapshotter\.v1\s+overlayfs\s+linux\/amd64\s+-\s+ok/);
  const pull = await berth(cd.address, ['images', 'pull', '127.0.0.1:1/x:1']);
  t.is(pull.code, 1);
  t.regex(pull.stderr, /^berth: .*(unknown service|not implemented|unimplemented).*\n$/i, 'containerd 1.6 has no pull service: said in one line');
});
