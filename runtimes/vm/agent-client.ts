// The host's side of berth.agent.v1.Agent (api/proto/berth/agent/v1/agent.proto): typed calls over a ttrpc
// connection to the guest agent's virtio-serial port (QEMU's unix socket chardev).
// Long-polls (waitProcess, readStdout/readStderr, getOOMEvent) have no deadline by default: the agent answers
// when there is something to say. A newer read of one stream supersedes an older one still waiting (the older one
// gets CANCELLED), so a read abandoned by the caller never swallows output.
import { BerthError, ErrorCode } from '../../api/errdefs.ts';
import { TtrpcClient, type CallOptions } from '../../api/ttrpc/client.ts';

export const AGENT_SERVICE = 'berth.agent.v1.Agent';

export interface PingResponse { agentVersion: string; kernelRelease: string; containers: string[] }
export interface StdioWanted { stdin?: boolean; stdout?: boolean; stderr?: boolean }
export interface CreateContainerRequest {
  containerId: string;
  /** A berth-init plan made by runtimes/oci/plan.ts for the guest's paths. */
  initPlan: Uint8Array;
  terminal?: boolean;
  stdio?: StdioWanted;
  /** The container's cgroup v2 directory in the guest (below /sys/fs/cgroup). */
  cgroupPath: string;
  /** Its device rules as a BPF_PROG_TYPE_CGROUP_DEVICE program (runtimes/cgroups/devices-bpf.ts). */
  deviceProgram?: Uint8Array;
}
export interface ExecProcessRequest { containerId: string; execId: string; execPlan: Uint8Array; terminal?: boolean; stdio?: StdioWanted }
export interface ProcessRef { containerId: string; execId?: string }
export interface WaitResult { exitStatus: number; exitedAtNs: number }
export interface CgroupWrite { file: string; value: string }
/** A host interface the guest's device is to mirror (MAC aa:bb:cc:dd:ee:ff). */
export interface NetworkInterface { name: string; mac: string; mtu: number; addresses: { address: string; prefixLen: number }[] }
/** destination: address/prefix, '' for the default route; scope: RT_SCOPE_* (0 universe, 253 link). */
export interface NetworkRoute { destination: string; gateway: string; device: string; source: string; scope: number; metric: number }
export interface NetworkConfig { interfaces: NetworkInterface[]; routes: NetworkRoute[] }
/** Cgroup file writes, and a device program that replaces the container's. */
export interface ContainerUpdate { writes?: CgroupWrite[]; deviceProgram?: Uint8Array }

export interface DnsQuery { id: number; server: string; tcp: boolean; message: Buffer }

export class AgentClient {
  private constructor(readonly ttrpc: TtrpcClient) {}

  /** Connects to the agent's port socket (the connection succeeds once QEMU listens; the agent may not yet). */
  static async connect(socketPath: string, timeoutMs = 5000): Promise<AgentClient> {
    return new AgentClient(await TtrpcClient.connect(socketPath, timeoutMs));
  }

  private call<T>(method: string, request: object = {}, opts: CallOptions = {}): Promise<T> {
    return this.ttrpc.call<T>(AGENT_SERVICE, method, request as Record<string, unknown>, opts);
  }

  ping(opts?: CallOptions): Promise<PingResponse> { return this.call('Ping', {}, opts); }

