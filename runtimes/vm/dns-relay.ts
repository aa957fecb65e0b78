// DNS for a sandbox whose containers' resolv.conf names a nameserver on loopback: Docker's embedded resolver
// (127.0.0.11, on a user-defined network) listens in QEMU's network namespace, where the runtime's hooks set it
// up, and nothing in the guest reaches it there. The agent serves the address in the sandbox's network namespace
// (RelayDns) and hands each query to the host (ReadDnsQuery); berth-dns-forward, in QEMU's namespace, asks the
// server, and the answer goes back to the guest (AnswerDnsQuery).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { nativeBinary } from '../../api/native-binary.ts';
import type { Spec } from '../oci/spec.ts';
import type { AgentClient, DnsQuery } from './agent-client.ts';

/** resolv.conf takes the first three. */
const MAX_NAMESERVERS = 3;

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');
const isLoopback = (ip: string) => isIP(ip) !== 0 && loopback.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4');

/** The loopback nameservers of the resolv.conf the runtime bind-mounts into the container (none without one). */
export function loopbackNameservers(spec: Pick<Spec, 'mounts'>): string[] {
  const mount = [...spec.mounts ?? []].reverse().find((m) => m.destination === '/etc/resolv.conf' && m.source);
  if (!mount) return [];
  let text: string;
  try { text = readFileSync(mount.source!, 'utf8'); } catch { return []; }
  const servers = [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1]!).slice(0, MAX_NAMESERVERS);
  // In the agent's text form (an IPv6 address compressed), which its queries name.
  return servers.filter(isLoopback).map((ip) => (isIP(ip) === 6 ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip));
}

/** Frames for berth-dns-forward (native/dns_forward.c). */
function queryFrame(q: DnsQuery): Buffer {
  const server = Buffer.from(q.server);
  const head = Buffer.alloc(10);
  head.writeUInt32BE(6 + server.length + q.message.length, 0);
  head.writeUInt32BE(q.id, 4);
  head[8] = q.tcp ? 1 : 0;
  head[9] = server.length;
  return Buffer.concat([head, server, q.message]);
}

/** A forwarder that dies (killed) is started again, this many times at most. */
const FORWARDER_RESTARTS = 5;

export class DnsRelay {
  private forwarder!: ChildProcess;
  private pending = Buffer.alloc(0);
  private done = false;
  private restarts = 0;
  readonly servers = new Set<string>();

  private constructor(private readonly qemuPid: number, private readonly agent: AgentClient) {
    this.startForwarder();
    void this.relay();
  }

  private startForwarder(): void {
    const forwarder = spawn(nativeBinary('berth-dns-forward'), [`/proc/${this.qemuPid}/ns/net`], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.forwarder = forwarder;
    this.pending = Buffer.alloc(0);
    forwarder.stdin!.on('error', () => undefined);
    forwarder.stdout!.on('data', (chunk: Buffer) => { if (this.forwarder === forwarder) this.onAnswers(chunk); });
    // Queries it held are lost (their clients ask again); later ones go to its successor.
    forwarder.once('exit', () => {
      if (this.done) return;
      if (this.restarts++ < FORWARDER_RESTARTS) this.startForwarder();
      else this.stop();
    });
  }

  /** Has the agent serve `servers` (loopback addresses) and relays their queries until stop(). */
  static async start(qemuPid: number, agent: AgentClient, servers: string[]): Promise<DnsRelay> {
    const relay = new DnsRelay(qemuPid, agent);
    try {
      await relay.add(servers);
    } catch (err) {
      relay.stop();
      throw err;
    }
    return relay;
  }

  /** Serves more addresses (a later container's resolv.conf); those served already are kept. */
  async add(servers: string[]): Promise<void> {
    const fresh = servers.filter((s) => !this.servers.has(s));
    if (!fresh.length) return;
    await this.agent.relayDns(fresh);
    for (const s of fresh) this.servers.add(s);
  }

  private async relay(): Promise<void> {
    while (!this.done) {
      let q: DnsQuery;
      // The agent's end (the VM stopped) ends the relay.
      try { q = await this.agent.readDnsQuery(); } catch { this.stop(); return; }
      // Only the servers this relay named: a misbehaving guest does not get the host to ask anything else.
      if (!this.done && this.servers.has(q.server)) this.forwarder.stdin!.write(queryFrame(q));
    }
  }

  private onAnswers(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 4 && this.pending.length >= 4 + this.pending.readUInt32BE(0)) {
      const len = this.pending.readUInt32BE(0);
      const id = this.pending.readUInt32BE(4);
      const message = this.pending.subarray(8, 4 + len);
      this.pending = this.pending.subarray(4 + len);
      // A query that expired in the guest meanwhile is no one's loss.
      this.agent.answerDnsQuery(id, Buffer.from(message)).catch(() => undefined);
    }
  }

  /** The relay has ended: stopped, its forwarder gone, or the agent unreachable. */
  get stopped(): boolean { return this.done; }

  stop(): void {
    if (this.done) return;
    this.done = true;
    this.forwarder.stdin!.end();
    this.forwarder.kill('SIGKILL');
  }
}
