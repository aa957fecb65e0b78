import { mkdtempSync } from 'node:fs';
import { OverlaySnapshotter } from '../snapshotters/overlayfs.ts';
const root = mkdtempSync('/var/lib/zz-snap-');
const s = new OverlaySnapshotter(root);
await s.prepare('base-a', undefined); await s.commit('base', 'base-a');
const t = async (f: () => Promise<unknown>) => { const s0 = process.hrtime.bigint(); await f(); return Number(process.hrtime.bigint() - s0) / 1e6; };
const p: number[] = [], r: number[] = [];
for (let i = 0; i < 40; i++) { p.push(await t(() => s.prepare(`k${i}`, 'base'))); r.push(await t(() => s.remove(`k${i}`))); }
const med = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!.toFixed(2);
console.log('backend prepare', med(p), 'remove', med(r));
await s.close();
