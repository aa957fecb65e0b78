// `berth <group> label <id> k=v ...` for every kind of object with labels: one Update with a field mask.
import { registerCommand, requireArgs, type FlagSpec, type Flags } from '../command.ts';
import { formatLabels, labelUpdate } from '../output.ts';

export interface LabelTarget {
  group: string;
  /** What the id argument is called in usage ("name", "digest", "id", "key"). */
  idName: string;
  service: string;
  /** The Update request's object field ("image", "info", ...) and the id field inside it. */
  field: string;
  idField: string;
  flags?: FlagSpec[];
  /** Extra request fields (e.g. the snapshotter). */
  extra?: (flags: Flags) => Record<string, unknown>;
}

export function registerLabelCommand(t: LabelTarget): void {
  const usage = `berth ${t.group} label <${t.idName}> [<key>=<value>, ...]`;
  registerCommand({
    path: [t.group, 'label'],
    summary: `set and clear labels on a ${t.group.replace(/s$/, '')} ("k=" clears k)`,
    args: `<${t.idName}> [<key>=<value>, ...]`,
    ...(t.flags ? { flags: t.flags } : {}),
    async run(ctx, flags, args) {
      requireArgs(args, 1, usage);
      const { labels, paths } = labelUpdate(args.slice(1));
      const res = await ctx.client().call(t.service, 'Update', {
        ...(t.extra?.(flags) ?? {}), [t.field]: { [t.idField]: args[0], labels }, updateMask: { paths },
      });
      ctx.out.line(formatLabels(res[t.field]?.labels));
    },
  });
}
