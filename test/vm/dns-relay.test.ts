// Which nameservers of a container's resolv.conf the vm backend relays into the guest (runtimes/vm/dns-relay.ts).
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loopbackNameservers } from '../../runtimes/vm/dns-relay.ts';
import { tempDir } from '../helpers/tmp.ts';

const withResolvConf = (path: string) => ({ mounts: [{ destination: '/etc/resolv.conf', type: 'bind', source: path, options: ['rbind', 'ro'] }] });

test("the loopback ones among resolv.conf's first three, in the agent's text form; none without a bind-mounted resolv.conf", (t) => {
  const dir = tempDir(t, 'resolv-');
  const conf = join(dir, 'resolv.conf');
  writeFileSync(conf, '# Docker\nsearch example\nnameserver 127.0.0.11\nnameserver 192.0.2.53\n  nameserver 0:0:0:0:0:0:0:1\nnameserver 127.0.0.53\noptions ndots:0\n');
  t.deepEqual(loopbackNameservers(withResolvConf(conf)), ['127.0.0.11', '::1']);
  writeFileSync(conf, 'nameserver 192.0.2.53\nnameserver fd00::53\n');
  t.deepEqual(loopbackNameservers(withResolvConf(conf)), [], 'servers on the network are reached through it');
  t.deepEqual(loopbackNameservers({ mounts: [] }), []);
  t.deepEqual(loopbackNameservers(withResolvConf(join(dir, 'missing'))), []);
});
