/* raw-syscall NR [ARG...]: makes syscall NR with the given integer arguments, straight (no libc wrapper that
 * could hide an errno), and prints 0 or the errno it failed with. Built static by test/helpers/seccomp.ts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 8)
		return 2;
	long a[6] = { 0 };
	for (int i = 2; i < argc; i++)
		a[i - 2] = strtol(argv[i], NULL, 0);
	long r = syscall(strtol(argv[1], NULL, 0), a[0], a[1], a[2], a[3], a[4], a[5]);
	printf("%d\n", r < 0 ? errno : 0);
	return 0;
}
