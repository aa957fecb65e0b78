// Isolation levels, weakest first: a container on the host kernel, a user-space kernel (gVisor), a VM.
export const ISOLATION_LEVELS = ['container', 'sandbox', 'vm'] as const;
export type Isolation = (typeof ISOLATION_LEVELS)[number];

export const isIsolation = (s: unknown): s is Isolation => typeof s === 'string' && (ISOLATION_LEVELS as readonly string[]).includes(s);

/** How strong a level is: higher is stronger. */
export const strength = (i: Isolation): number => ISOLATION_LEVELS.indexOf(i);
