// berth run: ctr's `run` — create a container from an image (snapshot on its top layer, spec from
// containerd's default + the image config + flags), run it as a task with stdio on FIFOs, wait, and exit
// with its status. --rm removes the task, container and snapshot afterwards; -d leaves it running.
import { ErrorCode, codeOf, errInvalidArgument } from '../../api/errdefs.ts';
import { encodeMessage } from '../../api/proto.ts';
import { registerCommand, requireArgs, type CliContext, type Flags, type FlagSpec } from '../command.ts';
import type { ApiClient } from '../../api/grpc-client.ts';
import { runnableImage, type RunnableImage } from '../image.ts';
import { defaultSeccompProfile } from '../../api/oci-defaults/seccomp-profile.ts';
import { defaultSpec, parseMount, withCaps, withImageConfig, withPrivileged, withTty, withUser, type Spec } from '../spec.ts';
import { consoleSize, openTaskIo, requireTerminal, type TaskIo } from '../task-io.ts';

const CONTAINERS = 'containerd.services.containers.v1.Containers';
const TASKS = 'containerd.services.tasks.v1.Tasks';
const SNAPSHOTS = 'containerd.services.snapshots.v1.Snapshots';
const LEASES = 'containerd.services.leases.v1.Leases';
const SPEC_TYPE = 'types.containerd.io/opencontainers/runtime-spec/1/Spec';

export const CONTAINER_FLAGS: FlagSpec[] = [
  { name: 'env', type: 'strings', usage: 'environment variable KEY=VALUE (repeatable)' },
  { name: 'cwd', type: 'string', usage: 'working directory in the container' },
  { name: 'user', alias: 'u', type: 'string', usage: 'uid[:gid] to run as' },
  { name: 'mount', type: 'strings', usage: 'type=bind,src=/host,dst=/ctr,options=rbind:ro (repeatable)' },
  { name: 'memory-limit', type: 'string', usage: 'memory limit in bytes' },
  { name: 'cpus', type: 'string', usage: 'CPUs (e.g. 0.5)' },
  { name: 'cpu-quota', type: 'string', usage: 'CPU CFS quota in µs per 100 ms period' },
  { name: 'net-host', type: 'bool', usage: 'share the host\'s network namespace' },
  { name: 'privileged', type: 'bool', usage: 'all capabilities, no masked paths, all devices' },
  { name: 'read-only', type: 'bool', usage: 'read-only root filesystem' },
  { name: 'cap-add', type: 'strings', usage: 'add a capability (repeatable)' },
  { name: 'cap-drop', type: 'strings', usage: 'drop a capability (repeatable)' },
  { name: 'label', type: 'strings', usage: 'container label key=value (repeatable)' },
  { name: 'hostname', type: 'string', usage: 'hostname in the container' },
  { name: 'seccomp', type: 'string', usage: 'apply containerd\'s default seccomp profile (true/false)', default: 'true' },
  { name: 'tty', alias: 't', type: 'bool', usage: 'allocate a terminal (raw mode, window size followed)' },
  { name: 'runtime', type: 'string', usage: 'runtime name', default: 'io.containerd.berth.v2' },
  { name: 'runc-binary', type: 'string', usage: 'OCI runtime binary for the shim (fast, runc, crun, runsc, berth-runc)' },
  { name: 'runtime-class', type: 'string', usage: 'runtime class berthd runs it as (berth runtimes ls): fast, runc, crun, gvisor, ...' },
  { name: 'trust', type: 'string', usage: 'untrusted: label the container berth.io/trust=untrusted (berthd\'s policy sandboxes it)' },
  { name: 'snapshotter', type: 'string', usage: 'snapshotter', default: 'overlayfs' },
];

/** Creates the container record and its snapshot from an image; returns the rootfs mounts, and the release of
 * the lease that held the snapshot meanwhile (nothing waits on it: it is awaited before the command ends).
 * Calls that do not depend on each other go out at once: the lease with the image lookup, the snapshot with
 * the container record. */