  /** Pings until the agent answers (it may still be booting), or fails once `timeoutMs` has passed. */
  async waitReady(timeoutMs: number, opts: { signal?: AbortSignal; intervalMs?: number } = {}): Promise<PingResponse> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      if (opts.signal?.aborted) throw new BerthError(ErrorCode.Canceled, 'agent: waiting for the guest agent cancelled');
      try {
        return await this.ping({ timeoutMs: Math.min(opts.intervalMs ?? 250, Math.max(1, deadline - Date.now())), signal: opts.signal });
      } catch (err) {
        last = err;
        if (this.ttrpc.closed) break;
      }
    }
    throw new BerthError(ErrorCode.DeadlineExceeded, `agent: the guest agent did not answer within ${timeoutMs} ms${last instanceof Error ? ` (${last.message})` : ''}`);
  }

  createSandbox(req: { shareTag?: string; shareMount?: string; hostname?: string }, opts?: CallOptions): Promise<void> {
    return this.call<unknown>('CreateSandbox', req, opts).then(() => undefined);
  }
  /** The guest powers off after answering. */
  destroySandbox(opts?: CallOptions): Promise<void> { return this.call<unknown>('DestroySandbox', {}, opts).then(() => undefined); }

  createContainer(req: CreateContainerRequest, opts?: CallOptions): Promise<{ pid: number }> { return this.call('CreateContainer', req, opts); }
  startContainer(containerId: string, opts?: CallOptions): Promise<void> { return this.call<unknown>('StartContainer', { containerId }, opts).then(() => undefined); }
  removeContainer(containerId: string, opts?: CallOptions): Promise<void> { return this.call<unknown>('RemoveContainer', { containerId }, opts).then(() => undefined); }
  execProcess(req: ExecProcessRequest, opts?: CallOptions): Promise<{ pid: number }> { return this.call('ExecProcess', req, opts); }
  signalProcess(req: ProcessRef & { signal: number; all?: boolean }, opts?: CallOptions): Promise<void> {
    return this.call<unknown>('SignalProcess', req, opts).then(() => undefined);
  }
  waitProcess(ref: ProcessRef, opts?: CallOptions): Promise<WaitResult> { return this.call('WaitProcess', ref, opts); }
  listProcesses(containerId: string, opts?: CallOptions): Promise<number[]> {
    return this.call<{ pids: number[] }>('ListProcesses', { containerId }, opts).then((r) => r.pids);
  }
  updateContainer(containerId: string, update: ContainerUpdate, opts?: CallOptions): Promise<void> {
    return this.call<unknown>('UpdateContainer', { containerId, ...update }, opts).then(() => undefined);
  }
  /** The container's cgroup files, raw (name → content). */
  statsContainer(containerId: string, opts?: CallOptions): Promise<Map<string, Buffer>> {
    return this.call<{ files: { name: string; content: Buffer }[] }>('StatsContainer', { containerId }, opts)
      .then((r) => new Map(r.files.map((f) => [f.name, f.content])));
  }
  pauseContainer(containerId: string, opts?: CallOptions): Promise<void> { return this.call<unknown>('PauseContainer', { containerId }, opts).then(() => undefined); }
  resumeContainer(containerId: string, opts?: CallOptions): Promise<void> { return this.call<unknown>('ResumeContainer', { containerId }, opts).then(() => undefined); }
  writeStdin(ref: ProcessRef, data: Uint8Array, opts?: CallOptions): Promise<number> {
    return this.call<{ len: number }>('WriteStdin', { ...ref, data }, opts).then((r) => r.len);
  }
  /** The next output bytes; an empty buffer means end of stream. */
  readStdout(ref: ProcessRef, len = 65536, opts?: CallOptions): Promise<Buffer> {
    return this.call<{ data: Buffer }>('ReadStdout', { ...ref, len }, opts).then((r) => r.data);
  }
  readStderr(ref: ProcessRef, len = 65536, opts?: CallOptions): Promise<Buffer> {
    return this.call<{ data: Buffer }>('ReadStderr', { ...ref, len }, opts).then((r) => r.data);
  }
  closeStdin(ref: ProcessRef, opts?: CallOptions): Promise<void> { return this.call<unknown>('CloseStdin', ref, opts).then(() => undefined); }
  ttyWinResize(ref: ProcessRef & { rows: number; columns: number }, opts?: CallOptions): Promise<void> {
    return this.call<unknown>('TtyWinResize', ref, opts).then(() => undefined);
  }
  /** Gives the guest's network devices, in order, the interfaces' identities, then adds the routes (once per
   * sandbox; in the sandbox's network namespace, which CreateSandbox made). */
  configureNetwork(config: NetworkConfig, opts?: CallOptions): Promise<void> {
    return this.call<unknown>('ConfigureNetwork', config, opts).then(() => undefined);
  }
  /** Serves DNS on loopback addresses of the sandbox's network namespace, each query relayed through the host
   * (readDnsQuery, answerDnsQuery). */
  relayDns(addresses: string[], opts?: CallOptions): Promise<void> {
    return this.call<unknown>('RelayDns', { addresses }, opts).then(() => undefined);
  }
  /** The next DNS query a container sent to a relayed address (a long poll). */
  readDnsQuery(opts?: CallOptions): Promise<DnsQuery> {
    return this.call<Partial<DnsQuery>>('ReadDnsQuery', {}, opts)
      .then((q) => ({ id: q.id ?? 0, server: q.server ?? '', tcp: !!q.tcp, message: Buffer.from(q.message ?? []) }));
  }
  /** The server's answer to a query; an empty one: there is none. */
  answerDnsQuery(id: number, message: Uint8Array, opts?: CallOptions): Promise<void> {
    return this.call<unknown>('AnswerDnsQuery', { id, message }, opts).then(() => undefined);
  }
  /** The id of the next container whose cgroup saw an OOM kill. */
  getOOMEvent(opts?: CallOptions): Promise<string> { return this.call<{ containerId: string }>('GetOOMEvent', {}, opts).then((r) => r.containerId); }

  /** Reads a stream to its end. */
  async readAll(ref: ProcessRef, stream: 'stdout' | 'stderr' = 'stdout'): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (;;) {
      const chunk = stream === 'stdout' ? await this.readStdout(ref) : await this.readStderr(ref);
      if (!chunk.length) return Buffer.concat(parts);
      parts.push(chunk);
    }
  }

  close(): void { this.ttrpc.close(); }
}
