/*
 * Helpers bl-mem.c and bl-file.c share (static, header-only: each helper is one static
 * binary built from its .c file by scripts/real-guest/build-qemu-image.sh).
 */
#ifndef BL_UTIL_H
#define BL_UTIL_H

#include <string.h>
#include <time.h>

/* CLOCK_MONOTONIC in milliseconds. */
static inline double bl_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/*
 * A name usable as a file name under the helper's directory: 1 to 64 of [A-Za-z0-9_-]
 * (and '.' when allow_dot), not starting with '.'.
 */
static inline int bl_valid_name(const char *s, int allow_dot)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64 || s[0] == '.')
		return 0;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || (allow_dot && c == '.')))
			return 0;
	}
	return 1;
}

#endif
