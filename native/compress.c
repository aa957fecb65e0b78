/* berth-compress: compresses stdin to stdout as one zstd frame (libzstd), for layers berth writes (Diff with
 * media type ...tar+zstd); Node 20's zlib has no zstd. usage: berth-compress [--level N] < in > out
 * Exit status 0, or 1 with one line on stderr saying why. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>
#include "io.h"

int main(int argc, char **argv)
{
	int level = ZSTD_CLEVEL_DEFAULT;
	if (argc == 3 && strcmp(argv[1], "--level") == 0)
		level = atoi(argv[2]);
	else if (argc != 1) {
		fputs("usage: berth-compress [--level N] < in > out\n", stderr);
		return 1;
	}
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	size_t in_cap = ZSTD_CStreamInSize(), out_cap = ZSTD_CStreamOutSize();
	char *in = malloc(in_cap), *out = malloc(out_cap);
	if (!cctx || !in || !out || ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1))) {
		fputs("berth-compress: cannot set up the zstd encoder\n", stderr);
		return 1;
	}
	for (;;) {
		ssize_t n = read(0, in, in_cap);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "berth-compress: reading: %s\n", strerror(errno));
			return 1;
		}
		ZSTD_EndDirective mode = n == 0 ? ZSTD_e_end : ZSTD_e_continue;
		ZSTD_inBuffer input = {in, (size_t)n, 0};
		size_t left;
		do {
			ZSTD_outBuffer output = {out, out_cap, 0};
			left = ZSTD_compressStream2(cctx, &output, &input, mode);
			if (ZSTD_isError(left)) {
				fprintf(stderr, "berth-compress: %s\n", ZSTD_getErrorName(left));
				return 1;
			}
			if (write_all(1, out, output.pos) < 0) {
				fprintf(stderr, "berth-compress: writing: %s\n", strerror(errno));
				return 1;
			}
		} while (mode == ZSTD_e_end ? left != 0 : input.pos < input.size);
		if (n == 0)
			return 0;
	}
}
