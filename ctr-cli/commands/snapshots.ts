// berth snapshots ls | info | usage | tree | mounts | prepare | view | commit | rm | label
import { registerCommand, requireArgs, type CliContext, type FlagSpec } from '../command.ts';
import { humanSize } from '../output.ts';
import { registerLabelCommand } from './label.ts';

const SNAPSHOTS = 'containerd.services.snapshots.v1.Snapshots';
const SNAPSHOTTER: FlagSpec = { name: 'snapshotter', type: 'string', usage: 'snapshotter name', default: 'overlayfs' };

async function list(ctx: CliContext, snapshotter: string, filters: string[] = []): Promise<any[]> {
  const out: any[] = [];
  for await (const m of ctx.client().stream<any>(SNAPSHOTS, 'List', { snapshotter, filters })) out.push(...m.info);
  return out;
}

const printMounts = (ctx: CliContext, target: string, mounts: any[]) => {
  for (const m of mounts) ctx.out.line(`mount -t ${m.type} ${m.source} ${target} -o ${m.options.join(',')}`);
};

registerCommand({
  path: ['snapshots', 'ls'],
  aliases: ['list'],
  summary: 'list snapshots',
  args: '[<filter>, ...]',
  flags: [SNAPSHOTTER, { name: 'json', type: 'bool', usage: 'print JSON' }],
  async run(ctx, flags, args) {
    const infos = await list(ctx, flags.snapshotter as string, args);
    if (flags.json) return ctx.out.json(infos);
    ctx.out.table(['KEY', 'PARENT', 'KIND'], infos.map((i) => [i.name, i.parent || '', i.kind]));
  },
});

registerCommand({
  path: ['snapshots', 'info'],
  summary: 'show one snapshot as JSON',
  args: '<key>',
  flags: [SNAPSHOTTER],
  async run(ctx, flags, args) {
    requireArgs(args, 1, 'berth snapshots info <key>');
    ctx.out.json((await ctx.client().call(SNAPSHOTS, 'Stat', { snapshotter: flags.snapshotter, key: args[0] })).info);
  },
});

registerCommand({
  path: ['snapshots', 'usage'],
  summary: 'show disk usage of snapshots',
  args: '[<key>, ...]',
  flags: [SNAPSHOTTER],
  async run(ctx, flags, args) {
    const keys = args.length ? args : (await list(ctx, flags.snapshotter as string)).map((i) => i.name);
    const rows = [];
    for (const key of keys) {
      const u = await ctx.client().call(SNAPSHOTS, 'Usage', { snapshotter: flags.snapshotter, key });
      rows.push([key, humanSize(u.size), String(u.inodes)]);
    }
    ctx.out.table(['KEY', 'SIZE', 'INODES'], rows);
  },
});

registerCommand({
  path: ['snapshots', 'tree'],
  summary: 'show snapshots as a tree of parents and children',
  flags: [SNAPSHOTTER],
  async run(ctx, flags) {
    const infos = await list(ctx, flags.snapshotter as string);
    const children = new Map<string, string[]>();
    for (const i of infos) children.set(i.parent || '', [...(children.get(i.parent || '') ?? []), i.name]);
    const walk = (name: string, depth: number) => {
      ctx.out.line(`${'  '.repeat(depth)}\\_ ${name}`);
      for (const c of (children.get(name) ?? []).sort()) walk(c, depth + 1);
    };
    for (const root of (children.get('') ?? []).sort()) walk(root, 0);
  },
});

registerCommand({
  path: ['snapshots', 'mounts'],
  aliases: ['m', 'mount'],
  summary: 'print the mount commands for an active or view snapshot',
  args: '<target> <key>',
  flags: [SNAPSHOTTER],
  async run(ctx, flags, args) {
    requireArgs(args, 2, 'berth snapshots mounts <target> <key>');
    printMounts(ctx, args[0]!, (await ctx.client().call(SNAPSHOTS, 'Mounts', { snapshotter: flags.snapshotter, key: args[1] })).mounts);
  },
});

for (const [verb, method, summary] of [['prepare', 'Prepare', 'create a writable snapshot on a committed parent'], ['view', 'View', 'create a read-only snapshot of a committed parent']] as const) {
  registerCommand({
    path: ['snapshots', verb],
    summary,
    args: '<key> [<parent>]',
    flags: [SNAPSHOTTER, { name: 'target', alias: 't', type: 'string', usage: 'print the mount commands for this target' }],
    async run(ctx, flags, args) {
      requireArgs(args, 1, `berth snapshots ${verb} <key> [<parent>]`);
      const { mounts } = await ctx.client().call(SNAPSHOTS, method, { snapshotter: flags.snapshotter, key: args[0], parent: args[1] ?? '' });
      if (flags.target) printMounts(ctx, flags.target as string, mounts);
    },
  });
}

registerCommand({
  path: ['snapshots', 'commit'],
  summary: 'commit an active snapshot under a name',
  args: '<name> <key>',
  flags: [SNAPSHOTTER],
  async run(ctx, flags, args) {
    requireArgs(args, 2, 'berth snapshots commit <name> <key>');
    await ctx.client().call(SNAPSHOTS, 'Commit', { snapshotter: flags.snapshotter, name: args[0], key: args[1] });
  },
});

registerCommand({
  path: ['snapshots', 'rm'],
  aliases: ['remove', 'delete', 'del'],
  summary: 'remove snapshots (children first)',
  args: '<key> [<key>, ...]',
  flags: [SNAPSHOTTER],
  async run(ctx, flags, args) {
    requireArgs(args, 1, 'berth snapshots rm <key> [<key>, ...]');
    for (const key of args) await ctx.client().call(SNAPSHOTS, 'Remove', { snapshotter: flags.snapshotter, key });
  },
});

registerLabelCommand({ group: 'snapshots', idName: 'key', service: SNAPSHOTS, field: 'info', idField: 'name', flags: [SNAPSHOTTER], extra: (f) => ({ snapshotter: f.snapshotter }) });
