// OCI hooks: each runs with the container state JSON on stdin and is killed after its timeout.
import { spawn } from 'node:child_process';
import { errFailedPrecondition } from '../../api/errdefs.ts';
import type { Hook, State } from '../oci/spec.ts';

export async function runHooks(kind: string, hooks: Hook[] | undefined, state: State): Promise<void> {
  for (const hook of hooks ?? []) await runHook(kind, hook, state);
}

function runHook(kind: string, hook: Hook, state: State): Promise<void> {
  return new Promise((resolve, reject) => {
    const env = Object.fromEntries((hook.env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    const [argv0, ...args] = hook.args?.length ? hook.args : [hook.path];
    const child = spawn(hook.path, args, { env, argv0, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = hook.timeout ? setTimeout(() => child.kill('SIGKILL'), hook.timeout * 1000) : undefined;
    child.on('error', (err) => { clearTimeout(timer); reject(errFailedPrecondition(`${kind} hook ${hook.path}: ${err.message}`)); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve();
      const why = signal === 'SIGKILL' && hook.timeout ? `timed out after ${hook.timeout}s` : signal ? `killed by ${signal}` : `exited with status ${code}`;
      reject(errFailedPrecondition(`${kind} hook ${hook.path} ${why}${stderr ? `: ${stderr.trim()}` : ''}`));
    });
    child.stdin.on('error', () => { /* a hook need not read its stdin */ });
    child.stdin.end(JSON.stringify(state));
  });
}
