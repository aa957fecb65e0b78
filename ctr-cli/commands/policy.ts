// berth runtimes ls | policy show | policy explain IMAGE | policy check FILE: the runtime classes and the trust
// policy berthd enforces (daemon/policy/). check runs here, with berthd's own parser, so a file is checked before
// it is installed and SIGHUP sent.
import { readFileSync } from 'node:fs';
import { parse } from 'smol-toml';
import { errInvalidArgument } from '../../api/errdefs.ts';
import { builtinClasses } from '../../daemon/policy/classes.ts';
import { loadPolicy } from '../../daemon/policy/holder.ts';
import { parsePolicyFile } from '../../daemon/policy/parse.ts';
import { registerCommand, requireArgs } from '../command.ts';
import { parseLabelArgs } from '../output.ts';

const POLICY = 'berth.services.policy.v1.Policy';

registerCommand({
  path: ['runtimes', 'ls'],
  aliases: ['list'],
  summary: 'list the runtime classes, their isolation, and why an unusable one is unusable',
  flags: [{ name: 'json', type: 'bool', usage: 'print JSON' }],
  async run(ctx, flags) {
    const { classes } = await ctx.client().call(POLICY, 'Runtimes', {});
    if (flags.json) return ctx.out.json(classes);
    ctx.out.table(['CLASS', 'ISOLATION', 'RUNTIME', 'BACKEND', 'WARM', 'USABLE'], classes.map((c: any) => [
      c.name + (c.default ? ' (default)' : ''), c.isolation, c.runtimeType, c.options.binaryName ?? 'fast', String(c.warmPool ?? '-'), c.unusable ? `no: ${c.unusable}` : 'yes',
    ]));
  },
});

registerCommand({
  path: ['policy', 'show'],
  summary: 'print the policy berthd enforces',
  flags: [{ name: 'json', type: 'bool', usage: 'print JSON' }],
  async run(ctx, flags) {
    const p = await ctx.client().call(POLICY, 'Show', {});
    if (flags.json) return ctx.out.json(p);
    ctx.out.line(`policy: ${p.source} (rules in order; the first that matches decides)`);
    for (const r of p.rules) {
      const does = r.action === 'require' ? `require isolation ${r.isolation}${r.runtimeClass ? ` (class ${r.runtimeClass})` : ''}, ${r.onWeaker} a weaker runtime` : r.action;
      ctx.out.line(`- ${r.name}: ${does}${r.reason ? ` (${r.reason})` : ''}`);
      ctx.out.line(`    match ${r.match === '{}' ? 'every container' : r.match}`);
      if (r.forbid.length) ctx.out.line(`    forbid ${r.forbid.join(', ')}`);
      if (r.force.length) ctx.out.line(`    force ${r.force.join(', ')}`);
    }
    if (!p.rules.length) ctx.out.line('(no rules: every container runs as it asks)');
  },
});

registerCommand({
  path: ['policy', 'explain'],
  summary: 'print the rule that applies to a container of IMAGE and the runtime class that would run it',
  args: '<image>',
  flags: [
    { name: 'namespace', type: 'string', usage: 'the namespace the container would be in (default: the global one)' },
    { name: 'label', type: 'strings', usage: 'container label key=value (repeatable)' },
    { name: 'annotation', type: 'strings', usage: 'spec annotation key=value (repeatable)' },
    { name: 'privileged', type: 'bool', usage: 'as `berth run --privileged` would ask' },
    { name: 'net-host', type: 'bool', usage: 'as `berth run --net-host` would ask' },
    { name: 'runtime-class', type: 'string', usage: 'the runtime class asked for (default: the default class)' },
    { name: 'json', type: 'bool', usage: 'print JSON' },
  ],
  async run(ctx, flags, args) {
    requireArgs(args, 1, 'berth policy explain <image> [--namespace N] [--label k=v] [--privileged]');
    const d = await ctx.client().call(POLICY, 'Explain', {
      image: args[0], namespace: (flags.namespace as string | undefined) ?? ctx.namespace, labels: parseLabelArgs(flags.label as string[]), annotations: parseLabelArgs(flags.annotation as string[]),
      privileged: !!flags.privileged, hostNetwork: !!flags['net-host'], runtime: (flags['runtime-class'] as string | undefined) ?? '',
    });
    if (flags.json) return ctx.out.json(d);
    ctx.out.line(`rule:     ${d.rule}`);
    ctx.out.line(`decision: ${d.verdict}`);
    if (d.verdict !== 'refuse') ctx.out.line(`runs as:  ${d.runtimeClass}${d.isolation ? ` (isolation ${d.isolation})` : ''}`);
    ctx.out.line(`why:      ${d.reason}`);
    return d.verdict === 'refuse' ? 1 : 0;
  },
});

registerCommand({
  path: ['policy', 'check'],
  summary: 'validate a berthd config file or a policy file ([[rules]]) as berthd would load it',
  args: '<file>',
  async run(ctx, _flags, args) {
    requireArgs(args, 1, 'berth policy check <file>');
    const file = args[0]!;
    let doc: Record<string, unknown>;
    try {
      doc = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw errInvalidArgument(`${file}: ${(err as Error).message.split('\n')[0]}`);
    }
    if (doc.rules !== undefined) {
      const rules = parsePolicyFile(file, new Set(builtinClasses().map((c) => c.name)));
      ctx.out.line(`${file}: ${rules.length} rule(s): ${rules.map((r) => r.name).join(', ')}`);
      return;
    }
    const p = loadPolicy(file);
    ctx.out.line(`${file}: ${p.rules.length} rule(s) from ${p.source}: ${p.rules.map((r) => r.name).join(', ')}`);
    for (const c of p.classes.list()) if (c.unusable) ctx.out.line(`note: class ${c.name} cannot run on this host: ${c.unusable}`);
  },
});
