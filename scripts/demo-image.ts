// Builds the demo image as an OCI image-layout archive: busybox from the host's busybox-static (one layer) plus
// a small layer of berth's own, so the demo needs no registry and no internet.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxImage, writeOciLayout } from '../test/helpers/image.ts';

const [out, tag = 'demo'] = process.argv.slice(2);
if (!out) {
  console.error('usage: demo-image.ts OUT.tar [TAG]');
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), 'berth-demo-image-'));
try {
  writeOciLayout(dir, await busyboxImage({ tag }), tag);
  execFileSync('tar', ['-C', dir, '-cf', out, '.']);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
