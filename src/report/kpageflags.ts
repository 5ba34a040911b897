/**
 * /proc/kpageflags: one little-endian u64 of KPF_* bits per physical page frame
 * (fs/proc/page.c, Linux 6.1), and the per-page flag word it is built from.
 *
 * The file is indexed by PHYSICAL pfn, 0 .. layout.maxPhysPfn-1; the model's page map
 * by memmap pfn (layout.ts). Frames without a struct page (the PCI hole of a guest
 * with more than 3.5 GiB) read KPF_NOPAGE, as pfn_to_online_page() returns NULL there.
 *
 * How model state maps to KPF bits (stable_page_flags):
 *
 *   model                                  KPF
 *   PG.locked/referenced/uptodate/dirty/   LOCKED/REFERENCED/UPTODATE/DIRTY/
 *     lru/active/writeback/reclaim/          LRU/ACTIVE/WRITEBACK/RECLAIM/
 *     swapbacked                             SWAPBACKED (kpf_copy_bit)
 *   PG.reported                            UPTODATE   (PG_reported aliases PG_uptodate)
 *   PG.isolated                            RECLAIM    (PG_isolated aliases PG_reclaim)
 *   PG.swapcache                           SWAPCACHE | SWAPBACKED, OWNER_PRIVATE (37)
 *   PG.reserved                            RESERVED (32)
 *   PG.head / PG.tail                      COMPOUND_HEAD / COMPOUND_TAIL
 *   compound page whose head is anon/LRU   THP, on the head and every tail
 *   Owner.hugetlb (a hugetlb pool page)    HUGE, on the head and every tail (not THP)
 *   PageType.buddy, and every other page   BUDDY (the kernel's is_free_buddy_page(): all
 *     of a free block (Owner.free)           pages of a free block read BUDDY, not only
 *                                            the PageBuddy head)
 *   PageType.offline                       OFFLINE
 *   PageType.table                         PGTABLE
 *   PageType.slab (PageSlab)               SLAB (head, and tails through compound_head;
 *                                            kmalloc_large pages and alloc_pages' slab-owned
 *                                            pages are counted as slab, but are not PageSlab)
 *   Owner.anon                             ANON | MMAP, SWAPBACKED on the head/base page
 *   Owner.shmem                            SWAPBACKED on the head/base page
 *
 * Pages on per-cpu lists are allocated from the buddy's point of view and read 0, as
 * in the kernel. Not modelled: KSM, ZERO_PAGE, IDLE, HWPOISON, MMAP
 * of file pages, MLOCKED and the other kernel-hacker bits besides RESERVED.
 */
import type { Guest } from '../guest/guest.js';
import { type MemMap, MAX_ORDER, NO_PAGE, Owner, PG, PageType, pageFlags, pageOwner, pageTypeOf } from '../guest/mm/memmap.js';
import { memmapPfn } from '../guest/mm/layout.js';

// include/uapi/linux/kernel-page-flags.h
export const KPF_LOCKED = 0;
export const KPF_ERROR = 1;
export const KPF_REFERENCED = 2;
export const KPF_UPTODATE = 3;
export const KPF_DIRTY = 4;
export const KPF_LRU = 5;
export const KPF_ACTIVE = 6;
export const KPF_SLAB = 7;
export const KPF_WRITEBACK = 8;
export const KPF_RECLAIM = 9;
export const KPF_BUDDY = 10;
export const KPF_MMAP = 11;
export const KPF_ANON = 12;
export const KPF_SWAPCACHE = 13;
export const KPF_SWAPBACKED = 14;
export const KPF_COMPOUND_HEAD = 15;
export const KPF_COMPOUND_TAIL = 16;
export const KPF_HUGE = 17;
export const KPF_UNEVICTABLE = 18;
export const KPF_HWPOISON = 19;
export const KPF_NOPAGE = 20;
export const KPF_KSM = 21;
export const KPF_THP = 22;
export const KPF_OFFLINE = 23;
export const KPF_ZERO_PAGE = 24;
export const KPF_IDLE = 25;
export const KPF_PGTABLE = 26;

