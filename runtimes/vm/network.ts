// A sandbox's network, as Kata Containers' "tcfilter" model does it. QEMU runs in a network namespace of its own
// with a tap (TAP_NAME) behind the guest's virtio-net device (qemu.ts); the runtime's hooks configure that
// namespace through QEMU's pid (Docker's libnetwork-setkey moves the container's veth there, with its addresses and
// routes). After the hooks, connectSandboxNetwork reads what the namespace got, joins each interface to the tap
// with tc (an ingress qdisc on both, a filter on each redirecting everything to the other: frames pass through
// unchanged, the namespace's own stack never sees them) and has the guest agent give the guest's device the
// interface's MAC, MTU, addresses and routes, in the sandbox's network namespace the containers share.
// iproute2's `ip` and `tc` do the host side, entered into QEMU's namespace by nsenter (never from Node's threads).
import { execFile } from 'node:child_process';
import { BerthError, ErrorCode, codeOf } from '../../api/errdefs.ts';
import type { AgentClient, NetworkConfig, NetworkRoute } from './agent-client.ts';

/** The tap QEMU makes in its namespace at launch (so a pooled VM has it before its container exists). */
export const TAP_NAME = 'berth-tap0';

interface IpAddrJson {
  ifname: string; mtu: number; address?: string; link_type?: string;
  addr_info?: { family: 'inet' | 'inet6'; local: string; prefixlen: number; scope?: string }[];
}
interface IpRouteJson { dst: string; gateway?: string; dev?: string; protocol?: string; scope?: string; prefsrc?: string; metric?: number; type?: string }

const SCOPES: Record<string, number> = { global: 0, universe: 0, site: 200, link: 253, host: 254 };

/** Runs `argv` in the network namespace of `pid`; `input` on its stdin. Rejects with its stderr. */
function inNetns(pid: number, argv: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('nsenter', [`--net=/proc/${pid}/ns/net`, '--', ...argv], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'nsenter (util-linux) is not installed'
        : (stderr.trim() || err.message).replace(/^nsenter: failed to execute (\S+): No such file or directory$/, '$1 (iproute2) is not installed');
      reject(new Error(`${argv.slice(0, 2).join(' ')}: ${why}`));
    });
    // The tool may exit before reading its stdin (ip never reads it): a write then fails with EPIPE, which would
    // otherwise be an unhandled 'error' event and end the shim.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

/** What QEMU's namespace was given: its interfaces besides lo and the tap, and the routes through them that the
 * kernel did not make from an address itself. */
export async function readNetwork(pid: number): Promise<NetworkConfig> {
  const [links, routes4, routes6] = await Promise.all([
    inNetns(pid, ['ip', '-j', 'address', 'show']),
    inNetns(pid, ['ip', '-j', '-4', 'route', 'show', 'table', 'main']),
    inNetns(pid, ['ip', '-j', '-6', 'route', 'show', 'table', 'main']),
  ]);
  const interfaces = (JSON.parse(links) as IpAddrJson[])
    .filter((l) => l.ifname !== 'lo' && l.ifname !== TAP_NAME && l.link_type !== 'loopback')
    .map((l) => ({
      name: l.ifname, mac: l.address ?? '', mtu: l.mtu,
      // Link-local addresses the guest's kernel makes itself from the same MAC.
      addresses: (l.addr_info ?? []).filter((a) => a.scope !== 'link' && a.scope !== 'host').map((a) => ({ address: a.local, prefixLen: a.prefixlen })),
    }));
  const names = new Set(interfaces.map((i) => i.name));
  const routes: NetworkRoute[] = [...JSON.parse(routes4) as IpRouteJson[], ...JSON.parse(routes6) as IpRouteJson[]]
    .filter((r) => r.dev && names.has(r.dev) && r.protocol !== 'kernel' && (!r.type || r.type === 'unicast'))
    .map((r) => ({
      destination: r.dst === 'default' ? '' : r.dst.includes('/') ? r.dst : `${r.dst}/${r.dst.includes(':') ? 128 : 32}`,
      gateway: r.gateway ?? '', device: r.dev!, source: r.prefsrc ?? '', scope: SCOPES[r.scope ?? 'global'] ?? 0, metric: r.metric ?? 0,
    }))
    // Routes to a gateway need the on-link routes that reach it first.
    .sort((a, b) => Number(!!a.gateway) - Number(!!b.gateway));
  return { interfaces, routes };
}

const redirect = (from: string, to: string) => [
  `qdisc add dev ${from} ingress`,
  `filter add dev ${from} parent ffff: protocol all u32 match u32 0 0 action mirred egress redirect dev ${to}`,
];

/**
 * Connects what QEMU's namespace was given to the guest. Nothing to connect (no interface besides lo and the tap,
 * e.g. `--network none`): false, nothing changes. A failure undoes the tc setup and names what failed.
 */
export async function connectSandboxNetwork(qemuPid: number, hasTap: boolean, agent: AgentClient): Promise<boolean> {
  const fail = (what: string, err: unknown) => new BerthError(codeOf(err) === ErrorCode.Unknown ? ErrorCode.Internal : codeOf(err), `vm: the sandbox's network: ${what}: ${(err as Error).message}`);
  let config: NetworkConfig;
  try { config = await readNetwork(qemuPid); } catch (err) { throw fail('reading QEMU\'s network namespace', err); }
  if (!config.interfaces.length) return false;
  if (!hasTap) throw new BerthError(ErrorCode.FailedPrecondition, `vm: the sandbox's network: QEMU's namespace has ${config.interfaces.map((i) => i.name).join(', ')} but the VM has no network device (this host has no /dev/net/tun)`);
  if (config.interfaces.length > 1) {
    throw new BerthError(ErrorCode.NotImplemented, `vm: the sandbox's network: QEMU's namespace has ${config.interfaces.length} interfaces (${config.interfaces.map((i) => i.name).join(', ')}): a VM has one network device`);
  }
  const [iface] = config.interfaces;
  try {
    await inNetns(qemuPid, ['ip', '-batch', '-'], `link set dev ${TAP_NAME} mtu ${iface!.mtu} up\n`);
    await inNetns(qemuPid, ['tc', '-batch', '-'], [...redirect(iface!.name, TAP_NAME), ...redirect(TAP_NAME, iface!.name)].join('\n') + '\n');
  } catch (err) {
    await undo(qemuPid, iface!.name);
    throw fail(`joining ${iface!.name} to ${TAP_NAME} with tc`, err);
  }
  try {
    await agent.configureNetwork(config);
  } catch (err) {
    await undo(qemuPid, iface!.name);
    throw fail(`configuring the guest's device as ${iface!.name} (${iface!.addresses.map((a) => `${a.address}/${a.prefixLen}`).join(', ') || 'no address'})`, err);
  }
  return true;
}

async function undo(qemuPid: number, name: string): Promise<void> {
  await inNetns(qemuPid, ['tc', '-force', '-batch', '-'], `qdisc del dev ${name} ingress\nqdisc del dev ${TAP_NAME} ingress\n`).catch(() => undefined);
  await inNetns(qemuPid, ['ip', 'link', 'set', 'dev', TAP_NAME, 'down']).catch(() => undefined);
}
