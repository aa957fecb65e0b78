// A process in a VM, as the shim follows one (runtimes/monitor.ts's Monitored): its pid is the guest's, its exit
// comes from the agent's WaitProcess, and its stdio is copied between the client's FIFOs or files on the host
// and the agent's stream calls (ReadStdout/ReadStderr long-polls, WriteStdin, CloseStdin). The exit is reported
// once its output has been copied (or a bounded time after, when something in the guest holds the pipe open).
import { closeSync, constants, openSync, statSync, writeFile } from 'node:fs';
import { Socket } from 'node:net';
import type { ExitStatus, Monitored, StdioPaths } from '../monitor.ts';
import type { AgentClient, ProcessRef } from './agent-client.ts';

const READ_CHUNK = 64 * 1024;
/** Agent calls that must answer promptly (all but the long polls): a guest that stops answering fails them
 * within this, so that Kill and Delete still finish. */
export const AGENT_CALL_TIMEOUT_MS = 10_000;
/** After the exit, how long output still being copied may hold the exit report back. */
const OUTPUT_GRACE_MS = 2000;

export interface VmProcessOptions {
  agent: AgentClient;
  containerId: string;
  execId: string;
  pid: number;
  stdio: StdioPaths;
  terminal: boolean;
  /** How the process ends when the agent cannot say (the VM died): the status and why. */
  lost: Promise<string>;
}

/** Whether the copy of one stream ends: the agent's end of stream, or the VM gone. */
async function copyOut(agent: AgentClient, stream: 'stdout' | 'stderr', ids: ProcessRef, path: string): Promise<void> {
  let out: Output | undefined;
  try {
    out = openOutput(path);
    for (;;) {
      const data = stream === 'stdout' ? await agent.readStdout(ids, READ_CHUNK) : await agent.readStderr(ids, READ_CHUNK);
      if (!data?.length) return;
      await out.write(Buffer.from(data));
    }
  } catch { /* the VM is gone (what was copied stays), or the client's end is */ } finally {
    out?.close();
  }
}

interface Output { write(data: Buffer): Promise<void>; close(): void }

/** A FIFO is opened read-write and non-blocking (never waiting for the client's reader, which sees EOF once we
 * close it) and written through the event loop; a log file is appended to. */
function openOutput(path: string): Output {
  if (!statSync(path).isFIFO()) {
    const fd = openSync(path, constants.O_WRONLY | constants.O_APPEND);
    return {
      write: (data) => new Promise((resolve, reject) => { writeFile(fd, data, (err) => (err ? reject(err) : resolve())); }),
      close: () => closeSync(fd),
    };
  }
  const sink = new Socket({ fd: openSync(path, constants.O_RDWR | constants.O_NONBLOCK), readable: false, writable: true });
  sink.on('error', () => undefined);
  return {
    write: (data) => new Promise((resolve) => { sink.write(data, () => resolve()); }),
    close: () => { if (!sink.destroyed) sink.write('', () => sink.destroy()); },
  };
}

/** Copies the client's stdin to the process; its end (the client closed its FIFO) closes the process's stdin.
 * Opened without blocking: Linux reports no end on a FIFO before its first writer has come. */
function copyIn(agent: AgentClient, ids: ProcessRef, path: string): { stop(): void } {
  let fd: number;
  try { fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK); } catch { return { stop: () => undefined }; }
  const source = new Socket({ fd, readable: true, writable: false });
  let chain = Promise.resolve();
  const send = (fn: () => Promise<unknown>) => { chain = chain.then(fn).then(() => undefined, () => { source.destroy(); }); };
  source.on('data', (d: Buffer) => {
    source.pause();
    send(() => agent.writeStdin(ids, d));
    void chain.then(() => { if (!source.destroyed) source.resume(); });
  });
  source.on('end', () => send(() => agent.closeStdin(ids)));
  source.on('error', () => undefined);
  return { stop: () => { source.destroy(); try { closeSync(fd); } catch { /* the socket closed it */ } } };
}

export function followVmProcess(opts: VmProcessOptions): Monitored {
  const { agent, containerId, execId, pid } = opts;
  const ids = { containerId, execId };
  const copies: Promise<void>[] = [];
  if (opts.stdio.stdout) copies.push(copyOut(agent, 'stdout', ids, opts.stdio.stdout));
  // With a terminal, stderr goes to the pty too: stdout carries both.
  if (opts.stdio.stderr && !opts.terminal) copies.push(copyOut(agent, 'stderr', ids, opts.stdio.stderr));
  const input = opts.stdio.stdin ? copyIn(agent, ids, opts.stdio.stdin) : undefined;
  let lastError = '';
  // The time is the host's when the answer came (the long poll answers at once): a guest's wall clock is only as
  // good as its emulated clock source.
  const waited = agent.waitProcess(ids).then((r): ExitStatus => ({ status: r.exitStatus ?? 0, exitedAt: new Date() }));
  // The VM ending first (agent death, guest panic, killed QEMU) ends the process too: 128+SIGKILL, as a
  // container killed with its sandbox.
  const lost = opts.lost.then((why): ExitStatus => { lastError = why; return { status: 137, exitedAt: new Date() }; });
  const exited = Promise.race([waited.catch(() => lost), lost]).then(async (exit) => {
    await Promise.race([Promise.all(copies), new Promise((r) => setTimeout(r, OUTPUT_GRACE_MS).unref())]);
    input?.stop();
    return exit;
  });
  return {
    monitorPid: 0,
    pid: Promise.resolve(pid),
    exited,
    stderr: () => lastError,
    signal: (signal) => agent.signalProcess({ ...ids, signal }, { timeoutMs: AGENT_CALL_TIMEOUT_MS }),
    resize: (width, height) => { void agent.ttyWinResize({ ...ids, rows: height, columns: width }, { timeoutMs: AGENT_CALL_TIMEOUT_MS }).catch(() => undefined); },
    closeStdin: () => { void agent.closeStdin(ids, { timeoutMs: AGENT_CALL_TIMEOUT_MS }).catch(() => undefined); },
  };
}