export async function createContainer(ctx: CliContext, flags: Flags, image: string, id: string, args: string[]): Promise<{ rootfs: any[]; released: Promise<unknown> }> {
  const c = ctx.client();
  // As containerd's client: a lease holds the new snapshot until the container record references it, so a
  // garbage collection in between cannot take it.
  const leasing = c.call(LEASES, 'Create', { labels: { 'containerd.io/gc.expire': new Date(Date.now() + 3_600_000).toISOString() } });
  leasing.catch(() => undefined);
  const release = async () => {
    try { await c.call(LEASES, 'Delete', { id: (await leasing).lease.id }); } catch { /* never made, or gone */ }
  };
  try {
    const img = await runnableImage(c, image);
    const spec = containerSpec(ctx, flags, id, img, args);
    const { lease } = await leasing;
    const rootfs = await createUnderLease(c.with({ lease: lease.id }), flags, image, id, img, spec);
    return { rootfs, released: release() };
  } catch (err) {
    await release();
    throw err;
  }
}

function containerSpec(ctx: CliContext, flags: Flags, id: string, img: RunnableImage, args: string[]): Spec {
  const spec = defaultSpec(ctx.namespace, id);
  withImageConfig(spec, img.config, args);
  const env = flags.env as string[];
  if (env.length) spec.process.env = [...spec.process.env.filter((e: string) => !env.some((x) => x.split('=')[0] === e.split('=')[0])), ...env];
  if (flags.cwd) spec.process.cwd = flags.cwd;
  if (flags.user) withUser(spec, flags.user as string);
  if (flags.tty) withTty(spec, consoleSize());
  if (flags.privileged) withPrivileged(spec);
  withCaps(spec, flags['cap-add'] as string[], flags['cap-drop'] as string[]);
  if (flags['read-only']) spec.root.readonly = true;
  if (flags.seccomp !== 'true' && flags.seccomp !== 'false') throw errInvalidArgument(`--seccomp ${flags.seccomp}: want true or false`);
  if (flags.seccomp === 'true' && !flags.privileged) spec.linux.seccomp = defaultSeccompProfile(spec.process.capabilities.bounding);
  if (flags.hostname) spec.hostname = flags.hostname;
  if (flags['net-host']) spec.linux.namespaces = spec.linux.namespaces.filter((n: any) => n.type !== 'network');
  for (const m of flags.mount as string[]) spec.mounts.push(parseMount(m));
  if (flags['memory-limit']) spec.linux.resources.memory = { limit: positive(flags['memory-limit'] as string, '--memory-limit') };
  if (flags.cpus) {
    const period = 100_000;
    spec.linux.resources.cpu = { period, quota: Math.round(Number(flags.cpus) * period) };
    if (!(Number(flags.cpus) > 0)) throw errInvalidArgument(`--cpus ${flags.cpus}: want a positive number`);
  }
  if (flags['cpu-quota']) spec.linux.resources.cpu = { period: 100_000, quota: positive(flags['cpu-quota'] as string, '--cpu-quota') };
  return spec;
}

async function createUnderLease(c: ApiClient, flags: Flags, image: string, id: string, img: RunnableImage, spec: Spec): Promise<any[]> {
  const snapshotter = flags.snapshotter as string;
  const labels = Object.fromEntries((flags.label as string[]).map((l) => { const i = l.indexOf('='); return i < 0 ? [l, ''] : [l.slice(0, i), l.slice(i + 1)]; }));
  const binary = flags['runc-binary'] as string | undefined;
  const runtimeClass = flags['runtime-class'] as string | undefined;
  if (runtimeClass && binary) throw errInvalidArgument('--runtime-class and --runc-binary: give one (the class names its backend)');
  if (flags.trust !== undefined) {
    if (flags.trust !== 'untrusted' && flags.trust !== 'trusted') throw errInvalidArgument(`--trust ${flags.trust}: want untrusted or trusted`);
    labels['berth.io/trust'] = flags.trust;
  }
  const [prepared, created] = await Promise.allSettled([
    c.call(SNAPSHOTS, 'Prepare', { snapshotter, key: id, parent: img.chainId }),
    c.call(CONTAINERS, 'Create', {
      container: {
        id, image: img.name, labels, snapshotter, snapshotKey: id,
        runtime: { name: runtimeClass ?? flags.runtime, ...(binary ? { options: { typeUrl: 'containerd.runc.v1.Options', value: encodeMessage('containerd.runc.v1.Options', { binaryName: binary }) } } : {}) },
        spec: { typeUrl: SPEC_TYPE, value: Buffer.from(JSON.stringify(spec)) },
      },
    }),
  ]);
  // Undo only what this call made: a snapshot or container that was there already is someone else's.
  if (prepared.status === 'rejected') {
    if (created.status === 'fulfilled') await c.call(CONTAINERS, 'Delete', { id }).catch(() => undefined);
    const err = prepared.reason as Error;
    if (codeOf(err) === ErrorCode.NotFound) throw errInvalidArgument(`image ${image} is not unpacked for snapshotter ${snapshotter}: pull it with berth images pull`);
    throw err;
  }
  if (created.status === 'rejected') {
    await c.call(SNAPSHOTS, 'Remove', { snapshotter, key: id }).catch(() => undefined);
    throw created.reason;
  }
  return prepared.value.mounts;
}

