// Our own terminal, for CLIs that relay a container's pty: cfmakeraw as ctr's console.SetRaw does (no echo, no
// line editing, keys' signals go to the container's pty, no output processing: libuv's raw mode keeps ONLCR,
// which would double every CR). stty works on the terminal it is given as stdin.
import { execFileSync } from 'node:child_process';

/** Puts our stdin's terminal in raw mode; returns what restores its previous settings. */
export function makeRaw(): () => void {
  const stty = (args: string[]) => execFileSync('stty', args, { stdio: ['inherit', 'pipe', 'pipe'], encoding: 'utf8' }).trim();
  const saved = stty(['-g']);
  stty(['raw', '-echo']);
  return () => { try { stty([saved]); } catch { /* the terminal went away */ } };
}
