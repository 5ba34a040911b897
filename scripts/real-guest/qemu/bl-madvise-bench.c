/*
 * bl-madvise-bench: the host system calls QEMU's balloon makes per 4 KiB page,
 * timed on this machine without QEMU around them (measure-balloon.sh's "host"
 * experiment, docs/fidelity.md "Balloon inflate and deflate under TCG").
 *
 *   bl-madvise-bench [MIB]     (default 256)
 *
 * An anonymous private mapping like QEMU's guest RAM (MADV_HUGEPAGE, as
 * ram_block_add asks for), every page written once, then per 4 KiB page:
 *   dontneed_thp   madvise(MADV_DONTNEED) of one 4 KiB page inside a THP
 *                  (balloon_inflate_page -> ram_block_discard_range on memory the
 *                  guest touched in 2 MiB pieces; the first one per THP splits it)
 *   willneed       madvise(MADV_WILLNEED) of one discarded 4 KiB page
 *                  (balloon_deflate_page)
 *   refault_4k     the first write to a discarded 4 KiB page of a split THP (the
 *                  host fault a guest's next store to a deflated page takes)
 *   dontneed_4k    madvise(MADV_DONTNEED) of one populated 4 KiB page mapped by a
 *                  4 KiB PTE (a page inflated again after a deflate)
 * Prints one JSON line: ns per page of each, medians of REPS (5) passes.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

#define REPS 5
#define PG 4096UL

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	size_t len = mib << 20, n = len / PG;
	double r[4][REPS];
	for (int rep = 0; rep < REPS; rep++) {
		/* 2 MiB aligned, so the region can be THP-backed */
		char *raw = mmap(NULL, len + (2UL << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (raw == MAP_FAILED) { perror("mmap"); return 1; }
		char *p = (char *)(((unsigned long)raw + (2UL << 20) - 1) & ~((2UL << 20) - 1));
		madvise(p, len, MADV_HUGEPAGE);
		for (size_t i = 0; i < n; i++) p[i * PG] = 1;
		double t0 = now_ns();
		for (size_t i = 0; i < n; i++) madvise(p + i * PG, PG, MADV_DONTNEED);
		double t1 = now_ns();
		for (size_t i = 0; i < n; i++) madvise(p + i * PG, PG, MADV_WILLNEED);
		double t2 = now_ns();
		for (size_t i = 0; i < n; i++) p[i * PG] = 2;
		double t3 = now_ns();
		for (size_t i = 0; i < n; i++) madvise(p + i * PG, PG, MADV_DONTNEED);
		double t4 = now_ns();
		r[0][rep] = (t1 - t0) / n;
		r[1][rep] = (t2 - t1) / n;
		r[2][rep] = (t3 - t2) / n;
		r[3][rep] = (t4 - t3) / n;
		munmap(raw, len + (2UL << 20));
	}
	for (int k = 0; k < 4; k++) qsort(r[k], REPS, sizeof(double), cmp);
	printf("{\"experiment\":\"host\",\"pages\":%zu,\"ns_per_page\":{\"dontneed_thp\":%.0f,\"willneed\":%.0f,\"refault_4k\":%.0f,\"dontneed_4k\":%.0f},\"min\":{\"dontneed_thp\":%.0f,\"willneed\":%.0f,\"refault_4k\":%.0f,\"dontneed_4k\":%.0f}}\n",
	       n, r[0][REPS / 2], r[1][REPS / 2], r[2][REPS / 2], r[3][REPS / 2], r[0][0], r[1][0], r[2][0], r[3][0]);
	return 0;
}
