// Publishes task events to the daemon in order: containerd.services.events.ttrpc.v1.Events/Forward on the
// daemon's ttrpc socket (TTRPC_ADDRESS). Events queue while the daemon is away (a restart) and are sent when
// it is back, oldest first; a queue that grows past its bound drops the oldest, logging it.
import type { Logger } from 'pino';
import { packAny, toTimestamp } from '../api/proto.ts';
import { TtrpcClient } from '../api/ttrpc/client.ts';

const FORWARD = 'containerd.services.events.ttrpc.v1.Events';
const MAX_QUEUE = 10_000;
const RETRY_MS = 200;

interface Pending { topic: string; typeName: string; event: object; timestamp: Date }

export class EventPublisher {
  private readonly queue: Pending[] = [];
  private client: TtrpcClient | undefined;
  private draining = false;
  private idle: (() => void)[] = [];

  constructor(private readonly address: string | undefined, private readonly namespace: string, private readonly log: Logger) {}

  publish(topic: string, typeName: string, event: object): void {
    if (!this.address) return;
    if (this.queue.length >= MAX_QUEUE) this.log.warn({ topic: this.queue.shift()!.topic }, 'event queue full: dropped the oldest');
    this.queue.push({ topic, typeName, event, timestamp: new Date() });
    // After the current request's reply is written: the caller waits for that, nobody waits for the event.
    setImmediate(() => void this.drain());
  }

  /** Resolves once every queued event has been sent (or the publisher gave up). */
  flushed(): Promise<void> {
    return this.queue.length === 0 && !this.draining ? Promise.resolve() : new Promise((resolve) => this.idle.push(resolve));
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length) {
        const next = this.queue[0]!;
        try {
          this.client ??= await TtrpcClient.connect(this.address!, 2000);
          await this.client.call(FORWARD, 'Forward', {
            envelope: { timestamp: toTimestamp(next.timestamp), namespace: this.namespace, topic: next.topic, event: packAny(next.typeName, next.event) },
          }, { timeoutMs: 5000 });
          this.queue.shift();
        } catch (err) {
          this.log.debug({ err, topic: next.topic }, 'event not forwarded yet');
          this.client?.close();
          this.client = undefined;
          await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
        }
      }
    } finally {
      this.draining = false;
      for (const w of this.idle.splice(0)) w();
    }
  }

  close(): void {
    this.client?.close();
  }
}
