// One ttrpc connection per live shim address, shared by every task it serves (a grouped shim serves a whole
// namespace): a task's create then costs no connect and no accept on either side. Counted: the connection
// closes when its last task lets go, and when the shim dies every task on it sees the close.
import { BerthError, ErrorCode } from '../../api/errdefs.ts';
import { TtrpcClient } from '../../api/ttrpc/client.ts';

export class ShimConnections {
  private readonly live = new Map<string, TtrpcClient>();
  private readonly connecting = new Map<string, Promise<TtrpcClient>>();
  private readonly users = new Map<TtrpcClient, number>();

  /** A connection to `address` for one more user; `release` it when done. */
  async acquire(address: string, timeoutMs?: number): Promise<TtrpcClient> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const client = this.live.get(address);
      if (client && !client.closed) {
        this.users.set(client, (this.users.get(client) ?? 0) + 1);
        return client;
      }
      let pending = this.connecting.get(address);
      if (!pending) {
        pending = TtrpcClient.connect(address, timeoutMs).then((c) => {
          this.live.set(address, c);
          void c.waitClosed().then(() => { if (this.live.get(address) === c) this.live.delete(address); });
          return c;
        }).finally(() => this.connecting.delete(address));
        this.connecting.set(address, pending);
      }
      await pending;
    }
    throw new BerthError(ErrorCode.Unavailable, `ttrpc: the shim at ${address} keeps closing its connection`);
  }

  release(client: TtrpcClient): void {
    const users = (this.users.get(client) ?? 1) - 1;
    if (users > 0) { this.users.set(client, users); return; }
    this.users.delete(client);
    for (const [address, c] of this.live) if (c === client) this.live.delete(address);
    client.close();
  }

  closeAll(): void {
    for (const client of this.live.values()) client.close();
    this.live.clear();
    this.users.clear();
  }
}
