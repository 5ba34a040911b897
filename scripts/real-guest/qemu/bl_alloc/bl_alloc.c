// SPDX-License-Identifier: GPL-2.0
/*
 * bl_alloc: a page allocator driver for balloonlab's real guest (Linux 6.1),
 * after mmtests' stress-highalloc (whose SystemTap module called alloc_pages in
 * a loop) and balloonlab's alloc_pages / free_pages scenario actions. Blocks
 * that were allocated are HELD on a per-TAG list until freed.
 *
 * Control file: /sys/kernel/debug/bl_alloc/ctl (when debugfs is available) and
 * always /proc/bl_alloc (the same thing). Write one command per write():
 *
 *   alloc TAG ORDER GFP COUNT [DELAY_US]
 *       COUNT attempts of alloc_pages(GFP, ORDER); successes go on TAG's list
 *       (oldest first). GFP: a '|'-joined list of the names in gfp_names[]
 *       below (the kernel's own 6.1 values); an unknown name is -EINVAL, so are
 *       two zone modifiers at once, __GFP_MOVABLE with __GFP_RECLAIMABLE, ORDER >=
 *       MAX_ORDER and __GFP_NOFAIL above PAGE_ALLOC_COSTLY_ORDER. DELAY_US > 0:
 *       sleep that long after each attempt (usleep_range below 20 ms, msleep
 *       from there). A fatal signal stops the loop (interrupted=1).
 *   free TAG FRACTION PICK
 *       Frees K of the tag's N blocks, K = round-half-up(N * FRACTION) computed
 *       exactly (FRACTION: decimal 0..1, at most 9 fraction digits; F =
 *       FRACTION * 10^9; K = (N * F + 500000000) / 10^9). Blocks are indexed
 *       0 .. N-1 oldest first. PICK:
 *         oldest     0 .. K-1
 *         newest     N-1 down to N-K
 *         alternate  0, 2, 4, ... (at most ceil(N/2) blocks), until K
 *         random:S   the first K of a seeded permutation: a = [0 .. N-1]; for
 *                    i = 0 .. K-1: j = i + (splitmix64() % (N - i)); swap a[i],
 *                    a[j]; block a[i] is freed. splitmix64 with state = S:
 *                      state += 0x9E3779B97F4A7C15; z = state;
 *                      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
 *                      z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
 *                      return z ^ (z >> 31);          (all mod 2^64)
 *                    the same generator and permutation as bl-mem's free.
 *       The chosen blocks are then freed in ascending index order (oldest
 *       first), whatever the PICK, as balloonlab's free_pages does.
 *       A tag left with no blocks is forgotten.
 *   freeall
 *       Frees every block of every tag.
 *   stat TAG
 *       Reports a tag's holdings.
 *
 * Reading the file returns the last command's result, one line:
 *   op=alloc tag=T order=O requested=N succeeded=S failed=F ns=NS gfp=0xG held=H interrupted=0|1
 *   op=free tag=T requested=K freed=K pages=P ns=NS held=H
 *   op=freeall tags=T freed=B pages=P ns=NS
 *   op=stat tag=T blocks=B pages=P
 *   op=error err=-E msg=TEXT            (the write also returned -E)
 *   op=none                             (nothing run yet)
 * (ns: ktime_get_ns() around the loop; held: the tag's blocks afterwards;
 * pages: base pages, sum of 2^order over the freed blocks.)
 *
 * A block's list link is its head page's lru and its order is kept in
 * page_private, so holding blocks costs no extra kernel memory; free builds
 * transient arrays (N pointers, an N-bit bitmap and, for random, N u32s).
 * All lists are under one mutex. Everything is freed on module unload.
 */
#include <linux/bitmap.h>
#include <linux/ctype.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/gfp.h>
#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/proc_fs.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#define BL_CMD_MAX 256
#define BL_RESULT_MAX 256
#define BL_TAG_MAX 32

struct bl_tag {
	struct list_head node;
	struct list_head blocks; /* struct page.lru, oldest first */
	unsigned long nblocks;
	unsigned long npages;
	char name[BL_TAG_MAX];
};

static LIST_HEAD(bl_tags);
static DEFINE_MUTEX(bl_lock);
static char bl_result[BL_RESULT_MAX] = "op=none\n";
static struct dentry *bl_dir;
static struct proc_dir_entry *bl_proc;

struct gfp_name {
	const char *name;
	gfp_t flags;
};

