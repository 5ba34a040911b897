/*
 * bl-mem: processes that hold anonymous memory, addressed by NAME. Each command is
 * a one-shot CLI run (by bl-agent) that talks to the NAME's daemon over the unix
 * socket /run/bl/NAME.sock; the daemon is spawned by the first `fault` for NAME.
 * Static, built with Debian's gcc.
 *
 *   bl-mem NAME fault BYTES [hugepage|nohugepage|default] [align=2M]
 *   bl-mem NAME free FRACTION alternate|lowest|highest|random:SEED
 *   bl-mem NAME write BYTES_PER_S DURATION_MS SEED
 *   bl-mem NAME stat
 *   bl-mem NAME layout
 *   bl-mem NAME exit
 *
 * Each prints exactly one line of space-separated key=value pairs on stdout and
 * exits 0; on an error it prints "bl-mem: NAME: message" on stderr and exits 1
 * (2 for a usage error). NAME: 1..64 of [A-Za-z0-9_.-], not starting with '.'.
 * BYTES: decimal with an optional binary suffix K, M, G or T (optionally followed
 * by "iB" or "B"): 64M = 64 MiB; rounded up to whole 4 KiB pages.
 *
 * fault: a new anonymous mapping (mmap PROT_READ|PROT_WRITE, MAP_PRIVATE|
 *   MAP_ANONYMOUS) of BYTES, at whatever address mmap gives unless align=2M (then
 *   its start is 2 MiB aligned). One PROT_NONE guard page sits on each side so
 *   the kernel never merges it with a neighbouring VMA (its smaps entry is exactly
 *   the mapping). madvise(MADV_HUGEPAGE or MADV_NOHUGEPAGE) if asked, then one
 *   byte is written per 4 KiB page, in address order.
 *   -> index=I bytes=B pages=P rss_anon_kb=R anon_huge_kb=H ms=T addr=0xA advice=ADV align=0|2M
 *   (index: 0-based, in creation order; anon_huge_kb: AnonHugePages of this
 *   mapping in /proc/self/smaps; rss_anon_kb: RssAnon of /proc/self/status;
 *   ms: wall time of the touch loop, 3 decimals)
 *
 * free: the CANDIDATES are the pages this process still holds by its own
 *   bookkeeping (faulted by `fault`, not yet released by `free`), over all its
 *   mappings taken together in ascending virtual address order; N of them.
 *   K = round-half-up(N * FRACTION), computed exactly: FRACTION is a decimal
 *   0..1 with at most 9 fraction digits, F = FRACTION * 10^9 (an integer), and
 *   K = (N * F + 500000000) / 1000000000 in integer arithmetic.
 *     alternate  candidates 0, 2, 4, ... (at most ceil(N/2) of them), until K
 *     lowest     candidates 0 .. K-1
 *     highest    candidates N-1 down to N-K
 *     random:S   the first K of a seeded permutation: an array a = [0 .. N-1];
 *                for i = 0 .. K-1: j = i + (splitmix64() % (N - i)); swap a[i],
 *                a[j]; candidate a[i] is freed. (splitmix64 below, state = S.)
 *   Each chosen page gets madvise(MADV_DONTNEED) on its own 4 KiB.
 *   -> freed=K candidates=N rss_anon_kb=R anon_huge_kb=H ms=T
 *   (anon_huge_kb: AnonHugePages summed over this process's mappings)
 *
 * write: a background thread dirties random held pages for DURATION_MS: page
 *   index = splitmix64() % M over the M candidates (as for free) at the start,
 *   state = SEED; one 8-byte store into that page (a page freed meanwhile is
 *   skipped). By time t ms after the start it has done
 *   floor(BYTES_PER_S * t / 4096000) stores (checked every 10 ms). A new write
 *   replaces a running one. Returns at once.
 *   -> pages_per_s=P duration_ms=D candidates=M   (P = BYTES_PER_S / 4096, floor)
 *
 * stat -> mappings=M pages=P kept=K resident=R rss_anon_kb=X anon_huge_kb=H writing=0|1 written=W
 *   (pages: all pages of all mappings; kept: bookkeeping as above; resident:
 *   mincore() over the mappings, i.e. what the kernel really has mapped — it can
 *   exceed kept when khugepaged collapses a range with freed pages; written:
 *   stores done by the current or last write)
 *
 * layout: where the held pages are in physical memory, from /proc/self/pagemap
 *   (the daemon runs as root, so the entries carry PFNs). Over the candidates (as
 *   for free) in ascending virtual address order, a RUN is a maximal sequence in
 *   which each page's PFN is the previous one's plus the distance between their
 *   virtual pages: a run is physically what it is virtually. Pages not present
 *   (pagemap bit 63 clear: swapped or never faulted) end a run and are not counted.
 *   -> present=P runs=R even_pfns=E odd_pfns=O runs_1=A runs_2_63=B runs_64_511=C
 *      runs_512_4095=D runs_4096=F first_breaks=I,I,... long_breaks=I,I,...
 *   (runs_X_Y: runs of X..Y present pages; runs_4096: 4096 or more; first_breaks:
 *   the candidate indices at which the first 12 runs after the first begin;
 *   long_breaks: those at which the first 12 runs begin that follow a run of 512
 *   or more; "-" for none)
 *
 * exit -> mappings=M pages=P kept=K resident=R rss_anon_kb=X anon_huge_kb=H
 *   (what it held just before it unmapped everything), then the daemon exits.
 *
 * splitmix64 (Steele, Lea & Flood 2014; the standard constants), 64-bit unsigned
 * arithmetic modulo 2^64:
 *     state += 0x9E3779B97F4A7C15
 *     z = state
 *     z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
 *     z = (z ^ (z >> 27)) * 0x94D049BB133111EB
 *     return z ^ (z >> 31)
 * The initial state is SEED (decimal, 0 .. 2^64-1). Seed 1's first outputs:
 * 0x910a2dec89025cc1 0xbeeb8da1658eec67 0xf893a2eefb32555e 0x71c18690ee42c90b
 * 0x71bb54d8d101b5b9. With N = 10, K = 5, random:1 frees candidates 5 8 1 3 7
 * (in that order).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bl-util.h"

#define PAGE 4096UL
#define HUGE (2UL << 20)
#define RUNDIR "/run/bl"
#define MAX_REQ 512
#define MAX_REPLY 512

static const char *name;

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* Decimal unsigned 64-bit; -1 if not a number. */
static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int parse_bytes(const char *s, uint64_t *out)
{
	char num[32];
	size_t i = 0;
	while (s[i] >= '0' && s[i] <= '9' && i < sizeof(num) - 1) {
		num[i] = s[i];
		i++;
	}
	num[i] = 0;
	uint64_t v;
	if (parse_u64(num, &v) != 0)
		return -1;
	const char *suf = s + i;
	int shift = 0;
	if (*suf) {
		switch (*suf) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		case 't': case 'T': shift = 40; break;
		case 'b': case 'B': shift = 0; suf--; break;
		default: return -1;
		}
		suf++;
		if (strcmp(suf, "") != 0 && strcmp(suf, "iB") != 0 && strcmp(suf, "B") != 0)
			return -1;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = v << shift;
	return 0;
}

