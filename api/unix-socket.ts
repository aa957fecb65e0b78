// Whether something accepts connections on a unix socket path (a live daemon or shim, not a stale file).
import { existsSync } from 'node:fs';
import { connect } from 'node:net';

export function socketAccepts(path: string): Promise<boolean> {
  if (!existsSync(path)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}
