// berthd's event exchange, as containerd's events/exchange: services publish typed events per namespace,
// shims forward envelopes, subscribers receive what matches their filters (containerd's filter syntax on
// `topic`, `namespace` and `event.<field>` of the decoded payload). Delivery is in publish order per subscriber;
// a subscriber that cannot keep up is dropped rather than letting the daemon's memory grow without bound.
import { errInvalidArgument } from '../../api/errdefs.ts';
import { parseFilters, type Adaptor, type Filter } from '../../api/filters.ts';
import { packAny, unpackAny, type AnyMessage } from '../../api/proto.ts';

export interface Envelope {
  timestamp: Date;
  namespace: string;
  topic: string;
  event: AnyMessage;
}

const MAX_QUEUED = 10_000;

export interface Subscription extends AsyncIterable<Envelope> {
  close(): void;
}

function validateTopic(topic: string): void {
  if (!topic.startsWith('/') || topic.length < 2 || topic.endsWith('/') || topic.includes('//')) {
    throw errInvalidArgument(`invalid topic ${JSON.stringify(topic)}: must start with "/", have no empty components and not end with "/"`);
  }
}

function envelopeAdaptor(env: Envelope): Adaptor {
  let payload: Record<string, unknown> | undefined;
  return (path) => {
    if (path.length === 1 && path[0] === 'topic') return env.topic;
    if (path.length === 1 && path[0] === 'namespace') return env.namespace;
    if (path[0] !== 'event' || path.length < 2) return undefined;
    try {
      payload ??= unpackAny(env.event);
    } catch {
      return undefined;
    }
    let v: unknown = payload;
    for (const part of path.slice(1)) {
      const camel = part.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
      v = v && typeof v === 'object' ? (v as Record<string, unknown>)[camel] : undefined;
    }
    return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
  };
}

class Subscriber implements Subscription {
  private queue: Envelope[] = [];
  private wake: (() => void) | undefined;
  private closed = false;

  constructor(private readonly filter: Filter, private readonly detach: (s: Subscriber) => void) {}

  offer(env: Envelope): void {
    if (this.closed || !this.filter.match(envelopeAdaptor(env))) return;
    if (this.queue.length >= MAX_QUEUED) { this.close(); return; }
    this.queue.push(env);
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    this.detach(this);
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Envelope> {
    try {
      for (;;) {
        const next = this.queue.shift();
        if (next) { yield next; continue; }
        if (this.closed) return;
        await new Promise<void>((resolve) => { this.wake = resolve; });
        this.wake = undefined;
      }
    } finally {
      this.close();
    }
  }
}

/** A task exit as one event, whoever reports it (the shim's retried forward, or berthd at restore). */
function exitKey(env: Envelope): string | undefined {
  if (env.topic !== '/tasks/exit') return undefined;
  try {
    const e = unpackAny<{ containerId: string; id: string; pid: number }>(env.event);
    return `${env.namespace}/${e.containerId}/${e.id}/${e.pid}`;
  } catch {
    return undefined;
  }
}

/** Task events kept after a restart for clients that subscribe late (see keepTaskEventsFor). */
const MAX_KEPT = 1000;

export class EventExchange {
  private readonly subscribers = new Set<Subscriber>();
  /** While a restart's window is open: the task events so far, and the exits among them. */
  private kept: { events: Envelope[]; exits: Set<string>; timer: NodeJS.Timeout } | undefined;

  /**
   * After a restart, clients reconnect (dockerd after its gRPC backoff and a health check) and subscribe
   * again, while task events that happened meanwhile arrive before them: exits that shims retry forwarding,
   * and those berthd reports for tasks that ended while it was down. For `ms`, /tasks/ events are kept and
   * replayed to each new subscriber, and one exit per process passes (a shim's retry and berthd's own report
   * are the same exit).
   */
  keepTaskEventsFor(ms: number): void {
    this.stopKeeping();
    const timer = setTimeout(() => this.stopKeeping(), ms);
    timer.unref();
    this.kept = { events: [], exits: new Set(), timer };
  }

  stopKeeping(): void {
    if (this.kept) clearTimeout(this.kept.timer);
    this.kept = undefined;
  }

  /** Publishes `event` (a message of type `typeName`) on `topic` in namespace `ns`. */
  publish(ns: string, topic: string, typeName: string, event: object): void {
    validateTopic(topic);
    this.forward({ timestamp: new Date(), namespace: ns, topic, event: packAny(typeName, event) });
  }

  /** Publishes an already packed event (from a client's Publish call). */
  publishAny(ns: string, topic: string, event: AnyMessage): void {
    validateTopic(topic);
    this.forward({ timestamp: new Date(), namespace: ns, topic, event });
  }

  /** Relays an envelope as it is (from a shim or another daemon). */
  forward(env: Envelope): void {
    validateTopic(env.topic);
    if (this.kept && env.topic.startsWith('/tasks/')) {
      const key = exitKey(env);
      if (key && this.kept.exits.has(key)) return;
      if (key) this.kept.exits.add(key);
      if (this.kept.events.length < MAX_KEPT) this.kept.events.push(env);
    }
    for (const s of this.subscribers) s.offer(env);
  }

  /** Everything published from now on that matches any of the filters (none = all); within a restart's
   * window, the task events kept so far first. */
  subscribe(filters: string[] = []): Subscription {
    const s = new Subscriber(parseFilters(filters), (x) => this.subscribers.delete(x));
    for (const env of this.kept?.events ?? []) s.offer(env);
    this.subscribers.add(s);
    return s;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }
}