#define G(x) { #x, x }
static const struct gfp_name gfp_names[] = {
	G(__GFP_DMA), G(__GFP_HIGHMEM), G(__GFP_DMA32), G(__GFP_MOVABLE),
	G(__GFP_RECLAIMABLE), G(__GFP_HIGH), G(__GFP_IO), G(__GFP_FS),
	G(__GFP_ZERO), G(__GFP_ATOMIC), G(__GFP_DIRECT_RECLAIM),
	G(__GFP_KSWAPD_RECLAIM), G(__GFP_WRITE), G(__GFP_NOWARN),
	G(__GFP_RETRY_MAYFAIL), G(__GFP_NOFAIL), G(__GFP_NORETRY),
	G(__GFP_MEMALLOC), G(__GFP_COMP), G(__GFP_NOMEMALLOC),
	G(__GFP_HARDWALL), G(__GFP_THISNODE), G(__GFP_ACCOUNT),
	G(__GFP_RECLAIM), G(GFP_ATOMIC), G(GFP_KERNEL), G(GFP_KERNEL_ACCOUNT),
	G(GFP_NOWAIT), G(GFP_NOIO), G(GFP_NOFS), G(GFP_USER), G(GFP_DMA),
	G(GFP_DMA32), G(GFP_HIGHUSER), G(GFP_HIGHUSER_MOVABLE),
	G(GFP_TRANSHUGE_LIGHT), G(GFP_TRANSHUGE),
};
#undef G

