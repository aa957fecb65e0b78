// `[metrics] address`: HOST:PORT as containerd takes it, but berth serves only on loopback, so any other host
// is refused at start, naming the address.
import { BlockList, isIP } from 'node:net';
import { errInvalidArgument } from '../../api/errdefs.ts';

export interface ListenAddress { host: string; port: number }

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** Where the metrics endpoint listens: `127.0.0.1:1338`, `[::1]:1338` or `localhost:1338` (127.0.0.1). */
export function loopbackListenAddress(address: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) {
    throw errInvalidArgument(`[metrics] address ${JSON.stringify(address)} is malformed: want HOST:PORT on loopback, e.g. 127.0.0.1:1338`);
  }
  const host = m[1] ?? (m[2] === 'localhost' ? '127.0.0.1' : m[2]!);
  const family = isIP(host);
  // An empty host is every interface to Go's listener, so it is refused as one.
  if (host !== '' && (family === 0 || (m[1] !== undefined && family !== 6))) {
    throw errInvalidArgument(`[metrics] address ${JSON.stringify(address)}: the host must be a loopback IP address (127.0.0.1, [::1]) or localhost`);
  }
  if (host === '' || !loopback.check(host, family === 4 ? 'ipv4' : 'ipv6')) {
    throw errInvalidArgument(`[metrics] address ${JSON.stringify(address)} is not a loopback address: berthd serves metrics on loopback only (127.0.0.1:PORT or [::1]:PORT)`);
  }
  return { host, port };
}