/* FRACTION as an exact integer F = FRACTION * 10^9, 0 <= F <= 10^9. */
static int parse_fraction(const char *s, uint64_t *out)
{
	uint64_t ip = 0, fp = 0;
	int fdigits = 0;
	const char *p = s;
	if (!*p)
		return -1;
	if (*p != '.') {
		if (*p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9') {
			ip = ip * 10 + (uint64_t)(*p - '0');
			if (ip > 1)
				return -1;
			p++;
		}
	}
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			if (fdigits == 9)
				return -1;
			fp = fp * 10 + (uint64_t)(*p - '0');
			fdigits++;
			p++;
		}
		if (fdigits == 0 && p - s == 1)
			return -1; /* "." alone */
	}
	if (*p)
		return -1;
	while (fdigits < 9) {
		fp *= 10;
		fdigits++;
	}
	uint64_t f = ip * 1000000000ULL + fp;
	if (f > 1000000000ULL)
		return -1;
	*out = f;
	return 0;
}

/* ------------------------------------------------------------------ daemon */

struct mapping {
	char *addr;
	size_t pages;
	unsigned char *kept; /* 1 per page: faulted and not freed by us */
	const char *advice;
	int aligned;
};

static struct mapping *maps;
static size_t nmaps;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* the background writer */
static pthread_t writer;
static int writer_started;
static volatile int writer_stop;
static volatile int writing;
static volatile uint64_t written;
static uint64_t w_bps, w_ms, w_seed;

