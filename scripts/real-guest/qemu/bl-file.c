/*
 * bl-file: page cache written or read through files on the scratch file system of
 * balloonlab's QEMU guest (ext4 on a virtio-blk disk, mounted at /mnt/scratch by
 * /init when the kernel command line has bl.scratch=1). Static, built with Debian's
 * gcc. Stateless: the host (src/actions/file_layout.ts) keeps each process's file
 * stream and says where this call starts.
 *
 *   bl-file write|read DIR NAME FIRST OFF PAGES FILEPAGES
 *
 * The call goes through PAGES pages of 4 KiB, starting at page OFF of the file
 * DIR/NAME.FIRST: it fills that file up to FILEPAGES pages, then goes on at page 0
 * of DIR/NAME.(FIRST+1), and so on; FILEPAGES 0 means one file without a bound.
 *
 * write: each file is opened O_WRONLY|O_CREAT (mode 0644, not truncated) and its
 *   pages are written with pwrite() in chunks of at most 64 pages (buffered: the
 *   pages are dirty page cache until written back); the bytes are 0x5a. No fsync.
 * read: each file is opened O_RDONLY, posix_fadvise(POSIX_FADV_RANDOM) turns its
 *   readahead off (so exactly the pages asked for enter the page cache, not the
 *   rest of the file up to the readahead window), and its pages are read with
 *   pread() in chunks of at most 64 pages. The files must exist with those pages
 *   on disk (the host put them in the file system image); a short read is an error.
 *
 * Prints one line on stdout and exits 0:
 *   files=F created=C pages=P bytes=B ms=T
 * (files: files touched; created: files the write created; pages: pages written or
 * read; ms: wall time, 3 decimals). On an error it prints "bl-file: message" on
 * stderr and exits 1 (2 for a usage error).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bl-util.h"

#define PAGE 4096UL
#define CHUNK_PAGES 64UL

static void usage(void)
{
	fprintf(stderr, "usage: bl-file write|read DIR NAME FIRST OFF PAGES FILEPAGES\n");
	exit(2);
}

static void fail(const char *fmt, const char *a, uint64_t b)
{
	fprintf(stderr, "bl-file: ");
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, "%s%s\n", errno ? ": " : "", errno ? strerror(errno) : "");
	exit(1);
}

static uint64_t number(const char *s)
{
	char *end;
	errno = 0;
	if (*s < '0' || *s > '9')
		usage();
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	if (argc != 8)
		usage();
	int write_mode;
	if (strcmp(argv[1], "write") == 0)
		write_mode = 1;
	else if (strcmp(argv[1], "read") == 0)
		write_mode = 0;
	else
		usage();
	const char *dir = argv[2], *name = argv[3];
	if (!bl_valid_name(name, 0))
		usage();
	uint64_t file = number(argv[4]), off = number(argv[5]), left = number(argv[6]), per = number(argv[7]);
	if (per != 0 && off >= per)
		usage();

	static char buf[CHUNK_PAGES * PAGE];
	if (write_mode)
		memset(buf, 0x5a, sizeof(buf));
	char path[4096];
	uint64_t files = 0, created = 0, pages = 0;
	double t0 = bl_now_ms();
	while (left > 0) {
		uint64_t n = per == 0 ? left : (per - off < left ? per - off : left);
		if ((size_t)snprintf(path, sizeof(path), "%s/%s.%" PRIu64, dir, name, file) >= sizeof(path)) {
			errno = 0;
			fail("path too long: %s (%" PRIu64 ")", dir, file);
		}
		int fd;
		if (write_mode) {
			fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
			if (fd >= 0)
				created++;
			else if (errno == EEXIST)
				fd = open(path, O_WRONLY | O_CLOEXEC);
		} else {
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				int e = posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
				if (e) {
					errno = e;
					fail("posix_fadvise %s (file %" PRIu64 ")", path, file);
				}
			}
		}
		if (fd < 0)
			fail("open %s (file %" PRIu64 ")", path, file);
		for (uint64_t done = 0; done < n;) {
			uint64_t k = n - done < CHUNK_PAGES ? n - done : CHUNK_PAGES;
			off_t at = (off_t)((off + done) * PAGE);
			ssize_t r = write_mode ? pwrite(fd, buf, k * PAGE, at) : pread(fd, buf, k * PAGE, at);
			if (r < 0)
				fail(write_mode ? "write %s at page %" PRIu64 : "read %s at page %" PRIu64, path, off + done);
			if ((uint64_t)r != k * PAGE) {
				errno = 0;
				fail(write_mode ? "short write of %s at page %" PRIu64 : "short read of %s at page %" PRIu64 " (the file is not on the scratch disk as planned)", path, off + done);
			}
			done += k;
		}
		if (close(fd) < 0)
			fail("close %s (file %" PRIu64 ")", path, file);
		files++;
		pages += n;
		left -= n;
		file++;
		off = 0;
	}
	printf("files=%" PRIu64 " created=%" PRIu64 " pages=%" PRIu64 " bytes=%" PRIu64 " ms=%.3f\n", files, created, pages, pages * PAGE, bl_now_ms() - t0);
	return 0;
}