static u64 splitmix64(u64 *state)
{
	u64 z = (*state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static int parse_gfp(char *s, gfp_t *out)
{
	gfp_t gfp = 0, zone;
	char *tok;

	if (!*s)
		return -EINVAL;
	while ((tok = strsep(&s, "|")) != NULL) {
		size_t i;

		for (i = 0; i < ARRAY_SIZE(gfp_names); i++)
			if (strcmp(tok, gfp_names[i].name) == 0)
				break;
		if (i == ARRAY_SIZE(gfp_names))
			return -EINVAL;
		gfp |= gfp_names[i].flags;
	}
	zone = gfp & (__GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32);
	if (zone & (zone - 1))
		return -EINVAL; /* two zone modifiers: GFP_ZONE_BAD */
	if ((gfp & (__GFP_MOVABLE | __GFP_RECLAIMABLE)) == (__GFP_MOVABLE | __GFP_RECLAIMABLE))
		return -EINVAL; /* movable and reclaimable at once */
	*out = gfp;
	return 0;
}

/* Decimal 0..1 with up to 9 fraction digits, as FRACTION * 10^9. */
static int parse_fraction(const char *s, u64 *out)
{
	u64 ip = 0, fp = 0;
	int fdigits = 0;
	const char *p = s;

	if (!*p)
		return -EINVAL;
	if (*p != '.') {
		if (!isdigit(*p))
			return -EINVAL;
		while (isdigit(*p)) {
			ip = ip * 10 + (*p - '0');
			if (ip > 1)
				return -EINVAL;
			p++;
		}
	}
	if (*p == '.') {
		p++;
		while (isdigit(*p)) {
			if (fdigits == 9)
				return -EINVAL;
			fp = fp * 10 + (*p - '0');
			fdigits++;
			p++;
		}
		if (fdigits == 0 && p - s == 1)
			return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	for (; fdigits < 9; fdigits++)
		fp *= 10;
	fp += ip * 1000000000ULL;
	if (fp > 1000000000ULL)
		return -EINVAL;
	*out = fp;
	return 0;
}

static int valid_tag(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= BL_TAG_MAX)
		return 0;
	for (; *s; s++)
		if (!isalnum(*s) && *s != '_' && *s != '.' && *s != '-')
			return 0;
	return 1;
}

static struct bl_tag *find_tag(const char *name)
{
	struct bl_tag *t;

	list_for_each_entry(t, &bl_tags, node)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

static void free_block(struct bl_tag *t, struct page *page)
{
	unsigned int order = page_private(page);

	list_del_init(&page->lru);
	set_page_private(page, 0);
	__free_pages(page, order);
	t->nblocks--;
	t->npages -= 1UL << order;
}

static void forget_tag(struct bl_tag *t)
{
	list_del(&t->node);
	kfree(t);
}

static int do_alloc(char *tag, char *order_s, char *gfp_s, char *count_s, char *delay_s)
{
	unsigned int order, count, delay = 0, i, ok = 0, bad = 0;
	struct bl_tag *t;
	gfp_t gfp;
	u64 t0, ns;
	int interrupted = 0, err;

	if (!valid_tag(tag) || kstrtouint(order_s, 10, &order) || kstrtouint(count_s, 10, &count) ||
	    (delay_s && kstrtouint(delay_s, 10, &delay)))
		return -EINVAL;
	err = parse_gfp(gfp_s, &gfp);
	if (err)
		return err;
	if (order >= MAX_ORDER || ((gfp & __GFP_NOFAIL) && order > PAGE_ALLOC_COSTLY_ORDER))
		return -EINVAL;
	t = find_tag(tag);
	if (!t) {
		t = kzalloc(sizeof(*t), GFP_KERNEL);
		if (!t)
			return -ENOMEM;
		strscpy(t->name, tag, sizeof(t->name));
		INIT_LIST_HEAD(&t->blocks);
		list_add_tail(&t->node, &bl_tags);
	}
	t0 = ktime_get_ns();
	for (i = 0; i < count; i++) {
		struct page *page = alloc_pages(gfp, order);

		if (page) {
			set_page_private(page, order);
			list_add_tail(&page->lru, &t->blocks);
			t->nblocks++;
			t->npages += 1UL << order;
			ok++;
		} else {
			bad++;
		}
		if (fatal_signal_pending(current)) {
			interrupted = 1;
			break;
		}
		if (delay >= 20000)
			msleep(delay / 1000);
		else if (delay > 0)
			usleep_range(delay, delay + delay / 8 + 1);
		else
			cond_resched();
	}
	ns = ktime_get_ns() - t0;
	snprintf(bl_result, sizeof(bl_result),
		 "op=alloc tag=%s order=%u requested=%u succeeded=%u failed=%u ns=%llu gfp=%#x held=%lu interrupted=%d\n",
		 t->name, order, count, ok, bad, ns, (unsigned int)gfp, t->nblocks, interrupted);
	if (t->nblocks == 0)
		forget_tag(t);
	return 0;
}

static int do_free(char *tag, char *frac_s, char *pick)
{
	struct page **a, *page;
	unsigned long *sel;
	u32 *perm = NULL;
	struct bl_tag *t;
	unsigned long n, k, i, c, freed = 0, pages = 0, held;
	u64 f, seed = 0, t0, ns;
	int kind;

	if (!valid_tag(tag) || parse_fraction(frac_s, &f))
		return -EINVAL;
	if (strcmp(pick, "oldest") == 0)
		kind = 0;
	else if (strcmp(pick, "newest") == 0)
		kind = 1;
	else if (strcmp(pick, "alternate") == 0)
		kind = 2;
	else if (strncmp(pick, "random:", 7) == 0 && !kstrtou64(pick + 7, 10, &seed))
		kind = 3;
	else
		return -EINVAL;
	t = find_tag(tag);
	if (!t)
		return -ENOENT;
	n = t->nblocks;
	k = div_u64((u64)n * f + 500000000ULL, 1000000000U);
	a = kvmalloc_array(n ? n : 1, sizeof(*a), GFP_KERNEL);
	sel = bitmap_zalloc(n ? n : 1, GFP_KERNEL);
	if (kind == 3)
		perm = kvmalloc_array(n ? n : 1, sizeof(*perm), GFP_KERNEL);
	if (!a || !sel || (kind == 3 && !perm)) {
		kvfree(a);
		bitmap_free(sel);
		kvfree(perm);
		return -ENOMEM;
	}
	i = 0;
	list_for_each_entry(page, &t->blocks, lru)
		a[i++] = page;
	t0 = ktime_get_ns();
	/* choose, then free the chosen ones oldest first (as balloonlab does) */
	if (kind == 0) {
		for (i = 0; i < k; i++)
			__set_bit(i, sel);
	} else if (kind == 1) {
		for (i = 0; i < k; i++)
			__set_bit(n - 1 - i, sel);
	} else if (kind == 2) {
		for (i = 0, c = 0; i < n && c < k; i += 2, c++)
			__set_bit(i, sel);
	} else {
		for (i = 0; i < n; i++)
			perm[i] = (u32)i;
		for (i = 0; i < k; i++) {
			unsigned long j = i + (unsigned long)(splitmix64(&seed) % (u64)(n - i));

			swap(perm[i], perm[j]);
			__set_bit(perm[i], sel);
		}
	}
	for_each_set_bit(i, sel, n) {
		pages += 1UL << page_private(a[i]);
		free_block(t, a[i]);
		freed++;
		cond_resched();
	}
	ns = ktime_get_ns() - t0;
	kvfree(perm);
	bitmap_free(sel);
	kvfree(a);
	held = t->nblocks;
	snprintf(bl_result, sizeof(bl_result), "op=free tag=%s requested=%lu freed=%lu pages=%lu ns=%llu held=%lu\n",
		 t->name, k, freed, pages, ns, held);
	if (held == 0)
		forget_tag(t);
	return 0;
}

static void free_all(unsigned long *tags, unsigned long *blocks, unsigned long *pages)
{
	struct bl_tag *t, *tn;
	struct page *page, *pn;

	list_for_each_entry_safe(t, tn, &bl_tags, node) {
		list_for_each_entry_safe(page, pn, &t->blocks, lru) {
			*pages += 1UL << page_private(page);
			free_block(t, page);
			(*blocks)++;
			cond_resched();
		}
		forget_tag(t);
		(*tags)++;
	}
}

static int run_cmd(char *buf)
{
	char *argv[8];
	int argc = 0, err = -EINVAL;
	char *s = strim(buf), *tok;

	while ((tok = strsep(&s, " \t")) != NULL) {
		if (!*tok)
			continue;
		if (argc == ARRAY_SIZE(argv))
			return -EINVAL;
		argv[argc++] = tok;
	}
	if (argc == 0)
		return -EINVAL;
	if (strcmp(argv[0], "alloc") == 0 && (argc == 5 || argc == 6)) {
		err = do_alloc(argv[1], argv[2], argv[3], argv[4], argc == 6 ? argv[5] : NULL);
	} else if (strcmp(argv[0], "free") == 0 && argc == 4) {
		err = do_free(argv[1], argv[2], argv[3]);
	} else if (strcmp(argv[0], "freeall") == 0 && argc == 1) {
		unsigned long tags = 0, blocks = 0, pages = 0;
		u64 t0 = ktime_get_ns();

		free_all(&tags, &blocks, &pages);
		snprintf(bl_result, sizeof(bl_result), "op=freeall tags=%lu freed=%lu pages=%lu ns=%llu\n",
			 tags, blocks, pages, ktime_get_ns() - t0);
		err = 0;
	} else if (strcmp(argv[0], "stat") == 0 && argc == 2) {
		struct bl_tag *t = find_tag(argv[1]);

		snprintf(bl_result, sizeof(bl_result), "op=stat tag=%s blocks=%lu pages=%lu\n",
			 argv[1], t ? t->nblocks : 0, t ? t->npages : 0);
		err = valid_tag(argv[1]) ? 0 : -EINVAL;
	}
	return err;
}

static ssize_t bl_write(struct file *file, const char __user *ubuf, size_t len, loff_t *ppos)
{
	char buf[BL_CMD_MAX];
	int err;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = 0;
	mutex_lock(&bl_lock);
	err = run_cmd(buf);
	if (err)
		snprintf(bl_result, sizeof(bl_result), "op=error err=%d msg=%s\n", err,
			 err == -ENOENT ? "no-such-tag" : err == -ENOMEM ? "out-of-memory" : "invalid-command");
	mutex_unlock(&bl_lock);
	return err ? err : (ssize_t)len;
}

static ssize_t bl_read(struct file *file, char __user *ubuf, size_t len, loff_t *ppos)
{
	char buf[BL_RESULT_MAX];
	size_t n;

	mutex_lock(&bl_lock);
	n = strscpy(buf, bl_result, sizeof(buf)) < 0 ? sizeof(buf) - 1 : strlen(buf);
	mutex_unlock(&bl_lock);
	return simple_read_from_buffer(ubuf, len, ppos, buf, n);
}

static const struct file_operations bl_fops = {
	.owner = THIS_MODULE,
	.read = bl_read,
	.write = bl_write,
	.llseek = default_llseek,
};

static const struct proc_ops bl_pops = {
	.proc_read = bl_read,
	.proc_write = bl_write,
	.proc_lseek = default_llseek,
};

static int __init bl_alloc_init(void)
{
	bl_dir = debugfs_create_dir("bl_alloc", NULL);
	if (!IS_ERR(bl_dir))
		debugfs_create_file("ctl", 0600, bl_dir, NULL, &bl_fops);
	bl_proc = proc_create("bl_alloc", 0600, NULL, &bl_pops);
	if (IS_ERR(bl_dir) && !bl_proc)
		return -ENOMEM;
	return 0;
}

static void __exit bl_alloc_exit(void)
{
	unsigned long tags = 0, blocks = 0, pages = 0;

	if (bl_proc)
		proc_remove(bl_proc);
	if (!IS_ERR(bl_dir))
		debugfs_remove_recursive(bl_dir);
	mutex_lock(&bl_lock);
	free_all(&tags, &blocks, &pages);
	mutex_unlock(&bl_lock);
	if (blocks)
		pr_info("bl_alloc: freed %lu blocks (%lu pages) of %lu tags on unload\n", blocks, pages, tags);
}

module_init(bl_alloc_init);
module_exit(bl_alloc_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("balloonlab: hold page allocator blocks by tag (after mmtests stress-highalloc)");