struct cand {
	uint32_t map;
	uint32_t page;
};

static long status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return -1;
	char line[256];
	size_t kl = strlen(key);
	long v = -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/*
 * AnonHugePages (kB) of the smaps entry starting at `start` (start != NULL), or
 * summed over the entries that start at one of our mappings (start == NULL).
 */
static long anon_huge_kb(const char *start)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return -1;
	char line[512];
	long sum = 0;
	int ours = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		char c;
		if (sscanf(line, "%lx-%lx %c", &a, &b, &c) == 3 && strchr(line, '-') < strchr(line, ' ')) {
			ours = 0;
			if (start) {
				ours = (char *)a == start;
			} else {
				for (size_t i = 0; i < nmaps; i++)
					if ((char *)a == maps[i].addr)
						ours = 1;
			}
			continue;
		}
		if (ours && strncmp(line, "AnonHugePages:", 14) == 0)
			sum += strtol(line + 14, NULL, 10);
	}
	fclose(f);
	return sum;
}

/* Mapping indices in ascending address order. */
static size_t *by_address(void)
{
	size_t *o = malloc((nmaps + 1) * sizeof(*o));
	if (!o)
		return NULL;
	for (size_t i = 0; i < nmaps; i++)
		o[i] = i;
	for (size_t i = 1; i < nmaps; i++) /* insertion sort: few mappings */
		for (size_t j = i; j > 0 && maps[o[j - 1]].addr > maps[o[j]].addr; j--) {
			size_t t = o[j];
			o[j] = o[j - 1];
			o[j - 1] = t;
		}
	return o;
}

/* The held pages in address order; *n gets their count. NULL on ENOMEM. */
static struct cand *candidates(size_t *n)
{
	size_t total = 0;
	for (size_t i = 0; i < nmaps; i++)
		for (size_t p = 0; p < maps[i].pages; p++)
			total += maps[i].kept[p];
	struct cand *c = malloc((total + 1) * sizeof(*c));
	size_t *o = by_address();
	if (!c || !o) {
		free(c);
		free(o);
		return NULL;
	}
	size_t k = 0;
	for (size_t oi = 0; oi < nmaps; oi++) {
		size_t i = o[oi];
		for (size_t p = 0; p < maps[i].pages; p++)
			if (maps[i].kept[p])
				c[k++] = (struct cand){ (uint32_t)i, (uint32_t)p };
	}
	free(o);
	*n = k;
	return c;
}

struct totals {
	size_t pages, kept, resident;
};

static struct totals count(void)
{
	struct totals t = { 0, 0, 0 };
	unsigned char *vec = NULL;
	size_t veccap = 0;
	for (size_t i = 0; i < nmaps; i++) {
		t.pages += maps[i].pages;
		for (size_t p = 0; p < maps[i].pages; p++)
			t.kept += maps[i].kept[p];
		if (maps[i].pages > veccap) {
			free(vec);
			veccap = maps[i].pages;
			vec = malloc(veccap);
		}
		if (vec && mincore(maps[i].addr, maps[i].pages * PAGE, vec) == 0)
			for (size_t p = 0; p < maps[i].pages; p++)
				t.resident += vec[p] & 1;
	}
	free(vec);
	return t;
}