/** ctr's --log-uri: a binary:// or file:// URI, or an absolute path (a file). */
function logUriOf(value: string, terminal: boolean): string {
  if (terminal) throw errInvalidArgument('--log-uri and --tty cannot be used together');
  if (value.startsWith('/')) return `file://${value}`;
  if (/^(binary|file):\/\//.test(value)) return value;
  throw errInvalidArgument(`--log-uri ${value}: want binary:///path/to/logger, file:///path or an absolute path`);
}

function positive(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw errInvalidArgument(`${flag} ${v}: want a positive integer`);
  return n;
}

registerCommand({
  path: ['run'],
  summary: 'run a container from an image',
  args: '<image> <id> [<command> [<arg>...]]',
  passThroughAfter: 2,
  flags: [
    { name: 'rm', type: 'bool', usage: 'remove the container when it exits' },
    { name: 'detach', alias: 'd', type: 'bool', usage: 'start it and return' },
    { name: 'log-uri', type: 'string', usage: 'send stdout and stderr to binary:///logger?k=v, file:///path or /path instead of here' },
    ...CONTAINER_FLAGS,
  ],
  async run(ctx, flags, args) {
    requireArgs(args, 2, 'berth run [flags] <image> <id> [<command> [<arg>...]]');
    const [image, id, ...cmd] = args as [string, string, ...string[]];
    const c = ctx.client();
    const terminal = !!flags.tty;
    const logUri = flags['log-uri'] ? logUriOf(flags['log-uri'] as string, terminal) : '';
    if (terminal && !flags.detach) requireTerminal();
    const { rootfs, released } = await createContainer(ctx, flags, image, id, cmd);
    const io: TaskIo | undefined = flags.detach || logUri ? undefined : openTaskIo(id, { terminal });
    try {
      await c.call(TASKS, 'Create', {
        containerId: id, rootfs, terminal, stdin: io?.stdin ?? '', stdout: io?.stdout ?? logUri, stderr: io?.stderr ?? logUri,
      });
      const waiting = flags.detach ? undefined : c.call(TASKS, 'Wait', { containerId: id });
      await c.call(TASKS, 'Start', { containerId: id });
      if (!waiting) return 0;
      io?.started((width, height) => c.call(TASKS, 'ResizePty', { containerId: id, width, height }));
      const { exitStatus } = await waiting;
      await io?.copying;
      return exitStatus;
    } finally {
      io?.done();
      if (flags.rm) {
        await c.call(TASKS, 'Delete', { containerId: id }).catch(() => undefined);
        // The snapshot is removed by name, not left to a GC once the container is gone (containerd's
        // WithSnapshotCleanup); both at once: neither needs the other.
        await Promise.all([
          c.call(SNAPSHOTS, 'Remove', { snapshotter: flags.snapshotter, key: id }).catch(() => undefined),
          c.call(CONTAINERS, 'Delete', { id }).catch(() => undefined),
        ]);
      }
      await released;
    }
  },
});

registerCommand({
  path: ['containers', 'create'],
  summary: 'create a container from an image (start it with berth tasks start)',
  args: '<image> <id> [<command> [<arg>...]]',
  passThroughAfter: 2,
  flags: CONTAINER_FLAGS,
  async run(ctx, flags, args) {
    requireArgs(args, 2, 'berth containers create [flags] <image> <id> [<command> [<arg>...]]');
    const [image, id, ...cmd] = args as [string, string, ...string[]];
    await (await createContainer(ctx, flags, image, id, cmd)).released;
  },
});