// include/linux/kernel-page-flags.h: "kernel hacking assistances", not stable ABI
export const KPF_RESERVED = 32;
export const KPF_MLOCKED = 33;
export const KPF_MAPPEDTODISK = 34;
export const KPF_PRIVATE = 35;
export const KPF_PRIVATE_2 = 36;
export const KPF_OWNER_PRIVATE = 37;
export const KPF_ARCH = 38;
export const KPF_UNCACHED = 39;
export const KPF_SOFTDIRTY = 40;
export const KPF_ARCH_2 = 41;

/** Bytes per entry of /proc/kpageflags. */
export const KPF_BYTES = 8;

/**
 * One KPF word as two unsigned 32-bit halves: `lo` holds bits 0-31, `hi` bits 32-63.
 * NOTE: two numbers instead of a bigint so the per-page loop stays in small integers.
 */
export type KpfWord = { lo: number; hi: number };

/** Bits implied by the page's owner (the model keeps no page->mapping to derive them from). */
const SLAB_BIT = 1 << KPF_SLAB;
const ANON_BITS = (1 << KPF_ANON) | (1 << KPF_MMAP);
const SWAPBACKED_BIT = 1 << KPF_SWAPBACKED;

/**
 * PG.* bit -> KPF bit for the flags copied straight across (kpf_copy_bit), indexed by
 * the PG bit number; -1 for flags handled elsewhere or with no KPF counterpart.
 */
const PG_TO_KPF_LO: readonly number[] = (() => {
  const t: number[] = new Array<number>(16).fill(-1);
  const set = (pg: number, kpf: number) => { t[31 - Math.clz32(pg)] = kpf; };
  set(PG.locked, KPF_LOCKED);
  set(PG.referenced, KPF_REFERENCED);
  set(PG.uptodate, KPF_UPTODATE);
  set(PG.dirty, KPF_DIRTY);
  set(PG.lru, KPF_LRU);
  set(PG.active, KPF_ACTIVE);
  set(PG.writeback, KPF_WRITEBACK);
  set(PG.head, KPF_COMPOUND_HEAD);
  set(PG.tail, KPF_COMPOUND_TAIL);
  set(PG.swapbacked, KPF_SWAPBACKED);
  set(PG.reported, KPF_UPTODATE);
  set(PG.isolated, KPF_RECLAIM);
  set(PG.reclaim, KPF_RECLAIM);
  set(PG.swapcache, KPF_SWAPCACHE);
  return t;
})();

/**
 * The low KPF word of each of the 65536 possible PG.* flag values.
 * NOTE: a 256 KiB table instead of a loop over bits per page: kpageflags over an
 * 8 GiB guest visits 2M pages.
 */
const FLAGS_TO_KPF: Uint32Array = (() => {
  const t = new Uint32Array(1 << 16);
  for (let f = 0; f < t.length; f++) {
    let lo = 0;
    for (let b = 0; b < 16; b++) {
      const k = PG_TO_KPF_LO[b]!;
      if (k >= 0 && (f & (1 << b))) lo |= 1 << k;
    }
    // PageSwapCache() needs PG_swapbacked too; the model's swapcache pages imply it.
    if (f & PG.swapcache) lo |= SWAPBACKED_BIT;
    t[f] = lo >>> 0;
  }
  return t;
})();

/**
 * The compound head of a tail page (compound_head()): the nearest PG.head page at or
 * below pfn, at most one MAX_ORDER block away; NO_PAGE if none (a corrupt map).
 */
export function compoundHead(map: MemMap, pfn: number): number {
  const lowest = Math.max(0, pfn - (1 << (MAX_ORDER - 1)) + 1);
  for (let p = pfn; p >= lowest; p--) if (pageFlags(map, p) & PG.head) return p;
  return NO_PAGE;
}

/**
 * @kernel fs/proc/page.c stable_page_flags
 * The KPF word of memmap page pfn, into out. `head` is the page's compound head when
 * the page is a tail (callers walking in pfn order track it; see compoundHead),
 * otherwise ignored.
 */
