// What the seccomp agent at linux.seccomp.listenerPath gets with the listener fd (berth-init sends both in one
// message): the runtime spec's ContainerProcessState (config-linux.md "Seccomp"), as runc sends it.
import type { State } from '../oci/spec.ts';
import type { LinuxSeccomp } from './compile.ts';

export const SECCOMP_FD_NAME = 'seccompFd';

/** `pid` is the process the filter is for (the init, or an exec'd process); `state` the container's. */
export function containerProcessState(seccomp: LinuxSeccomp, pid: number, state: State): string {
  return JSON.stringify({ ociVersion: state.ociVersion, fds: [SECCOMP_FD_NAME], pid, metadata: seccomp.listenerMetadata || undefined, state });
}