static void stop_writer(void)
{
	if (writer_started) {
		writer_stop = 1;
		pthread_join(writer, NULL);
		writer_started = 0;
	}
}

static void *write_loop(void *arg)
{
	(void)arg;
	uint64_t state = w_seed;
	size_t n = 0;
	pthread_mutex_lock(&lock);
	struct cand *c = candidates(&n);
	pthread_mutex_unlock(&lock);
	double t0 = bl_now_ms();
	uint64_t done = 0;
	while (c && n > 0 && !writer_stop) {
		double t = bl_now_ms() - t0;
		if (t > (double)w_ms)
			t = (double)w_ms;
		uint64_t due = (uint64_t)((double)w_bps * t / 4096000.0);
		pthread_mutex_lock(&lock);
		for (; done < due && !writer_stop; done++) {
			struct cand x = c[splitmix64(&state) % n];
			if (maps[x.map].kept[x.page]) {
				volatile uint64_t *w = (volatile uint64_t *)(maps[x.map].addr + (size_t)x.page * PAGE + 8);
				*w = *w + 1;
			}
		}
		pthread_mutex_unlock(&lock);
		written = done;
		if (t >= (double)w_ms)
			break;
		usleep(10000);
	}
	free(c);
	writing = 0;
	return NULL;
}

