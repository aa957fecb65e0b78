// berth containers ls | info | rm | label
import { registerCommand, requireArgs } from '../command.ts';
import { registerLabelCommand } from './label.ts';

const CONTAINERS = 'containerd.services.containers.v1.Containers';

registerCommand({
  path: ['containers', 'ls'],
  aliases: ['list'],
  summary: 'list containers',
  args: '[<filter>, ...]',
  flags: [{ name: 'quiet', alias: 'q', type: 'bool', usage: 'print only ids' }, { name: 'json', type: 'bool', usage: 'print JSON' }],
  async run(ctx, flags, args) {
    const { containers } = await ctx.client().call(CONTAINERS, 'List', { filters: args });
    if (flags.json) return ctx.out.json(containers);
    if (flags.quiet) { for (const c of containers) ctx.out.line(c.id); return; }
    ctx.out.table(['CONTAINER', 'IMAGE', 'RUNTIME'], containers.map((c: any) => [c.id, c.image || '-', c.runtime?.name ?? '-']));
  },
});

registerCommand({
  path: ['containers', 'info'],
  summary: 'show a container as JSON (with its OCI spec decoded)',
  args: '<id>',
  async run(ctx, _flags, args) {
    requireArgs(args, 1, 'berth containers info <id>');
    const { container } = await ctx.client().call(CONTAINERS, 'Get', { id: args[0] });
    const spec = container.spec?.value ? JSON.parse(Buffer.from(container.spec.value).toString('utf8')) : undefined;
    ctx.out.json({ ...container, spec });
  },
});

registerCommand({
  path: ['containers', 'rm'],
  aliases: ['remove', 'delete', 'del'],
  summary: 'delete containers (their snapshots go with them)',
  args: '<id> [<id>, ...]',
  async run(ctx, _flags, args) {
    requireArgs(args, 1, 'berth containers rm <id> [<id>, ...]');
    for (const id of args) {
      const { container } = await ctx.client().call(CONTAINERS, 'Get', { id });
      await ctx.client().call(CONTAINERS, 'Delete', { id });
      if (container.snapshotKey) {
        await ctx.client().call('containerd.services.snapshots.v1.Snapshots', 'Remove', { snapshotter: container.snapshotter, key: container.snapshotKey }).catch(() => undefined);
      }
      ctx.out.line(id);
    }
  },
});

registerLabelCommand({ group: 'containers', idName: 'id', service: CONTAINERS, field: 'container', idField: 'id' });
