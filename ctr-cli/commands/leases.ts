// berth leases ls | create | rm
import { registerCommand, requireArgs } from '../command.ts';
import { formatLabels, humanAge, parseLabelArgs } from '../output.ts';
import { fromTimestamp } from '../../api/proto.ts';

const LEASES = 'containerd.services.leases.v1.Leases';

registerCommand({
  path: ['leases', 'ls'],
  aliases: ['list'],
  summary: 'list leases',
  args: '[<filter>, ...]',
  flags: [{ name: 'quiet', alias: 'q', type: 'bool', usage: 'print only ids' }],
  async run(ctx, flags, args) {
    const { leases } = await ctx.client().call(LEASES, 'List', { filters: args });
    if (flags.quiet) { for (const l of leases) ctx.out.line(l.id); return; }
    ctx.out.table(['ID', 'CREATED AT', 'LABELS'], leases.map((l: any) => [l.id, humanAge(fromTimestamp(l.createdAt)) + ' ago', formatLabels(l.labels)]));
  },
});

registerCommand({
  path: ['leases', 'create'],
  summary: 'create a lease (expiring after --expires)',
  args: '[<key>=<value>, ...]',
  flags: [{ name: 'id', type: 'string', usage: 'lease id (default random)' }, { name: 'expires', alias: 'x', type: 'string', usage: 'expiry in seconds', default: '86400' }],
  async run(ctx, flags, args) {
    const labels = parseLabelArgs(args);
    const secs = Number(flags.expires);
    if (secs > 0) labels['containerd.io/gc.expire'] = new Date(Date.now() + secs * 1000).toISOString();
    const { lease } = await ctx.client().call(LEASES, 'Create', { id: flags.id ?? '', labels });
    ctx.out.line(lease.id);
  },
});

registerCommand({
  path: ['leases', 'rm'],
  aliases: ['remove', 'delete', 'del'],
  summary: 'delete leases',
  args: '<id> [<id>, ...]',
  flags: [{ name: 'sync', type: 'bool', usage: 'wait for garbage collection' }],
  async run(ctx, flags, args) {
    requireArgs(args, 1, 'berth leases rm <id> [<id>, ...]');
    for (const id of args) {
      await ctx.client().call(LEASES, 'Delete', { id, sync: !!flags.sync });
      ctx.out.line(id);
    }
  },
});
