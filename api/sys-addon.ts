// native/'s Node-API addon (berth-sys.node, see native/sys_addon.c): system calls Node lacks, where ffi-rs would
// cost too much (its load, 10-30 ms, in the CLI) or cannot do the job (posix_spawn with file actions).
import { nativeBinary } from './native-binary.ts';

export interface SysAddon {
  mkfifo(path: string, mode: number): void;
  /** posix_spawn(3): fds[i] becomes the child's fd i (-1: /dev/null); returns the pid. */
  spawn(file: string, argv: string[], env: string[], fds: number[], cwd: string | null, setsid: boolean): number;
  /** A connected AF_UNIX stream pair, both ends close-on-exec. */
  socketpair(): [number, number];
  /** The raw wait status once `pid` (our child) has exited, reaping it; undefined while it runs. */
  waitpid(pid: number): number | undefined;
  /** Removes a tree on the thread pool in one job, never following symlinks nor entering a mount inside it
   * (that fails with EBUSY, the mount and what is under it left alone). A missing path is fine. */
  removeTree(path: string): Promise<void>;
}

let addon: SysAddon | undefined;

export function sysAddon(): SysAddon {
  if (!addon) {
    const module = { exports: {} as SysAddon };
    process.dlopen(module, nativeBinary('berth-sys.node'));
    addon = module.exports;
  }
  return addon;
}