export function stablePageFlags(map: MemMap, pfn: number, head: number, out: KpfWord, offlineBit = true): void {
  const f = pageFlags(map, pfn);
  const owner = pageOwner(map, pfn);
  const type = pageTypeOf(map, pfn);
  let lo = FLAGS_TO_KPF[f]!;
  let hi = 0;
  const tail = (f & PG.tail) !== 0;
  if (owner === Owner.anon) lo |= ANON_BITS;
  if (!tail && (owner === Owner.anon || owner === Owner.shmem)) lo |= SWAPBACKED_BIT;
  if (owner === Owner.hugetlb) {
    // PageHuge(): every page of a hugetlb page, head and tails (and then not THP)
    lo |= 1 << KPF_HUGE;
  } else if (f & (PG.head | PG.tail)) {
    // PageTransCompound(): THP when the head is on the LRU or anonymous.
    const h = tail ? head : pfn;
    if (h >= 0 && ((pageFlags(map, h) & PG.lru) !== 0 || pageOwner(map, h) === Owner.anon)) lo |= 1 << KPF_THP;
  }
  if (type === PageType.buddy || owner === Owner.free) lo |= 1 << KPF_BUDDY;
  else if (type === PageType.offline) { if (offlineBit) lo |= 1 << KPF_OFFLINE; }
  else if (type === PageType.table) lo |= 1 << KPF_PGTABLE;
  if (type === PageType.slab || (tail && head >= 0 && pageTypeOf(map, head) === PageType.slab)) lo |= SLAB_BIT;
  if (f & PG.swapcache) hi |= 1 << (KPF_OWNER_PRIVATE - 32);
  if (f & PG.reserved) hi |= 1 << (KPF_RESERVED - 32);
  out.lo = lo >>> 0;
  out.hi = hi >>> 0;
}

/** The KPF word of one memmap page as a bigint (not for loops over many pages). */
export function pageKpf(g: Guest, pfn: number): bigint {
  const map = g.pgdat.map;
  if (pfn < 0 || pfn >= map.nrPages) return 1n << BigInt(KPF_NOPAGE);
  const w: KpfWord = { lo: 0, hi: 0 };
  stablePageFlags(map, pfn, pageFlags(map, pfn) & PG.tail ? compoundHead(map, pfn) : NO_PAGE, w);
  return (BigInt(w.hi) << 32n) | BigInt(w.lo);
}

/** The KPF word of one PHYSICAL pfn as a bigint: KPF_NOPAGE where there is no struct page. */
export function physPageKpf(g: Guest, phys: number): bigint {
  const pfn = memmapPfn(g.layout, phys);
  return pfn < 0 ? 1n << BigInt(KPF_NOPAGE) : pageKpf(g, pfn);
}

/**
 * Calls fn(phys, lo, hi) for every physical pfn 0..maxPhysPfn-1 in order: the walk
 * behind both /proc/kpageflags and page-types, so the two always agree.
 */
export function walkKpageflags(g: Guest, fn: (phys: number, lo: number, hi: number) => void): void {
  const map = g.pgdat.map;
  const layout = g.layout;
  const w: KpfWord = { lo: 0, hi: 0 };
  // Linux 3.x before 4.0 has no page flag for balloon pages (kernel_era.ts balloon.pageType)
  const offlineBit = g.pgdat.balloonPageType !== 'none';
  let head = NO_PAGE;
  for (let phys = 0; phys < layout.maxPhysPfn; phys++) {
    const pfn = memmapPfn(layout, phys);
    if (pfn < 0) {
      fn(phys, (1 << KPF_NOPAGE) >>> 0, 0);
      continue;
    }
    const f = pageFlags(map, pfn);
    if (f & PG.head) head = pfn;
    else if (!(f & PG.tail)) head = NO_PAGE;
    stablePageFlags(map, pfn, head, w, offlineBit);
    fn(phys, w.lo, w.hi);
  }
}

/**
 * @kernel fs/proc/page.c kpageflags_read
 * The whole of /proc/kpageflags: KPF_BYTES little-endian bytes per physical pfn.
 */
export function kpageflags(g: Guest): Uint8Array {
  const out = new Uint8Array(g.layout.maxPhysPfn * KPF_BYTES);
  const dv = new DataView(out.buffer);
  walkKpageflags(g, (phys, lo, hi) => {
    dv.setUint32(phys * KPF_BYTES, lo, true);
    dv.setUint32(phys * KPF_BYTES + 4, hi, true);
  });
  return out;
}
