// berth version / berth plugins ls
import { registerCommand } from '../command.ts';

registerCommand({
  path: ['version'],
  summary: 'print the client and server versions',
  flags: [{ name: 'json', type: 'bool', usage: 'print JSON' }],
  async run(ctx, flags) {
    const server = await ctx.client().call('containerd.services.version.v1.Version', 'Version');
    if (flags.json) { ctx.out.json({ client: { version: 'v0.1.0' }, server }); return; }
    ctx.out.line(`Client:\n  Version:  v0.1.0\n\nServer:\n  Version:  ${server.version}\n  Revision: ${server.revision}`);
  },
});

const SKIP = /:? ?skip plugin$/;

function statusOf(initErr: string | undefined): string {
  if (!initErr) return 'ok';
  return SKIP.test(initErr) ? `skip: ${initErr.replace(SKIP, '')}` : `error: ${initErr}`;
}

registerCommand({
  path: ['plugins', 'ls'],
  aliases: ['list'],
  summary: 'list the daemon\'s plugins (and berthd\'s runtime classes)',
  args: '[<filter>, ...]',
  flags: [{ name: 'quiet', alias: 'q', type: 'bool', usage: 'print only plugin ids' }, { name: 'json', type: 'bool', usage: 'print JSON' }],
  async run(ctx, flags, args) {
    const { plugins } = await ctx.client().call('containerd.services.introspection.v1.Introspection', 'Plugins', { filters: args });
    if (flags.json) return ctx.out.json(plugins);
    if (flags.quiet) { for (const p of plugins) ctx.out.line(p.id); return; }
    // A runtime class (berthd's berth.runtime-class.v1 plugins) shows its isolation; a plugin this host cannot run
    // is skipped, as containerd marks it ("skip plugin" in its error), with the reason.
    ctx.out.table(['TYPE', 'ID', 'PLATFORMS', 'ISOLATION', 'STATUS'], plugins.map((p: any) => [
      p.type, p.id, p.platforms.map((x: any) => `${x.os}/${x.architecture}`).join(',') || '-', p.exports?.isolation || '-', statusOf(p.initErr?.message),
    ]));
  },
});
