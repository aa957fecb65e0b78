// containerd-shim-berth-v2: containerd's runtime v2 shim contract.
//   start   spawn (or find, for a group) the long-lived shim, print its ttrpc address, exit
//   delete  clean up after a shim that is gone; print a DeleteResponse protobuf
//   (none)  serve containerd.task.v2.Task on the socket given by -socket
// Flags are Go-style (-namespace NS -address ADDR -publish-binary BIN -id ID -bundle DIR -debug).
import { parseArgs } from 'node:util';
import { BerthError } from '../api/errdefs.ts';
import { deleteAction } from './delete.ts';
import { serve } from './serve.ts';
import { startAction } from './start.ts';

export interface ShimFlags {
  namespace: string;
  address: string;
  publishBinary: string;
  id: string;
  bundle: string;
  socket: string;
  debug: boolean;
}

function flags(argv: string[]): { flags: ShimFlags; action: string | undefined } {
  // Go's flag package accepts -name and --name; parseArgs wants --name for long options.
  const args = argv.map((a) => (/^-[a-z-]{2,}/.test(a) ? `-${a}` : a));
  const { values, positionals } = parseArgs({
    args, allowPositionals: true, strict: true,
    options: {
      namespace: { type: 'string' }, address: { type: 'string' }, 'publish-binary': { type: 'string' }, id: { type: 'string' },
      bundle: { type: 'string' }, socket: { type: 'string' }, debug: { type: 'boolean' }, v: { type: 'boolean' }, version: { type: 'boolean' },
    },
  });
  if (values.v || values.version) { process.stdout.write('containerd-shim-berth-v2: v0.1.0\n'); process.exit(0); }
  return {
    action: positionals[0],
    flags: {
      namespace: values.namespace ?? '', address: values.address ?? '', publishBinary: values['publish-binary'] ?? '',
      id: values.id ?? '', bundle: values.bundle ?? process.cwd(), socket: values.socket ?? '', debug: !!values.debug,
    },
  };
}

async function main(): Promise<void> {
  const { flags: f, action } = flags(process.argv.slice(2));
  if (!f.namespace) throw new BerthError('invalid argument', 'shim namespace cannot be empty (-namespace)');
  if (!f.id) throw new BerthError('invalid argument', 'shim id cannot be empty (-id)');
  if (action === 'start') return startAction(f);
  if (action === 'delete') return deleteAction(f);
  if (action !== undefined) throw new BerthError('invalid argument', `unknown action ${JSON.stringify(action)}: want start or delete`);
  return serve(f);
}

main().catch((err) => {
  process.stderr.write(`containerd-shim-berth-v2: ${(err as Error).message ?? err}\n`);
  process.exit(1);
});
