// Entry for berth's V8 startup snapshot: everything a command needs is loaded and warmed at build time
// (modules evaluated, commands registered, protos parsed and codecs generated), so `berth` starts from a heap
// image instead of compiling and initialising ~300 KB of JavaScript on every run.
import v8 from 'node:v8';
import { protos } from '../api/proto.ts';
import { runCli } from './cli.ts';

const root = protos();
for (const service of ['containerd.services.version.v1.Version', 'containerd.services.tasks.v1.Tasks', 'containerd.services.containers.v1.Containers',
  'containerd.services.images.v1.Images', 'containerd.services.content.v1.Content', 'containerd.services.snapshots.v1.Snapshots',
  'containerd.services.leases.v1.Leases', 'berth.services.transfer.v1.Transfer']) {
  for (const m of Object.values(root.lookupService(service).methods)) {
    m.resolve();
    // Generating the encoders and decoders once here keeps that work out of every run.
    for (const t of [m.resolvedRequestType!, m.resolvedResponseType!]) { t.encode(t.fromObject({})); t.toObject(t.decode(new Uint8Array())); }
  }
}

v8.startupSnapshot.setDeserializeMainFunction(() => runCli(process.argv.slice(1)));
