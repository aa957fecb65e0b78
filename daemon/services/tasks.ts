// containerd.services.tasks.v1.Tasks: every call goes to the task's shim over ttrpc.
import { errFailedPrecondition, errInvalidArgument, errNotImplemented, isNotFound } from '../../api/errdefs.ts';
import { namespaceOf, unary } from '../../api/grpc.ts';
import { fieldsAdaptor, parseFilters } from '../../api/filters.ts';
import { toTimestamp } from '../../api/proto.ts';
import type { Mount } from '../../api/mount.ts';
import { registerService } from './service.ts';
import { admitContainer, checkExec, runtimeSpec } from '../policy/enforce.ts';

const mountsOf = (list: any[] | undefined): Mount[] => (list ?? []).map((m) => ({ type: m.type, source: m.source, target: m.target, options: m.options }));

registerService({
  name: 'containerd.services.tasks.v1.Tasks',
  plugin: { type: 'io.containerd.grpc.v1', id: 'tasks' },
  create: (ctx) => {
    const tasks = ctx.tasks;
    const taskOf = (call: { metadata: any }, id: string) => tasks.get(namespaceOf(call), id);
    const process = async (ns: string, task: ReturnType<typeof tasks.get>, execId: string) => {
      const s = await tasks.call(task, 'State', { id: task.id, execId });
      return {
        containerId: task.id, id: execId || task.id, pid: s.pid, status: s.status, stdin: s.stdin, stdout: s.stdout, stderr: s.stderr,
        terminal: s.terminal, exitStatus: s.exitStatus, exitedAt: s.exitedAt, ns,
      };
    };
    return {
      Create: unary(async (req, call) => {
        const ns = namespaceOf(call);
        if (!req.containerId) throw errInvalidArgument('task create: container_id is required');
        if (req.checkpoint?.digest) throw errNotImplemented('restoring a task from a checkpoint is not supported');
        // Checked again as it runs: the task's runtime options, or a policy reloaded since the record was made.
        const recorded = await ctx.db.containers.get(ns, req.containerId);
        const sent = req.options?.typeUrl ? { typeUrl: req.options.typeUrl, value: new Uint8Array(req.options.value ?? []) } : undefined;
        const admitted = await admitContainer(ctx, ns, { ...recorded, runtime: { name: recorded.runtime.name, ...(sent ?? recorded.runtime.options ? { options: sent ?? recorded.runtime.options } : {}) } }, 'tasks.create');
        const spec = runtimeSpec(ctx, admitted);
        const container = { ...recorded, runtime: admitted.runtime, ...(spec ? { spec } : {}) } as typeof recorded;
        let rootfs = mountsOf(req.rootfs);
        if (rootfs.length === 0 && container.snapshotKey) {
          rootfs = await ctx.db.snapshotter(ns, container.snapshotter).mounts(container.snapshotKey);
        }
        const task = await tasks.create(ns, container, {
          rootfs, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal,
          ...(admitted.runtime.options ? { options: admitted.runtime.options } : {}),
        });
        return { containerId: task.id, pid: task.pid };
      }),
      Start: unary(async (req, call) => ({ pid: (await tasks.call(taskOf(call, req.containerId), 'Start', { id: req.containerId, execId: req.execId })).pid })),
      Delete: unary(async (req, call) => {
        const task = taskOf(call, req.containerId);
        const res = await tasks.delete(task);
        return { id: req.containerId, pid: res.pid, exitStatus: res.exitStatus, exitedAt: res.exitedAt };
      }),
      DeleteProcess: unary(async (req, call) => {
        if (!req.execId) throw errInvalidArgument('delete process: exec_id is required (use Delete for the task)');
        const res = await tasks.call(taskOf(call, req.containerId), 'Delete', { id: req.containerId, execId: req.execId });
        return { id: req.execId, pid: res.pid, exitStatus: res.exitStatus, exitedAt: res.exitedAt };
      }),
      Get: unary(async (req, call) => {
        const ns = namespaceOf(call);
        const { ns: _, ...p } = await process(ns, tasks.get(ns, req.containerId), req.execId);
        return { process: p };
      }),
      List: unary(async (_req, call) => {
        const ns = namespaceOf(call);
        const out = [];
        for (const t of tasks.list(ns)) {
          try {
            const { ns: _, ...p } = await process(ns, t, '');
            out.push(p);
          } catch (err) {
            if (!isNotFound(err)) throw err;
          }
        }
        return { tasks: out };
      }),
      Kill: unary(async (req, call) => {
        await tasks.call(taskOf(call, req.containerId), 'Kill', { id: req.containerId, execId: req.execId, signal: req.signal, all: req.all });
        return {};
      }),
      Exec: unary(async (req, call) => {
        if (!req.execId) throw errInvalidArgument('exec: exec_id is required');
        const ns = namespaceOf(call);
        checkExec(ctx, ns, (await ctx.db.containers.get(ns, req.containerId)).spec, req.execId, req.containerId, req.spec?.value);
        await tasks.call(taskOf(call, req.containerId), 'Exec', {
          id: req.containerId, execId: req.execId, terminal: req.terminal, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, spec: req.spec,
        });
        return {};
      }),
      ResizePty: unary(async (req, call) => {
        await tasks.call(taskOf(call, req.containerId), 'ResizePty', { id: req.containerId, execId: req.execId, width: req.width, height: req.height });
        return {};
      }),
      CloseIO: unary(async (req, call) => {
        await tasks.call(taskOf(call, req.containerId), 'CloseIO', { id: req.containerId, execId: req.execId, stdin: req.stdin });
        return {};
      }),
      Pause: unary(async (req, call) => { await tasks.call(taskOf(call, req.containerId), 'Pause', { id: req.containerId }); return {}; }),
      Resume: unary(async (req, call) => { await tasks.call(taskOf(call, req.containerId), 'Resume', { id: req.containerId }); return {}; }),
      ListPids: unary(async (req, call) => ({ processes: (await tasks.call(taskOf(call, req.containerId), 'Pids', { id: req.containerId })).processes })),
      Checkpoint: unary(() => { throw errNotImplemented('checkpoint is not supported: berth has no CRIU integration'); }),
      Update: unary(async (req, call) => {
        if (!req.resources?.typeUrl) throw errFailedPrecondition('update: resources are required');
        await tasks.call(taskOf(call, req.containerId), 'Update', { id: req.containerId, resources: req.resources, annotations: req.annotations });
        return {};
      }),
      Metrics: unary(async (req, call) => {
        const ns = namespaceOf(call);
        const filter = parseFilters(req.filters);
        const metrics = [];
        for (const t of tasks.list(ns)) {
          if (!filter.match(fieldsAdaptor({ id: t.id, runtime: t.runtime }))) continue;
          const { stats } = await tasks.call<{ stats: unknown }>(t, 'Stats', { id: t.id });
          metrics.push({ timestamp: toTimestamp(new Date()), id: t.id, data: stats });
        }
        return { metrics };
      }),
      Wait: unary(async (req, call) => {
        const task = taskOf(call, req.containerId);
        const abort = new AbortController();
        call.on('cancelled', () => abort.abort());
        const res = await tasks.call(task, 'Wait', { id: req.containerId, execId: req.execId }, abort.signal);
        return { exitStatus: res.exitStatus, exitedAt: res.exitedAt };
      }),
    };
  },
});
