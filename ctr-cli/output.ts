// How the CLI prints: aligned tables for people, JSON for scripts (--json), one id per line for -q, and
// the human units ctr uses (sizes in binary units, ages relative to now).
export interface Output {
  readonly isTTY: boolean;
  line(text?: string): void;
  table(headers: string[], rows: string[][]): void;
  json(value: unknown): void;
  error(text: string): void;
}

export function stdoutOutput(): Output {
  const isTTY = !!process.stdout.isTTY;
  return {
    isTTY,
    line: (text = '') => { process.stdout.write(text + '\n'); },
    table: (headers, rows) => { process.stdout.write(formatTable(headers, rows)); },
    json: (value) => { process.stdout.write(JSON.stringify(value, jsonReplacer, 2) + '\n'); },
    error: (text) => { process.stderr.write(text + '\n'); },
  };
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer') return Buffer.from((value as { data: number[] }).data).toString('base64');
  return value;
}

/** Columns padded to their widest cell, separated by three spaces (the last column is not padded). */
export function formatTable(headers: string[], rows: string[][]): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : (cell ?? '').padEnd(widths[i]!))).join('   ').trimEnd()).join('\n') + '\n';
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function humanSize(bytes: number): string {
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${UNITS[u]}`;
}

export function humanAge(date: Date, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - date.getTime()) / 1000));
  if (s < 1) return 'less than a second';
  if (s < 60) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} minute${m === 1 ? '' : 's'}`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} hour${h === 1 ? '' : 's'}`;
  const d = Math.round(h / 24);
  return `${d} days`;
}

export function formatLabels(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(',') : '-';
}

/** Parses "k=v" arguments into labels; "k=" or "k" clears the label (an empty value). */
export function parseLabelArgs(args: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of args) {
    const eq = a.indexOf('=');
    out[eq < 0 ? a : a.slice(0, eq)] = eq < 0 ? '' : a.slice(eq + 1);
  }
  return out;
}

/** A label update from "k=v" arguments: set labels and the fieldpaths to apply; "k=" or "k" deletes k. */
export function labelUpdate(args: string[]): { labels: Record<string, string>; paths: string[] } {
  const all = parseLabelArgs(args);
  const labels = Object.fromEntries(Object.entries(all).filter(([, v]) => v !== ''));
  return { labels, paths: Object.keys(all).map((k) => `labels.${k}`) };
}
