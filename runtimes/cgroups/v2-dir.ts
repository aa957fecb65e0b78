// One cgroup v2 directory as the v2 code reads and writes it. On the host it is cgroupfs; the vm backend gives
// the same code a guest's directory (runtimes/vm/guest-cgroup.ts), whose writes go to the guest's agent and
// whose files come back from it raw, so a resource means the same and a stat is parsed the same in a VM.
import { readdirSync } from 'node:fs';
import { applyDeviceProgram } from './devices-bpf.ts';
import { fileExists, readOptional, writeValue } from './files.ts';
import type { LinuxDeviceCgroup } from './types.ts';

export interface CgroupDir {
  /** Names the directory in errors. */
  readonly path: string;
  /** The file's content, undefined when there is no such file. */
  read(file: string): string | undefined;
  exists(file: string): boolean;
  /** Writes one value; `what` names the resource in errors ("memory.limit"). */
  write(file: string, value: string | number, what: string): void;
  /** The names of the files it holds (hugetlb's page sizes are found by name). */
  list(): string[];
  /** Makes the device rules the directory's (an eBPF program on the host). */
  devices(rules: LinuxDeviceCgroup[]): void;
}

export function hostCgroupDir(dir: string): CgroupDir {
  return {
    path: dir,
    read: (file) => readOptional(dir, file),
    exists: (file) => fileExists(dir, file),
    write: (file, value, what) => writeValue(dir, file, value, what),
    list: () => readdirSync(dir),
    devices: (rules) => applyDeviceProgram(dir, rules),
  };
}
