// berth tasks ls | start | kill | ps | exec | pause | resume | delete
import { constants } from 'node:os';
import { errInvalidArgument } from '../../api/errdefs.ts';
import { fromTimestamp, unpackAny } from '../../api/proto.ts';
import { registerCommand, requireArgs, type CliContext } from '../command.ts';
import { consoleSize, openTaskIo } from '../task-io.ts';

const TASKS = 'containerd.services.tasks.v1.Tasks';
const CONTAINERS = 'containerd.services.containers.v1.Containers';

function signalNumber(s: string): number {
  if (/^\d+$/.test(s)) return Number(s);
  const name = (s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`) as keyof typeof constants.signals;
  const n = constants.signals[name];
  if (!n) throw errInvalidArgument(`unknown signal ${JSON.stringify(s)}`);
  return n;
}

async function waitFor(ctx: CliContext, id: string, execId = ''): Promise<number> {
  return (await ctx.client().call(TASKS, 'Wait', { containerId: id, execId })).exitStatus;
}

registerCommand({
  path: ['tasks', 'ls'],
  aliases: ['list'],
  summary: 'list tasks',
  flags: [{ name: 'quiet', alias: 'q', type: 'bool', usage: 'print only ids' }, { name: 'json', type: 'bool', usage: 'print JSON' }],
  async run(ctx, flags) {
    const { tasks } = await ctx.client().call(TASKS, 'List', {});
    if (flags.json) return ctx.out.json(tasks);
    if (flags.quiet) { for (const t of tasks) ctx.out.line(t.id); return; }
    ctx.out.table(['TASK', 'PID', 'STATUS'], tasks.map((t: any) => [t.id, String(t.pid), t.status === 'STOPPED' ? `STOPPED (exit ${t.exitStatus})` : t.status]));
  },
});

registerCommand({
  path: ['tasks', 'start'],
  summary: 'start a container\'s task, attached to its output (-d: detached)',
  args: '<id>',
  flags: [{ name: 'detach', alias: 'd', type: 'bool', usage: 'do not wait for the task' }],
  async run(ctx, flags, args) {
    requireArgs(args, 1, 'berth tasks start [-d] <id>');
    const id = args[0]!;
    const { container } = await ctx.client().call(CONTAINERS, 'Get', { id });
    // As ctr: the container's spec says whether its process has a terminal.
    const terminal = !!JSON.parse(Buffer.from(container.spec?.value ?? '{}').toString('utf8')).process?.terminal;
    if (flags.detach) {
      await ctx.client().call(TASKS, 'Create', { containerId: id, terminal });
      await ctx.client().call(TASKS, 'Start', { containerId: id });
      return 0;
    }
    const io = openTaskIo(id, { terminal });
    try {
      await ctx.client().call(TASKS, 'Create', { containerId: id, terminal, stdin: io.stdin, stdout: io.stdout, stderr: io.stderr });
      const waiting = waitFor(ctx, id);
      await ctx.client().call(TASKS, 'Start', { containerId: id });
      io.started((width, height) => ctx.client().call(TASKS, 'ResizePty', { containerId: id, width, height }));
      const status = await waiting;
      await io.copying;
      await ctx.client().call(TASKS, 'Delete', { containerId: id });
      return status;
    } finally {
      io.done();
    }
  },
});

registerCommand({
  path: ['tasks', 'kill'],
  summary: 'signal a task (default SIGTERM)',
  args: '<id>',
  flags: [
    { name: 'signal', alias: 's', type: 'string', usage: 'signal name or number', default: 'SIGTERM' },
    { name: 'all', alias: 'a', type: 'bool', usage: 'signal every process in the container' },
    { name: 'exec-id', type: 'string', usage: 'signal this exec\'d process instead' },
  ],
  async run(ctx, flags, args) {
    requireArgs(args, 1, 'berth tasks kill [--signal S] [--all] <id>');
    await ctx.client().call(TASKS, 'Kill', { containerId: args[0], execId: flags['exec-id'] ?? '', signal: signalNumber(flags.signal as string), all: !!flags.all });
  },
});

registerCommand({
  path: ['tasks', 'ps'],
  summary: 'list the processes of a task',
  args: '<id>',
  async run(ctx, _flags, args) {
    requireArgs(args, 1, 'berth tasks ps <id>');
    const { processes } = await ctx.client().call(TASKS, 'ListPids', { containerId: args[0] });
    ctx.out.table(['PID'], processes.map((p: any) => [String(p.pid)]));
  },
});

for (const [verb, method] of [['pause', 'Pause'], ['resume', 'Resume']] as const) {
  registerCommand({
    path: ['tasks', verb],
    summary: `${verb} a task`,
    args: '<id>',
    async run(ctx, _flags, args) {
      requireArgs(args, 1, `berth tasks ${verb} <id>`);
      await ctx.client().call(TASKS, method, { containerId: args[0] });
    },
  });
}

registerCommand({
  path: ['tasks', 'delete'],
  aliases: ['rm', 'remove', 'del'],
  summary: 'delete stopped tasks (--force kills them first)',
  args: '<id> [<id>, ...]',
  flags: [{ name: 'force', alias: 'f', type: 'bool', usage: 'kill a running task first' }],
  async run(ctx, flags, args) {
    requireArgs(args, 1, 'berth tasks delete [--force] <id> [<id>, ...]');
    for (const id of args) {
      if (flags.force) {
        await ctx.client().call(TASKS, 'Kill', { containerId: id, signal: 9, all: true }).catch(() => undefined);
        await waitFor(ctx, id);
      }
      const res = await ctx.client().call(TASKS, 'Delete', { containerId: id });
      ctx.out.line(`${id} exited ${res.exitStatus}`);
    }
  },
});

registerCommand({
  path: ['tasks', 'exec'],
  summary: 'run another process in a running task',
  args: '--exec-id <eid> <id> <command> [<arg>...]',
  passThroughAfter: 2,
  flags: [
    { name: 'exec-id', type: 'string', usage: 'exec process id (required)' },
    { name: 'cwd', type: 'string', usage: 'working directory' },
    { name: 'env', type: 'strings', usage: 'KEY=VALUE (repeatable)' },
    { name: 'user', alias: 'u', type: 'string', usage: 'uid[:gid]' },
    { name: 'detach', alias: 'd', type: 'bool', usage: 'do not wait' },
    { name: 'tty', alias: 't', type: 'bool', usage: 'allocate a terminal' },
  ],
  async run(ctx, flags, args) {
    const execId = flags['exec-id'] as string | undefined;
    if (!execId) throw errInvalidArgument('--exec-id is required');
    requireArgs(args, 2, 'berth tasks exec --exec-id <eid> <id> <command> [<arg>...]');
    const [id, ...cmd] = args as [string, ...string[]];
    const { container } = await ctx.client().call(CONTAINERS, 'Get', { id });
    const spec = JSON.parse(Buffer.from(container.spec.value).toString('utf8'));
    const terminal = !!flags.tty;
    const proc = { ...spec.process, args: cmd, terminal, ...(terminal && consoleSize() ? { consoleSize: consoleSize() } : {}) };
    if (flags.cwd) proc.cwd = flags.cwd;
    if ((flags.env as string[]).length) proc.env = [...proc.env, ...(flags.env as string[])];
    if (flags.user) { const [u, g] = (flags.user as string).split(':'); proc.user = { uid: Number(u), gid: Number(g ?? 0) }; }
    const io = flags.detach ? undefined : openTaskIo(`${id}-${execId}`, { terminal });
    try {
      await ctx.client().call(TASKS, 'Exec', {
        containerId: id, execId, terminal, stdin: io?.stdin ?? '', stdout: io?.stdout ?? '', stderr: io?.stderr ?? '',
        spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Process', value: Buffer.from(JSON.stringify(proc)) },
      });
      if (flags.detach) { await ctx.client().call(TASKS, 'Start', { containerId: id, execId }); return 0; }
      const waiting = waitFor(ctx, id, execId);
      await ctx.client().call(TASKS, 'Start', { containerId: id, execId });
      io!.started((width, height) => ctx.client().call(TASKS, 'ResizePty', { containerId: id, execId, width, height }));
      const status = await waiting;
      await io!.copying;
      await ctx.client().call(TASKS, 'DeleteProcess', { containerId: id, execId });
      return status;
    } finally {
      io?.done();
    }
  },
});

registerCommand({
  path: ['tasks', 'metrics'],
  aliases: ['metric'],
  summary: 'show a task\'s cgroup metrics',
  args: '<id>',
  flags: [{ name: 'json', type: 'bool', usage: 'print JSON' }],
  async run(ctx, flags, args) {
    requireArgs(args, 1, 'berth tasks metrics <id>');
    const { metrics } = await ctx.client().call(TASKS, 'Metrics', { filters: [`id==${args[0]}`] });
    if (!metrics.length) throw errInvalidArgument(`no running task ${args[0]}`);
    const m = metrics[0];
    const data = unpackAny<any>(m.data);
    if (flags.json) return ctx.out.json({ id: m.id, timestamp: fromTimestamp(m.timestamp).toISOString(), metrics: data });
    ctx.out.table(['ID', 'TIMESTAMP'], [[m.id, fromTimestamp(m.timestamp).toISOString()]]);
    ctx.out.line();
    const rows: string[][] = [];
    if (data.memory) {
      rows.push(['memory.usage_in_bytes', String(data.memory.usage?.usage ?? 0)], ['memory.limit_in_bytes', String(data.memory.usage?.limit ?? 0)],
        ['memory.stat.cache', String(data.memory.cache)], ['memory.stat.rss', String(data.memory.rss)]);
    }
    if (data.cpu) rows.push(['cpuacct.usage', String(data.cpu.usage?.total ?? 0)], ['cpuacct.usage_percpu', JSON.stringify(data.cpu.usage?.perCpu ?? [])]);
    if (data.pids) rows.push(['pids.current', String(data.pids.current)], ['pids.limit', String(data.pids.limit)]);
    ctx.out.table(['METRIC', 'VALUE'], rows);
  },
});