static int do_fault(char **av, int ac, char *out)
{
	uint64_t bytes;
	const char *advice = "default";
	int align = 0;
	if (ac < 1 || parse_bytes(av[0], &bytes) != 0 || bytes == 0)
		return snprintf(out, MAX_REPLY, "err usage: fault BYTES [hugepage|nohugepage|default] [align=2M]"), -1;
	for (int i = 1; i < ac; i++) {
		if (!strcmp(av[i], "hugepage") || !strcmp(av[i], "nohugepage") || !strcmp(av[i], "default"))
			advice = !strcmp(av[i], "hugepage") ? "hugepage" : !strcmp(av[i], "nohugepage") ? "nohugepage" : "default";
		else if (!strcmp(av[i], "align=2M"))
			align = 1;
		else
			return snprintf(out, MAX_REPLY, "err bad fault option: %s", av[i]), -1;
	}
	size_t pages = (size_t)((bytes + PAGE - 1) / PAGE);
	if (pages > UINT32_MAX)
		return snprintf(out, MAX_REPLY, "err too large"), -1;
	size_t len = pages * PAGE;
	unsigned char *kept = calloc(pages, 1);
	struct mapping *nm = realloc(maps, (nmaps + 1) * sizeof(*maps));
	if (!kept || !nm) {
		free(kept);
		return snprintf(out, MAX_REPLY, "err out of memory"), -1;
	}
	maps = nm;
	size_t total = len + 2 * PAGE + (align ? HUGE : 0);
	char *raw = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED) {
		free(kept);
		return snprintf(out, MAX_REPLY, "err mmap %zu bytes: %s", total, strerror(errno)), -1;
	}
	char *addr = raw + PAGE;
	if (align) {
		addr = (char *)(((uintptr_t)raw + PAGE + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
		char *lo = addr - PAGE, *hi = addr + len + PAGE;
		if (lo > raw)
			munmap(raw, (size_t)(lo - raw));
		if (raw + total > hi)
			munmap(hi, (size_t)(raw + total - hi));
	}
	mprotect(addr - PAGE, PAGE, PROT_NONE);
	mprotect(addr + len, PAGE, PROT_NONE);
	int adv = !strcmp(advice, "hugepage") ? MADV_HUGEPAGE : !strcmp(advice, "nohugepage") ? MADV_NOHUGEPAGE : -1;
	if (adv >= 0 && madvise(addr, len, adv) != 0) {
		snprintf(out, MAX_REPLY, "err madvise(MADV_%s): %s", adv == MADV_HUGEPAGE ? "HUGEPAGE" : "NOHUGEPAGE", strerror(errno));
		munmap(addr - PAGE, len + 2 * PAGE);
		free(kept);
		return -1;
	}

	pthread_mutex_lock(&lock);
	size_t index = nmaps;
	maps[nmaps++] = (struct mapping){ addr, pages, kept, advice, align };
	double t0 = bl_now_ms();
	for (size_t p = 0; p < pages; p++) {
		((volatile char *)addr)[p * PAGE] = 1;
		kept[p] = 1;
	}
	double ms = bl_now_ms() - t0;
	pthread_mutex_unlock(&lock);
	snprintf(out, MAX_REPLY, "ok index=%zu bytes=%zu pages=%zu rss_anon_kb=%ld anon_huge_kb=%ld ms=%.3f addr=%p advice=%s align=%s",
		 index, len, pages, status_kb("RssAnon"), anon_huge_kb(addr), ms, (void *)addr, advice, align ? "2M" : "0");
	return 0;
}

static int do_free(char **av, int ac, char *out)
{
	uint64_t f, seed = 0;
	if (ac != 2 || parse_fraction(av[0], &f) != 0)
		return snprintf(out, MAX_REPLY, "err usage: free FRACTION alternate|lowest|highest|random:SEED"), -1;
	const char *pat = av[1];
	int kind;
	if (!strcmp(pat, "alternate"))
		kind = 0;
	else if (!strcmp(pat, "lowest"))
		kind = 1;
	else if (!strcmp(pat, "highest"))
		kind = 2;
	else if (!strncmp(pat, "random:", 7) && parse_u64(pat + 7, &seed) == 0)
		kind = 3;
	else
		return snprintf(out, MAX_REPLY, "err bad pattern: %s", pat), -1;

	pthread_mutex_lock(&lock);
	size_t n = 0;
	struct cand *c = candidates(&n);
	if (!c) {
		pthread_mutex_unlock(&lock);
		return snprintf(out, MAX_REPLY, "err out of memory"), -1;
	}
	uint64_t k = ((uint64_t)n * f + 500000000ULL) / 1000000000ULL;
	size_t freed = 0;
	double t0 = bl_now_ms();
#define RELEASE(x)                                                                          \
	do {                                                                                \
		struct mapping *m_ = &maps[(x).map];                                        \
		madvise(m_->addr + (size_t)(x).page * PAGE, PAGE, MADV_DONTNEED);           \
		m_->kept[(x).page] = 0;                                                     \
		freed++;                                                                    \
	} while (0)
	if (kind == 0) {
		for (size_t i = 0; i < n && freed < k; i += 2)
			RELEASE(c[i]);
	} else if (kind == 1) {
		for (size_t i = 0; i < k; i++)
			RELEASE(c[i]);
	} else if (kind == 2) {
		for (size_t i = 0; i < k; i++)
			RELEASE(c[n - 1 - i]);
	} else {
		uint64_t st = seed;
		for (size_t i = 0; i < k; i++) {
			size_t j = i + (size_t)(splitmix64(&st) % (uint64_t)(n - i));
			struct cand t = c[i];
			c[i] = c[j];
			c[j] = t;
			RELEASE(c[i]);
		}
	}
#undef RELEASE
	double ms = bl_now_ms() - t0;
	free(c);
	long huge = anon_huge_kb(NULL);
	pthread_mutex_unlock(&lock);
	snprintf(out, MAX_REPLY, "ok freed=%zu candidates=%zu rss_anon_kb=%ld anon_huge_kb=%ld ms=%.3f",
		 freed, n, status_kb("RssAnon"), huge, ms);
	return 0;
}

static int do_write(char **av, int ac, char *out)
{
	uint64_t bps, ms, seed;
	if (ac != 3 || parse_u64(av[0], &bps) || parse_u64(av[1], &ms) || parse_u64(av[2], &seed))
		return snprintf(out, MAX_REPLY, "err usage: write BYTES_PER_S DURATION_MS SEED"), -1;
	stop_writer();
	w_bps = bps;
	w_ms = ms;
	w_seed = seed;
	writer_stop = 0;
	written = 0;
	pthread_mutex_lock(&lock);
	size_t n = 0;
	for (size_t i = 0; i < nmaps; i++)
		for (size_t p = 0; p < maps[i].pages; p++)
			n += maps[i].kept[p];
	pthread_mutex_unlock(&lock);
	writing = 1;
	if (pthread_create(&writer, NULL, write_loop, NULL) != 0) {
		writing = 0;
		return snprintf(out, MAX_REPLY, "err pthread_create failed"), -1;
	}
	writer_started = 1;
	snprintf(out, MAX_REPLY, "ok pages_per_s=%" PRIu64 " duration_ms=%" PRIu64 " candidates=%zu", bps / PAGE, ms, n);
	return 0;
}

/* appends I,I,... (or "-") at out + k; the new length */
static int list_indices(char *out, int k, const size_t *v, size_t n)
{
	for (size_t i = 0; i < n && k > 0 && k < MAX_REPLY - 24; i++)
		k += snprintf(out + k, (size_t)(MAX_REPLY - k), i ? ",%zu" : "%zu", v[i]);
	if (n == 0 && k > 0 && k < MAX_REPLY - 2)
		k += snprintf(out + k, (size_t)(MAX_REPLY - k), "-");
	return k;
}

/* layout's length buckets: 1, 2-63, 64-511, 512-4095, 4096 and more */
static int run_bucket(size_t len)
{
	return len == 1 ? 0 : len < 64 ? 1 : len < 512 ? 2 : len < 4096 ? 3 : 4;
}

/* pagemap entries: bits 0-54 the PFN, bit 63 present */
#define PM_PRESENT (1ULL << 63)
#define PM_PFN_MASK ((1ULL << 55) - 1)

static int do_layout(char *out)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return snprintf(out, MAX_REPLY, "err open /proc/self/pagemap: %s", strerror(errno)), -1;
	size_t present = 0, runs = 0, even = 0, odd = 0, cand = 0, nbreaks = 0;
	size_t hist[5] = { 0, 0, 0, 0, 0 }, run_len = 0, breaks[12], longs[12], nlongs = 0;
	uint64_t last_pfn = 0, last_vpn = 0;
	int in_run = 0;
	uint64_t buf[512];
	pthread_mutex_lock(&lock);
	for (size_t m = 0; m < nmaps; m++) {
		for (size_t p0 = 0; p0 < maps[m].pages; p0 += 512) {
			size_t n = maps[m].pages - p0 < 512 ? maps[m].pages - p0 : 512;
			off_t off = (off_t)(((uintptr_t)maps[m].addr / PAGE + p0) * sizeof(uint64_t));
			if (pread(fd, buf, n * sizeof(uint64_t), off) != (ssize_t)(n * sizeof(uint64_t))) {
				pthread_mutex_unlock(&lock);
				close(fd);
				return snprintf(out, MAX_REPLY, "err read /proc/self/pagemap: %s", strerror(errno)), -1;
			}
			for (size_t i = 0; i < n; i++) {
				if (!maps[m].kept[p0 + i])
					continue;
				uint64_t e = buf[i], c = cand++, vpn = (uintptr_t)maps[m].addr / PAGE + p0 + i;
				if (!(e & PM_PRESENT)) {
					if (in_run) {
						hist[run_bucket(run_len)]++;
						in_run = 0;
					}
					continue;
				}
				uint64_t pfn = e & PM_PFN_MASK;
				present++;
				if (pfn & 1)
					odd++;
				else
					even++;
				if (in_run && pfn == last_pfn + (vpn - last_vpn)) {
					run_len++;
				} else {
					if (in_run)
						hist[run_bucket(run_len)]++;
					if (runs > 0 && nbreaks < 12)
						breaks[nbreaks++] = c;
					if (in_run && run_len >= 512 && nlongs < 12)
						longs[nlongs++] = c;
					runs++;
					run_len = 1;
					in_run = 1;
				}
				last_pfn = pfn;
				last_vpn = vpn;
			}
		}
	}
	pthread_mutex_unlock(&lock);
	close(fd);
	if (in_run)
		hist[run_bucket(run_len)]++;
	int k = snprintf(out, MAX_REPLY, "ok present=%zu runs=%zu even_pfns=%zu odd_pfns=%zu runs_1=%zu runs_2_63=%zu runs_64_511=%zu runs_512_4095=%zu runs_4096=%zu first_breaks=",
			 present, runs, even, odd, hist[0], hist[1], hist[2], hist[3], hist[4]);
	k = list_indices(out, k, breaks, nbreaks);
	if (k > 0 && k < MAX_REPLY - 14)
		k += snprintf(out + k, (size_t)(MAX_REPLY - k), " long_breaks=");
	list_indices(out, k, longs, nlongs);
	return 0;
}

