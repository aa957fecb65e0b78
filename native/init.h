#ifndef BERTH_INIT_H
#define BERTH_INIT_H

/* Executes the plan at plan_path, reporting on sync_fd (see init.c). Returns the exit status for the caller's
 * exit (mode run: the container's; mode create: 0 once it waits for start). */
int init_main(const char *plan_path, int sync_fd);

/* CVE-2019-5736: unless already running from a sealed memfd, re-executes from a sealed anonymous copy of
 * /proc/self/exe, so nothing in a container can reach our binary on disk through /proc/<pid>/exe. */
void ensure_sealed_self(char **argv);

/* A network namespace made ahead (by a spare monitor's child, which is in it): the fd of the one it left, or -1.
 * A plan that wants a new network namespace of the init user namespace gets this one instead of a clone's. */
extern int init_prepared_netns;

#endif
