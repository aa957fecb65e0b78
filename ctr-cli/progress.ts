// Pull progress for people: on a terminal, one redrawn line per layer with a bar, bytes and speed, plus a
// total; elsewhere, one plain line whenever a layer changes state. Never both, so logs stay readable.
import { humanSize } from './output.ts';

interface Layer { digest: string; status: string; offset: number; total: number }

export interface ProgressMessage { stage: string; digest?: string; status?: string; offset?: number; total?: number }

const BAR = 24;

export class PullProgress {
  private readonly layers = new Map<string, Layer>();
  private drawnLines = 0;
  private readonly started = Date.now();
  private lastDraw = 0;

  constructor(private readonly tty: boolean, private readonly write: (s: string) => void, private readonly ref: string) {}

  update(m: ProgressMessage): void {
    if (m.stage === 'resolve') { if (!this.tty) this.write(`${this.ref}: resolving\n`); return; }
    if (!m.digest) return;
    const prev = this.layers.get(m.digest);
    const total = m.total || prev?.total || 0;
    // Unpack messages carry no offset (0 on the wire): the layer was fetched by then, all of it.
    const fetched = m.stage === 'unpack' || m.status === 'exists' || m.status === 'done';
    const offset = fetched ? Math.max(total, prev?.offset ?? 0) : (m.offset || prev?.offset || 0);
    const layer: Layer = { digest: m.digest, status: m.status ?? '', offset, total };
    this.layers.set(m.digest, layer);
    if (!this.tty) {
      if (prev?.status !== layer.status) this.write(`${short(layer.digest)}: ${layer.status}${layer.total ? ` ${humanSize(layer.total)}` : ''}\n`);
      return;
    }
    if (Date.now() - this.lastDraw > 80 || layer.status === 'done') this.draw();
  }

  finish(): void {
    if (this.tty) this.draw();
    const bytes = [...this.layers.values()].reduce((s, l) => s + l.offset, 0);
    const secs = (Date.now() - this.started) / 1000;
    this.write(`done: ${humanSize(bytes)} in ${secs.toFixed(1)} s\n`);
  }

  private draw(): void {
    this.lastDraw = Date.now();
    const lines: string[] = [];
    let done = 0;
    let total = 0;
    for (const l of this.layers.values()) {
      done += l.offset;
      total += l.total;
      const frac = l.total ? Math.min(1, l.offset / l.total) : 0;
      const filled = Math.round(frac * BAR);
      lines.push(`${short(l.digest)}  ${l.status.padEnd(11)} |${'█'.repeat(filled)}${' '.repeat(BAR - filled)}| ${humanSize(l.offset)}/${humanSize(l.total)}`);
    }
    const secs = Math.max(0.001, (Date.now() - this.started) / 1000);
    lines.push(`total  ${humanSize(done)}/${humanSize(total)}  ${humanSize(Math.round(done / secs))}/s  ${secs.toFixed(1)} s`);
    // Move up over what was drawn last time and redraw in place.
    const up = this.drawnLines ? `\x1b[${this.drawnLines}A` : '';
    this.write(up + lines.map((l) => `\r\x1b[2K${l}`).join('\n') + '\n');
    this.drawnLines = lines.length;
  }
}

const short = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);