static void held(char *out, int with_writer)
{
	pthread_mutex_lock(&lock);
	struct totals t = count();
	long huge = anon_huge_kb(NULL);
	pthread_mutex_unlock(&lock);
	int n = snprintf(out, MAX_REPLY, "ok mappings=%zu pages=%zu kept=%zu resident=%zu rss_anon_kb=%ld anon_huge_kb=%ld",
			 nmaps, t.pages, t.kept, t.resident, status_kb("RssAnon"), huge);
	if (with_writer && n > 0 && n < MAX_REPLY)
		snprintf(out + n, (size_t)(MAX_REPLY - n), " writing=%d written=%" PRIu64, writing ? 1 : 0, (uint64_t)written);
}

static int sock_path(char *buf, size_t cap)
{
	return snprintf(buf, cap, RUNDIR "/%s.sock", name) >= (int)cap ? -1 : 0;
}

static void serve(int ls)
{
	char req[MAX_REQ + 1], out[MAX_REPLY + 2];
	for (;;) {
		int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			exit(1);
		}
		size_t n = 0;
		while (n < MAX_REQ) {
			ssize_t r = read(c, req + n, MAX_REQ - n);
			if (r <= 0)
				break;
			n += (size_t)r;
			if (memchr(req, '\n', n))
				break;
		}
		req[n] = 0;
		char *nl = strchr(req, '\n');
		if (nl)
			*nl = 0;
		char *av[16];
		int ac = 0;
		char *save = NULL;
		for (char *tok = strtok_r(req, " ", &save); tok && ac < 16; tok = strtok_r(NULL, " ", &save))
			av[ac++] = tok;
		int quit = 0;
		if (ac == 0)
			snprintf(out, MAX_REPLY, "err empty request");
		else if (!strcmp(av[0], "fault"))
			do_fault(av + 1, ac - 1, out);
		else if (!strcmp(av[0], "free"))
			do_free(av + 1, ac - 1, out);
		else if (!strcmp(av[0], "write"))
			do_write(av + 1, ac - 1, out);
		else if (!strcmp(av[0], "stat") && ac == 1)
			held(out, 1);
		else if (!strcmp(av[0], "layout") && ac == 1)
			do_layout(out);
		else if (!strcmp(av[0], "exit") && ac == 1) {
			stop_writer();
			held(out, 0);
			for (size_t i = 0; i < nmaps; i++) {
				munmap(maps[i].addr - PAGE, (maps[i].pages + 2) * PAGE);
				free(maps[i].kept);
			}
			nmaps = 0;
			quit = 1;
		} else
			snprintf(out, MAX_REPLY, "err unknown command: %s", av[0]);
		size_t len = strlen(out);
		out[len++] = '\n';
		if (write(c, out, len) < 0) { /* the client went away */ }
		close(c);
		if (quit) {
			char path[108];
			if (sock_path(path, sizeof(path)) == 0)
				unlink(path);
			exit(0);
		}
	}
}

