// berth content ls | get | rm | label | active
import { registerCommand, requireArgs } from '../command.ts';
import { formatLabels, humanAge, humanSize } from '../output.ts';
import { fromTimestamp } from '../../api/proto.ts';
import { registerLabelCommand } from './label.ts';

const CONTENT = 'containerd.services.content.v1.Content';

registerCommand({
  path: ['content', 'ls'],
  aliases: ['list'],
  summary: 'list blobs in the content store',
  args: '[<filter>, ...]',
  flags: [{ name: 'quiet', alias: 'q', type: 'bool', usage: 'print only digests' }, { name: 'json', type: 'bool', usage: 'print JSON' }],
  async run(ctx, flags, args) {
    const infos: any[] = [];
    for await (const m of ctx.client().stream<any>(CONTENT, 'List', { filters: args })) infos.push(...m.info);
    if (flags.json) return ctx.out.json(infos);
    if (flags.quiet) { for (const i of infos) ctx.out.line(i.digest); return; }
    ctx.out.table(['DIGEST', 'SIZE', 'AGE', 'LABELS'], infos.map((i) => [i.digest, humanSize(i.size), humanAge(fromTimestamp(i.createdAt)), formatLabels(i.labels)]));
  },
});

registerCommand({
  path: ['content', 'get'],
  summary: 'write a blob to stdout',
  args: '<digest>',
  async run(ctx, _flags, args) {
    requireArgs(args, 1, 'berth content get <digest>');
    for await (const m of ctx.client().stream<any>(CONTENT, 'Read', { digest: args[0] })) {
      if (!process.stdout.write(m.data)) await new Promise((resolve) => process.stdout.once('drain', resolve));
    }
  },
});

registerCommand({
  path: ['content', 'rm'],
  aliases: ['remove', 'delete', 'del'],
  summary: 'delete one or more blobs',
  args: '<digest> [<digest>, ...]',
  async run(ctx, _flags, args) {
    requireArgs(args, 1, 'berth content rm <digest> [<digest>, ...]');
    for (const digest of args) {
      await ctx.client().call(CONTENT, 'Delete', { digest });
      ctx.out.line(digest);
    }
  },
});

registerLabelCommand({ group: 'content', idName: 'digest', service: CONTENT, field: 'info', idField: 'digest' });

registerCommand({
  path: ['content', 'active'],
  summary: 'list unfinished ingests (resumable downloads and writes)',
  flags: [{ name: 'json', type: 'bool', usage: 'print JSON' }],
  async run(ctx, flags) {
    const { statuses } = await ctx.client().call(CONTENT, 'ListStatuses', {});
    if (flags.json) return ctx.out.json(statuses);
    ctx.out.table(['REF', 'SIZE', 'AGE'], statuses.map((s: any) => [s.ref, `${humanSize(s.offset)}/${s.total ? humanSize(s.total) : '?'}`, humanAge(fromTimestamp(s.startedAt))]));
  },
});
