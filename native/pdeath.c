/* berth-pdeath PARENT_PID PROGRAM ARGS...: runs PROGRAM so that it gets SIGKILL when the thread that started us
 * dies (PR_SET_PDEATHSIG survives execve). PARENT_PID closes the race with a parent that died before the prctl.
 * The vm launcher starts QEMU and virtiofsd through it, so a killed shim leaves no VM behind. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: berth-pdeath PARENT_PID PROGRAM [ARG]...\n");
		return 2;
	}
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
		perror("berth-pdeath: prctl");
		return 1;
	}
	if (getppid() != (pid_t)atoi(argv[1]))
		return 1;
	execvp(argv[2], argv + 2);
	fprintf(stderr, "berth-pdeath: %s: %s\n", argv[2], strerror(errno));
	return 127;
}
