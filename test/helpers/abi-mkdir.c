/* abi-mkdir ABI PATH: calls mkdir(PATH, 0755) through one syscall ABI of an x86_64 process and prints how it
 * ended: 0 or the errno. ABI is x86_64; i386 (int $0x80, the compat entry the kernel reports as
 * AUDIT_ARCH_I386; the path is copied to .bss, below 4 GiB, as a 32-bit call needs); or x32 (syscall with
 * __X32_SYSCALL_BIT). Built static and not position-independent by test/helpers/seccomp.ts. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static char path[256];

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	snprintf(path, sizeof path, "%s", argv[2]);
	long r;
	if (!strcmp(argv[1], "x86_64")) {
		r = syscall(SYS_mkdir, path, 0755) < 0 ? errno : 0;
	} else if (!strcmp(argv[1], "i386")) {
		__asm__ volatile("int $0x80" : "=a"(r) : "0"(39L), "b"((long)path), "c"(0755L) : "memory");
		r = r < 0 ? -r : 0;
	} else if (!strcmp(argv[1], "x32")) {
		r = syscall(0x40000000L | 83, path, 0755) < 0 ? errno : 0;
	} else {
		return 2;
	}
	printf("%ld\n", r);
	return 0;
}
