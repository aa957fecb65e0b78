// berth namespaces create | ls | rm | label
import { registerCommand, requireArgs } from '../command.ts';
import { formatLabels, parseLabelArgs } from '../output.ts';
import { registerLabelCommand } from './label.ts';

const NS = 'containerd.services.namespaces.v1.Namespaces';

registerCommand({
  path: ['namespaces', 'create'],
  summary: 'create a namespace',
  args: '<name> [<key>=<value>, ...]',
  async run(ctx, _flags, args) {
    requireArgs(args, 1, 'berth namespaces create <name> [<key>=<value>, ...]');
    await ctx.client().call(NS, 'Create', { namespace: { name: args[0], labels: parseLabelArgs(args.slice(1)) } });
  },
});

registerCommand({
  path: ['namespaces', 'ls'],
  aliases: ['list'],
  summary: 'list namespaces',
  flags: [{ name: 'quiet', alias: 'q', type: 'bool', usage: 'print only names' }, { name: 'json', type: 'bool', usage: 'print JSON' }],
  async run(ctx, flags) {
    const { namespaces } = await ctx.client().call(NS, 'List', {});
    if (flags.json) return ctx.out.json(namespaces);
    if (flags.quiet) { for (const n of namespaces) ctx.out.line(n.name); return; }
    ctx.out.table(['NAME', 'LABELS'], namespaces.map((n: any) => [n.name, formatLabels(n.labels)]));
  },
});

registerCommand({
  path: ['namespaces', 'rm'],
  aliases: ['remove', 'delete', 'del'],
  summary: 'remove one or more (empty) namespaces',
  args: '<name> [<name>, ...]',
  async run(ctx, _flags, args) {
    requireArgs(args, 1, 'berth namespaces rm <name> [<name>, ...]');
    for (const name of args) {
      await ctx.client().call(NS, 'Delete', { name });
      ctx.out.line(name);
    }
  },
});

registerLabelCommand({ group: 'namespaces', idName: 'name', service: NS, field: 'namespace', idField: 'name' });
