// One process the shim supervises: a container's init or an exec'd process. Its exit comes from its
// berth-monitor; an exit while Start runs is published only after the start event, so it is never lost nor
// reported out of order.
import type { Monitored, StdioPaths } from '../runtimes/monitor.ts';
import type { Process } from '../runtimes/oci/spec.ts';
import type { ProcessIo } from './stdio.ts';

export type ProcessStatus = 'CREATED' | 'RUNNING' | 'STOPPED' | 'PAUSED';

export interface ExitInfo {
  status: number;
  exitedAt: Date;
}

export class ShimProcess {
  pid = 0;
  status: ProcessStatus = 'CREATED';
  exit: ExitInfo | undefined;
  monitored: Monitored | undefined;
  /** Resolves when the process has exited (and its exit event is queued). */
  readonly exited: Promise<ExitInfo>;
  private resolveExit!: (e: ExitInfo) => void;
  /** The exit handler waits for this: the start event must go out first. */
  private started: Promise<void> = Promise.resolve();
  private releaseStart: (() => void) | undefined;

  readonly stdio: StdioPaths;

  /** `uris`: stdio as the client gave it (State reports these); `io`: what it resolved to. */
  constructor(readonly containerId: string, readonly execId: string, readonly uris: { stdin?: string; stdout?: string; stderr?: string },
    readonly io: ProcessIo, readonly terminal: boolean, readonly spec?: Process) {
    this.stdio = io.stdio;
    this.exited = new Promise((resolve) => { this.resolveExit = resolve; });
  }

  /** Holds exit reporting until markStarted() (after the start event is queued, or when start failed). */
  holdExitUntilStarted(): void {
    this.started = new Promise((resolve) => { this.releaseStart = resolve; });
  }

  markStarted(): void {
    this.releaseStart?.();
  }

  get id(): string {
    return this.execId || this.containerId;
  }

  /** Follows the monitor; `onExit` runs once, after the start event. */
  watch(m: Monitored, onExit: (p: ShimProcess, e: ExitInfo) => void): void {
    this.monitored = m;
    m.exited.then(async (e) => {
      await this.started;
      this.exit = { status: e.status, exitedAt: e.exitedAt };
      this.status = 'STOPPED';
      onExit(this, this.exit);
      this.resolveExit(this.exit);
    });
  }
}
