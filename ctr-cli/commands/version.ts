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

registerCommand({
  path: ['plugins', 'ls'],
  aliases: ['list'],
  summary: 'list the daemon\'s plugins',
  args: '[<filter>, ...]',
  flags: [{ name: 'quiet', alias: 'q', type: 'bool', usage: 'print only plugin ids' }, { name: 'json', type: 'bool', usage: 'print JSON' }],
  async run(ctx, flags, args) {
    const { plugins } = await ctx.client().call('containerd.services.introspection.v1.Introspection', 'Plugins', { filters: args });
    if (flags.json) return ctx.out.json(plugins);
    if (flags.quiet) { for (const p of plugins) ctx.out.line(p.id); return; }
    ctx.out.table(['TYPE', 'ID', 'PLATFORMS', 'STATUS'], plugins.map((p: any) => [
      p.type, p.id, p.platforms.map((x: any) => `${x.os}/${x.architecture}`).join(',') || '-', p.initErr ? `error: ${p.initErr.message}` : 'ok',
    ]));
  },
});
