// The warm pool: sandboxes booted ahead and waiting for a container, refilled in the background, so a start in
// a VM costs agent calls rather than a boot. One pool per shim; its size is BERTH_VM_POOL (0 turns it off; berthd
// sets it in the group shims it starts from the vm class's `warm_pool`), by default 1 in a shim that serves a group
// (a single container's shim is started with its container: nothing to boot ahead of) and 0 otherwise.
import { fits, type VmSize } from './sizing.ts';
import { Sandbox } from './sandbox.ts';

export function poolSizeFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const configured = env.BERTH_VM_POOL;
  if (configured !== undefined && configured !== '') {
    const n = Number(configured);
    if (Number.isInteger(n) && n >= 0) return n;
  }
  return env.BERTH_SHIM_GROUP ? 1 : 0;
}

export class WarmPool {
  private readonly ready: Sandbox[] = [];
  private booting = 0;
  private closed = false;
  /** Boots that failed in a row: the pool stops refilling after a few (the next take boots and reports why). */
  private failures = 0;

  constructor(private readonly root: string, readonly size: number, readonly vmSize: VmSize) {}

  /** How many sandboxes wait, and how many are booting. */
  get counts(): { ready: number; booting: number } {
    return { ready: this.ready.length, booting: this.booting };
  }

  /** A booted sandbox that fits `need` (pooled VMs have the default size: one may be larger than needed, the
   * container's cgroup limits it in the guest), else one booted now of the size needed; the pool refills behind
   * it (after our own boot: two at once would only slow each other). */
  async take(need: VmSize): Promise<{ sandbox: Sandbox; warm: boolean }> {
    const i = this.ready.findIndex((s) => fits(need, s.size));
    const sandbox = i >= 0 ? this.ready.splice(i, 1)[0] : undefined;
    if (sandbox) {
      this.refill();
      return { sandbox, warm: true };
    }
    try {
      return { sandbox: await Sandbox.boot(this.root, need), warm: false };
    } finally {
      this.refill();
    }
  }

  /** Boots sandboxes in the background until `size` wait or boot. */
  refill(): void {
    while (!this.closed && this.failures < 3 && this.ready.length + this.booting < this.size) {
      this.booting++;
      void Sandbox.boot(this.root, this.vmSize).then((s) => {
        this.failures = 0;
        if (this.closed) void s.destroy();
        else {
          this.ready.push(s);
          // A pooled VM that dies waiting leaves the pool (and is replaced).
          void s.ended.then(() => { const at = this.ready.indexOf(s); if (at >= 0) { this.ready.splice(at, 1); void s.destroy(); this.refill(); } });
        }
      }, () => { this.failures++; }).finally(() => { this.booting--; this.refill(); });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.ready.splice(0).map((s) => s.destroy()));
  }
}
