/* berth-init: executes a container plan (see init.c).
 * usage: berth-init PLAN_FILE SYNC_FD */
#include "init.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: berth-init PLAN_FILE SYNC_FD\n");
		return 2;
	}
	ensure_sealed_self(argv);
	return init_main(argv[1], atoi(argv[2]));
}