/* Forks the daemon for NAME; returns once it listens (0) or failed (-1). */
static int spawn_daemon(void)
{
	char path[108];
	if (sock_path(path, sizeof(path)) != 0)
		return -1;
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(ready[0]);
		setsid();
		signal(SIGPIPE, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
			if (nul > 2)
				close(nul);
		}
		if (chdir("/") != 0) { /* not fatal */ }
		unlink(path);
		int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		memcpy(sa.sun_path, path, strlen(path) + 1); /* sock_path: < 108 */
		if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(ls, 8) != 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		close(ready[1]);
		serve(ls);
		_exit(0);
	}
	close(ready[1]);
	char b;
	ssize_t r;
	while ((r = read(ready[0], &b, 1)) < 0 && errno == EINTR)
		;
	close(ready[0]);
	return r == 1 ? 0 : -1;
}

/* ------------------------------------------------------------------ client */

static int connect_daemon(void)
{
	char path[108];
	if (sock_path(path, sizeof(path)) != 0)
		return -1;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, path, strlen(path) + 1); /* sock_path: < 108 */
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(s);
		errno = e;
		return -1;
	}
	return s;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bl-mem NAME fault BYTES [hugepage|nohugepage|default] [align=2M]\n"
		"       bl-mem NAME free FRACTION alternate|lowest|highest|random:SEED\n"
		"       bl-mem NAME write BYTES_PER_S DURATION_MS SEED\n"
		"       bl-mem NAME stat\n"
		"       bl-mem NAME layout\n"
		"       bl-mem NAME exit\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		usage();
	name = argv[1];
	const char *cmd = argv[2];
	if (!bl_valid_name(name, 1)) {
		fprintf(stderr, "bl-mem: bad NAME: %s\n", name);
		return 2;
	}
	if (strcmp(cmd, "fault") && strcmp(cmd, "free") && strcmp(cmd, "write") && strcmp(cmd, "stat") && strcmp(cmd, "layout") && strcmp(cmd, "exit"))
		usage();
	signal(SIGPIPE, SIG_IGN);
	char req[MAX_REQ + 2];
	size_t n = 0;
	for (int i = 2; i < argc; i++) {
		size_t l = strlen(argv[i]);
		if (n + l + 2 > MAX_REQ || strchr(argv[i], '\n') || strchr(argv[i], ' ')) {
			fprintf(stderr, "bl-mem: %s: bad arguments\n", name);
			return 2;
		}
		memcpy(req + n, argv[i], l);
		n += l;
		req[n++] = i + 1 < argc ? ' ' : '\n';
	}
	if (mkdir(RUNDIR, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "bl-mem: %s: mkdir " RUNDIR ": %s\n", name, strerror(errno));
		return 1;
	}
	int s = connect_daemon();
	if (s < 0) {
		if (strcmp(cmd, "fault") != 0) {
			fprintf(stderr, "bl-mem: %s: no such process (no daemon; `fault` starts one)\n", name);
			return 1;
		}
		if (spawn_daemon() != 0 || (s = connect_daemon()) < 0) {
			fprintf(stderr, "bl-mem: %s: cannot start the daemon\n", name);
			return 1;
		}
	}
	if (write(s, req, n) != (ssize_t)n) {
		fprintf(stderr, "bl-mem: %s: write to daemon: %s\n", name, strerror(errno));
		return 1;
	}
	char out[MAX_REPLY + 2];
	size_t got = 0;
	for (;;) {
		ssize_t r = read(s, out + got, MAX_REPLY + 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (memchr(out, '\n', got) || got >= MAX_REPLY + 1)
			break;
	}
	out[got] = 0;
	char *nl = strchr(out, '\n');
	if (!nl) {
		fprintf(stderr, "bl-mem: %s: the daemon died without a reply (killed by the OOM killer?)\n", name);
		return 1;
	}
	*nl = 0;
	if (strncmp(out, "ok ", 3) == 0 || strcmp(out, "ok") == 0) {
		printf("%s\n", out[2] ? out + 3 : "");
		return 0;
	}
	fprintf(stderr, "bl-mem: %s: %s\n", name, strncmp(out, "err ", 4) == 0 ? out + 4 : out);
	return 1;
}
