/* Small I/O helpers shared by berth's native programs. */
#ifndef BERTH_IO_H
#define BERTH_IO_H
#include <stddef.h>

/* Writes all of buf to fd, waiting when it is non-blocking and full. 0, or -1 with errno set (the reader is gone,
 * the disk is full ...). */
int write_all(int fd, const void *buf, size_t len);

#endif
