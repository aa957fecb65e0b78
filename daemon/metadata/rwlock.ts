// A small async readers-writer lock: many shared holders or one exclusive holder; a waiting exclusive
// holder blocks new shared ones so the GC is never starved by a stream of commits.
export class RWLock {
  private readers = 0;
  private writer = false;
  private queue: { exclusive: boolean; wake: () => void }[] = [];

  async shared<T>(fn: () => Promise<T> | T): Promise<T> {
    if (this.writer || this.queue.length > 0) await new Promise<void>((wake) => this.queue.push({ exclusive: false, wake }));
    else this.readers++;
    try { return await fn(); } finally { this.readers--; this.drain(); }
  }

  async exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    if (this.writer || this.readers > 0 || this.queue.length > 0) await new Promise<void>((wake) => this.queue.push({ exclusive: true, wake }));
    else this.writer = true;
    try { return await fn(); } finally { this.writer = false; this.drain(); }
  }

  private drain(): void {
    while (this.queue.length > 0 && !this.writer) {
      const head = this.queue[0]!;
      if (head.exclusive) {
        if (this.readers > 0) return;
        this.queue.shift();
        this.writer = true;
        head.wake();
        return;
      }
      this.queue.shift();
      this.readers++;
      head.wake();
    }
  }
}
