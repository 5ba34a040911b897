/**
 * The smallest process model reclaim and compaction need: a process owns anonymous
 * pages (faulted in on demand, on the LRU, swap-backed), can unmap some of them, and
 * exits. Pages record their process in page->mapping (the model's 16-bit id), which
 * is all the reverse map compaction needs: migrating a page moves the id with it.
 *
 * Virtual addresses without page tables: each anonymous mapping (AnonVma) is faulted
 * in address order, and every page the process holds keeps its place in the mapping
 * (beside the page list, resolved through migrations, splits and collapses), so pages
 * can be picked in virtual address order as a real program would (unmapVirtualPages),
 * or in physical order (what fragments memory) or at random (unmapAnonPages). A
 * partial unmap of a THP splits its PMD mapping and queues the THP for the deferred
 * split, as the kernel does (huge_memory.ts has the split). Simplifications are in
 * docs/model-limits.md. Workloads (src/workloads) build on these calls.
 */
import { NO_PAGE, Owner, PG, PAGEBLOCK_ORDER, PageLRU, pageFlags, pageMapping, pageOrder, pageOwner, setPageFlags, setPageMapping } from './memmap.js';
import { type PgData, type DeferredThp, PageWrite } from './mmzone.js';
import type { ThpDefrag } from './sysctl.js';
import { allocPages, freePages } from './page_alloc.js';
import { GFP_HIGHUSER_MOVABLE, GFP_TRANSHUGE, GFP_TRANSHUGE_LIGHT, __GFP_NORETRY, __GFP_KSWAPD_RECLAIM, __GFP_DIRECT_RECLAIM, __GFP_COMP, __GFP_ZERO } from './gfp.js';
import { lruCacheAdd, delPageFromLruList } from './lru.js';
import { VmEvent, NodeStat } from './vmstat_items.js';
import type { AnonVma, Process, ProcessTable, ThpAdvice } from './mm_types.js';
import { type Rng, type Splitmix64, rngBelow, splitmix64Mod } from '../../sim/rng.js';

export type { AnonVma, Process, ProcessTable, ThpAdvice } from './mm_types.js';

/** HPAGE_PMD_NR: base pages in a PMD-mapped THP. */
const HPAGE_PMD_NR = 1 << PAGEBLOCK_ORDER;

/** Highest process id (page->mapping is 16 bits; 0 means "no process"). */
export const PID_MAX = 0xffff;

/** Virtual places per mapping: a place is `vma.index * VMA_SPAN + offset` (offset in base pages). */
export const VMA_SPAN = 2 ** 32;

export function getProcess(procs: ProcessTable, pid: number): Process {
  if (!Number.isInteger(pid) || pid < 1 || pid > PID_MAX) throw new RangeError(`pid must be from 1 to ${PID_MAX}`);
  let p = procs.get(pid);
  if (!p) {
    p = { pid, madvised: false, rssAnon: 0, filePages: 0, swapPages: 0, pages: [], placeRuns: [], moved: [], nextPlace: -1, vmas: [], heap: null };
    procs.set(pid, p);
  }
  return p;
}

/**
 * @kernel mm/mmap.c do_mmap (MAP_PRIVATE | MAP_ANONYMOUS), mm/madvise.c madvise_behavior
 * A new anonymous mapping of the process, with its THP advice; pages are faulted into
 * it by faultAnonPages.
 */
export function createAnonVma(proc: Process, advice: ThpAdvice): AnonVma {
  const vma: AnonVma = { index: proc.vmas.length, advice, faulted: 0 };
  proc.vmas.push(vma);
  return vma;
}

/** The mapping faults without one of their own go to: the process's heap, made on first use. */
function processHeap(proc: Process): AnonVma {
  if (proc.heap === null) {
    proc.heap = { index: proc.vmas.length, advice: null, faulted: 0 };
    proc.vmas.push(proc.heap);
  }
  return proc.heap;
}

/** The place of a page that takes over the place of `src` (plus `sub` for subpage sub of a split THP). */
export function placeOf(src: number, sub = 0): number {
  return -(1 + src * HPAGE_PMD_NR + sub);
}

/**
 * @kernel mm/huge_memory.c vma_thp_gfp_mask
 * The GFP mask of a huge page fault under the defrag setting: whether it may reclaim
 * and compact directly, only wake kswapd, or neither.
 */
export function vmaThpGfpMask(defrag: ThpDefrag, madvised: boolean): number {
  switch (defrag) {
    case 'always': return GFP_TRANSHUGE | (madvised ? 0 : __GFP_NORETRY);
    case 'defer': return GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM;
    case 'defer+madvise': return GFP_TRANSHUGE_LIGHT | (madvised ? __GFP_DIRECT_RECLAIM : __GFP_KSWAPD_RECLAIM);
    case 'madvise': return GFP_TRANSHUGE_LIGHT | (madvised ? __GFP_DIRECT_RECLAIM : 0);
    case 'never': return GFP_TRANSHUGE_LIGHT;
  }
}

/** hugepage_vma_check() for the process's heap: may the memory it faults without a mapping of its own get huge pages? */
export function thpAllowed(pgdat: PgData, proc: Process): boolean {
  return pgdat.sysctl.thp.enabled === 'always' || (pgdat.sysctl.thp.enabled === 'madvise' && proc.madvised);
}

/** Whether a mapping is VM_HUGEPAGE (the heap: the process's `madvised`). */
export function vmaMadvised(proc: Process, vma: AnonVma): boolean {
  return vma.advice === null ? proc.madvised : vma.advice === 'hugepage';
}

/**
 * @kernel mm/huge_memory.c hugepage_vma_check
 * May this mapping get huge pages: never with VM_NOHUGEPAGE or enabled=never, always
 * with enabled=always, only VM_HUGEPAGE mappings with enabled=madvise.
 */
export function vmaThpAllowed(pgdat: PgData, proc: Process, vma: AnonVma): boolean {
  if (vma.advice === null) return thpAllowed(pgdat, proc);
  if (vma.advice === 'nohugepage') return false;
  const enabled = pgdat.sysctl.thp.enabled;
  return enabled === 'always' || (enabled === 'madvise' && vma.advice === 'hugepage');
}

/** Which of the process's mappings may get huge pages: all, none, or some (khugepaged then looks page by page). */
export function processThpEligibility(pgdat: PgData, proc: Process): 'all' | 'none' | 'some' {
  if (proc.vmas.length === 0) return thpAllowed(pgdat, proc) ? 'all' : 'none';
  let yes = 0;
  for (const v of proc.vmas) if (vmaThpAllowed(pgdat, proc, v)) yes++;
  return yes === proc.vmas.length ? 'all' : yes === 0 ? 'none' : 'some';
}

/** Sets up a freshly allocated anonymous page (or THP head) at `place` and puts it on the LRU. */
function mapAnonPage(pgdat: PgData, proc: Process, pfn: number, order: number, place: number): void {
  const map = pgdat.map;
  setPageFlags(map, pfn, pageFlags(map, pfn) | PG.swapbacked | PG.uptodate | PG.dirty);
  for (let p = pfn; p < pfn + (1 << order); p++) setPageMapping(map, p, proc.pid);
  lruCacheAdd(pgdat, pfn);
  // the process writes its new memory (the fault happens because it touches it)
  if (pgdat.hooks.pageWrite !== null) pgdat.hooks.pageWrite(pfn, 1 << order, PageWrite.data);
  notePage(proc, pfn, place, order);
  proc.rssAnon += 1 << order; // per page: reclaim and the OOM killer may look at it mid-fault
}

/** The next place of a mapping, for a page of 2^order base pages faulted into it. */
function faultPlace(vma: AnonVma, order: number): number {
  const place = vma.index * VMA_SPAN + vma.faulted;
  vma.faulted += 1 << order;
  return place;
}

/**
 * Maps a freshly allocated order-9 compound page as the process's anonymous THP at
 * `place` (a fault's, or the place a collapse takes over: placeOf(first small page)).
 */
export function mapAnonHugePage(pgdat: PgData, proc: Process, pfn: number, place: number): void {
  mapAnonPage(pgdat, proc, pfn, PAGEBLOCK_ORDER, place);
  pgdat.nodeStat[NodeStat.nr_anon_transparent_hugepages] = pgdat.nodeStat[NodeStat.nr_anon_transparent_hugepages]! + HPAGE_PMD_NR;
}

/**
 * @kernel mm/memory.c do_anonymous_page, mm/huge_memory.c do_huge_pmd_anonymous_page
 * Faults in `pages` anonymous pages of a mapping (the process's heap when none is
 * given), in address order. Where the mapping may have THP, each full 2 MiB chunk
 * first tries an order-9 page with the defrag setting's GFP mask (thp_fault_alloc) and
 * falls back to small pages (thp_fault_fallback). Small pages are
 * GFP_HIGHUSER_MOVABLE. All go on the inactive anon LRU. Stops at the first failed
 * small allocation (or when the OOM killer took the process); returns the number of
 * base pages faulted.
 */
export function faultAnonPages(pgdat: PgData, proc: Process, pages: number, vma: AnonVma = processHeap(proc)): number {
  const thp = vmaThpAllowed(pgdat, proc, vma);
  const thpGfp = vmaThpGfpMask(pgdat.sysctl.thp.defrag, vmaMadvised(proc, vma)) | __GFP_COMP | __GFP_ZERO;
  const ev = pgdat.events;
  let n = 0;
  while (n < pages) {
    if (!pgdat.tasks.procs.has(proc.pid)) break;
    if (thp && pages - n >= HPAGE_PMD_NR) {
      const pfn = allocPages(pgdat, thpGfp, PAGEBLOCK_ORDER, Owner.anon);
      if (pfn !== NO_PAGE && !pgdat.tasks.procs.has(proc.pid)) { freePages(pgdat, pfn, PAGEBLOCK_ORDER); break; }
      if (pfn !== NO_PAGE) {
        mapAnonHugePage(pgdat, proc, pfn, faultPlace(vma, PAGEBLOCK_ORDER));
        ev[VmEvent.thp_fault_alloc] = ev[VmEvent.thp_fault_alloc]! + 1;
        ev[VmEvent.pgfault] = ev[VmEvent.pgfault]! + 1;
        n += HPAGE_PMD_NR;
        continue;
      }
      ev[VmEvent.thp_fault_fallback] = ev[VmEvent.thp_fault_fallback]! + 1;
      const got = faultSmallPages(pgdat, proc, HPAGE_PMD_NR, vma);
      n += got;
      if (got < HPAGE_PMD_NR) break;
      continue;
    }
    const got = faultSmallPages(pgdat, proc, pages - n, vma);
    n += got;
    break;
  }
  return n;
}

function faultSmallPages(pgdat: PgData, proc: Process, pages: number, vma: AnonVma): number {
  let n = 0;
  for (; n < pages; n++) {
    // A process the OOM killer chose stops faulting (it is exiting).
    if (!pgdat.tasks.procs.has(proc.pid)) break;
    const pfn = allocPages(pgdat, GFP_HIGHUSER_MOVABLE | __GFP_ZERO, 0, Owner.anon);
    if (pfn === NO_PAGE) break;
    if (!pgdat.tasks.procs.has(proc.pid)) {
      // The allocation's own OOM kill chose this process: the page it got goes back
      // (the fault ends with the task's fatal signal; nothing is mapped).
      freePages(pgdat, pfn, 0);
      break;
    }
    mapAnonPage(pgdat, proc, pfn, 0, faultPlace(vma, 0));
  }
  pgdat.events[VmEvent.pgfault] = pgdat.events[VmEvent.pgfault]! + n;
  return n;
}

/**
 * Reads (or, with dirty, writes) `pages` pages of the process's file into the page
 * cache: GFP_HIGHUSER_MOVABLE page-cache pages on the inactive file LRU, tagged with
 * the process id as their file. With `filePages` the pages fill the process's last file
 * up to that many pages, then new files of that size; without, they extend its one
 * file. The files' slab objects (dentries, inodes, xarray nodes, a buffer_head per
 * written page) come with them through pgdat.hooks.pageCacheAdd (dcache.ts). Returns
 * the pages cached.
 */
export function readFilePages(pgdat: PgData, proc: Process, pages: number, dirty: boolean, filePages?: number): number {
  const map = pgdat.map;
  let n = 0;
  for (; n < pages; n++) {
    const pfn = allocPages(pgdat, GFP_HIGHUSER_MOVABLE, 0, Owner.file);
    if (pfn === NO_PAGE) break;
    // the read (or the write) fills the page
    if (pgdat.hooks.pageWrite !== null) pgdat.hooks.pageWrite(pfn, 1, PageWrite.data);
    setPageFlags(map, pfn, PG.uptodate | (dirty ? PG.dirty : 0));
    setPageMapping(map, pfn, proc.pid);
    lruCacheAdd(pgdat, pfn);
    proc.filePages++;
  }
  if (dirty) pgdat.nodeStat[NodeStat.nr_dirtied] = pgdat.nodeStat[NodeStat.nr_dirtied]! + n;
  else pgdat.events[VmEvent.pgpgin] = pgdat.events[VmEvent.pgpgin]! + 8 * n;
  // slab hook: the files' dentries and inodes, their xarray nodes, buffer_heads of written pages
  if (n > 0 && pgdat.hooks.pageCacheAdd !== null) pgdat.hooks.pageCacheAdd(pgdat, proc.pid, n, dirty, filePages);
  return n;
}

/**
 * Unmaps and frees one anonymous page of a process (zap_pte_range for one pte, or
 * zap_huge_pmd for a whole THP; for a THP on the deferred split queue, the subpages
 * still mapped); returns the base pages unmapped (what the process's rss loses).
 */
function zapAnonPage(pgdat: PgData, proc: Process, pfn: number): number {
  const map = pgdat.map;
  const order = (pageFlags(map, pfn) & PG.head) !== 0 ? pageOrder(map, pfn) : 0;
  let mapped = 1 << order;
  delPageFromLruList(pgdat, pfn);
  if (order) {
    const q = pgdat.deferredSplitQueue.thps;
    const d = q.get(pfn);
    if (d === undefined) {
      pgdat.nodeStat[NodeStat.nr_anon_transparent_hugepages] = pgdat.nodeStat[NodeStat.nr_anon_transparent_hugepages]! - (1 << order);
    } else {
      // already split from its PMD and partly unmapped: those subpages left AnonPages then
      mapped -= d.nr;
      pgdat.nodeStat[NodeStat.nr_anon_pages] = pgdat.nodeStat[NodeStat.nr_anon_pages]! + d.nr;
      q.delete(pfn);
    }
  }
  freePages(pgdat, pfn, order);
  proc.rssAnon -= mapped;
  return mapped;
}

/**
 * @kernel mm/memory.c zap_pte_range (one pte of a PTE-mapped THP), mm/huge_memory.c __split_huge_pmd, deferred_split_huge_page
 * Unmaps one 4 KiB subpage of a THP. The first partial unmap splits the PMD mapping
 * (thp_split_pmd; the THP leaves AnonHugePages) and queues the THP for the deferred
 * split (thp_deferred_split_page); the subpage leaves the process's rss and AnonPages
 * but stays allocated with the rest of the THP until the deferred split shrinker splits
 * it (splitHugePage), or until its last mapped subpage goes, when the whole THP is freed.
 * Returns the base pages unmapped (1).
 */
export function zapThpSubpage(pgdat: PgData, proc: Process, head: number, sub: number): number {
  const q = pgdat.deferredSplitQueue.thps;
  const n = 1 << pageOrder(pgdat.map, head);
  let d: DeferredThp | undefined = q.get(head);
  if (d === undefined) {
    pgdat.events[VmEvent.thp_split_pmd] = pgdat.events[VmEvent.thp_split_pmd]! + 1;
    pgdat.nodeStat[NodeStat.nr_anon_transparent_hugepages] = pgdat.nodeStat[NodeStat.nr_anon_transparent_hugepages]! - n;
    d = { unmapped: new Uint8Array(n), nr: 0 };
    q.set(head, d);
    pgdat.events[VmEvent.thp_deferred_split_page] = pgdat.events[VmEvent.thp_deferred_split_page]! + 1;
  }
  if (d.unmapped[sub]) return 0;
  d.unmapped[sub] = 1;
  d.nr++;
  proc.rssAnon--;
  pgdat.nodeStat[NodeStat.nr_anon_pages] = pgdat.nodeStat[NodeStat.nr_anon_pages]! - 1;
  if (d.nr === n) {
    // the last mapping went: the THP is freed whole (and leaves the queue)
    q.delete(head);
    pgdat.nodeStat[NodeStat.nr_anon_pages] = pgdat.nodeStat[NodeStat.nr_anon_pages]! + n;
    delPageFromLruList(pgdat, head);
    freePages(pgdat, head, pageOrder(pgdat.map, head));
  }
  return 1;
}

/**
 * Records that pfn now holds one of the process's anonymous pages (a fault, a collapse,
 * a migration's target, a split's subpage) at `place`: a fault's virtual place (a page
 * of 2^order base pages), or placeOf() the page whose place it takes. Entries go stale
 * as pages are freed or moved; when stale ones outnumber the live ones many times over,
 * the list is pruned (live entries keep their order), so it stays proportional to the
 * process.
 */
export function notePage(proc: Process, pfn: number, place: number, order = 0): void {
  const i = proc.pages.length;
  proc.pages.push(pfn);
  if (place < 0) {
    proc.moved.push(i, place);
  } else {
    // a fault right after the last one of its run (same mapping, same order) extends it
    const runs = proc.placeRuns;
    if (place !== proc.nextPlace || runs[runs.length - 1] !== order) runs.push(i, place, order);
    proc.nextPlace = place + (1 << order);
  }
  if (i + 1 > 4 * proc.rssAnon + 4096) proc.prune = true;
}

/**
 * The virtual place of every pfn the page list names (the latest entry for each),
 * replaying the list in order: a fault's place comes from its run, a page that took
 * another's place gets that page's place (plus the subpage's offset).
 */
export function resolvePlaces(proc: Process): Map<number, number> {
  const m = new Map<number, number>();
  const pages = proc.pages, runs = proc.placeRuns, moved = proc.moved;
  let r = 0, mv = 0, at = 0, step = 1;
  for (let i = 0; i < pages.length; i++) {
    if (mv < moved.length && moved[mv] === i) {
      const k = -moved[mv + 1]! - 1;
      mv += 2;
      const src = Math.floor(k / HPAGE_PMD_NR);
      const from = m.get(src);
      if (from !== undefined) m.set(pages[i]!, from + (k - src * HPAGE_PMD_NR));
      continue;
    }
    if (r < runs.length && runs[r] === i) {
      at = runs[r + 1]!;
      step = 1 << runs[r + 2]!;
      r += 3;
    }
    m.set(pages[i]!, at);
    at += step;
  }
  return m;
}

/** Drops the stale entries of a process's page list (and duplicates), keeping the order of the rest and their places. */
function prunePages(pgdat: PgData, proc: Process): void {
  const map = pgdat.map;
  const at = resolvePlaces(proc);
  const seen = new Set<number>();
  const old = proc.pages;
  proc.pages = [];
  proc.placeRuns = [];
  proc.moved = [];
  proc.nextPlace = -1;
  for (const pfn of old) {
    if (seen.has(pfn) || pageOwner(map, pfn) !== Owner.anon || pageMapping(map, pfn) !== proc.pid || (pageFlags(map, pfn) & PG.tail) !== 0) continue;
    seen.add(pfn);
    const order = (pageFlags(map, pfn) & PG.head) !== 0 ? pageOrder(map, pfn) : 0;
    notePage(proc, pfn, at.get(pfn) ?? 0, order);
  }
  proc.prune = false;
}

/**
 * The process's anonymous pages in physical order: base pages and THP heads (a THP
 * is listed once), isolated ones included. From the process's own page list: work
 * proportional to the process, not to the guest.
 */
export function processPages(pgdat: PgData, proc: Process): Int32Array {
  if (proc.prune) prunePages(pgdat, proc);
  const map = pgdat.map, pid = proc.pid;
  const out = new Int32Array(proc.pages.length);
  let n = 0;
  for (const pfn of proc.pages) {
    if (pageOwner(map, pfn) === Owner.anon && pageMapping(map, pfn) === pid && (pageFlags(map, pfn) & PG.tail) === 0) out[n++] = pfn;
  }
  const sorted = out.subarray(0, n).sort();
  // the same page noted twice (freed, then faulted again at the same PFN) is listed once
  let k = 0;
  for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) sorted[k++] = sorted[i]!;
  return sorted.slice(0, k);
}

/** Base pages of a process's anonymous memory as listed by processPages (the subpages a partial unmap took excepted). */
export function processRss(pgdat: PgData, proc: Process): number {
  let n = 0;
  for (const pfn of processPages(pgdat, proc)) n += (pageFlags(pgdat.map, pfn) & PG.head) !== 0 ? (1 << pageOrder(pgdat.map, pfn)) - (pgdat.deferredSplitQueue.thps.get(pfn)?.nr ?? 0) : 1;
  return n;
}

export type UnmapPick = 'alternate' | 'random' | 'lowest' | 'highest';

/**
 * munmap of a share of a process's anonymous memory, picked in physical order.
 * `alternate` frees every other page in physical order: the classic way to leave
 * memory free but fragmented. A THP is one entry and is unmapped whole. Isolated pages
 * (mid-migration) are skipped. Returns the base pages unmapped and the entries the
 * share was taken of.
 */
export function unmapAnonPages(pgdat: PgData, rng: Rng, proc: Process, fraction: number, pick: UnmapPick): { freed: number; candidates: number } {
  const pages = processPages(pgdat, proc);
  const n = pages.length;
  const want = Math.round(n * fraction);
  // `freed` counts the entries unmapped (a THP is one, as the fraction is of entries);
  // the result counts base pages.
  let freed = 0, basePages = 0;
  const free = (pfn: number) => {
    if (!PageLRU(pgdat.map, pfn)) return;
    basePages += zapAnonPage(pgdat, proc, pfn);
    freed++;
  };
  if (pick === 'alternate') {
    for (let i = 0; i < n && freed < want; i += 2) free(pages[i]!);
  } else if (pick === 'lowest') {
    for (let i = 0; i < want; i++) free(pages[i]!);
  } else if (pick === 'highest') {
    for (let i = n - 1; i >= n - want; i--) free(pages[i]!);
  } else {
    for (let i = 0; i < want; i++) {
      const j = i + rngBelow(rng, n - i);
      const t = pages[i]!; pages[i] = pages[j]!; pages[j] = t;
      free(pages[i]!);
    }
  }
  return { freed: basePages, candidates: n };
}

/**
 * The base pages a process holds, in ascending virtual address order, as physical page
 * numbers (a THP's subpages are consecutive candidates; subpages a partial unmap took
 * are not candidates). Mappings are ordered as x86-64's top-down mmap
 * (arch_get_unmapped_area_topdown) places them: each new mapping below the ones before,
 * so the newest comes first; the heap (brk) lies below them all. Within a mapping,
 * pages are in the order they were faulted, which is address order.
 */
export function virtualCandidates(pgdat: PgData, proc: Process): Int32Array {
  if (proc.prune) prunePages(pgdat, proc);
  const map = pgdat.map, pid = proc.pid;
  const q = pgdat.deferredSplitQueue.thps;
  const heads: number[] = [], keys: number[] = [];
  let total = 0;
  for (const [pfn, place] of resolvePlaces(proc)) {
    if (pageOwner(map, pfn) !== Owner.anon || pageMapping(map, pfn) !== pid || (pageFlags(map, pfn) & PG.tail) !== 0) continue;
    const vi = Math.floor(place / VMA_SPAN);
    const vma = proc.vmas[vi];
    const rank = vma === undefined || vma.advice === null ? 0 : proc.vmas.length - vi;
    heads.push(pfn);
    keys.push(rank * VMA_SPAN + (place - vi * VMA_SPAN));
    total += (pageFlags(map, pfn) & PG.head) !== 0 ? 1 << pageOrder(map, pfn) : 1;
  }
  const idx = Int32Array.from(heads, (_, i) => i).sort((a, b) => keys[a]! - keys[b]! || heads[a]! - heads[b]!);
  const out = new Int32Array(total);
  let n = 0;
  for (const i of idx) {
    const pfn = heads[i]!;
    if ((pageFlags(map, pfn) & PG.head) === 0) { out[n++] = pfn; continue; }
    const d = q.get(pfn);
    for (let sub = 0, e = 1 << pageOrder(map, pfn); sub < e; sub++) if (d === undefined || !d.unmapped[sub]) out[n++] = pfn + sub;
  }
  return out.slice(0, n);
}

/**
 * K = round-half-up(N * fraction) exactly, as bl-mem computes it: the fraction as an
 * integer number of billionths F (at most nine decimals), K = floor((N * F + 5e8) / 1e9).
 */
export function shareOf(n: number, fraction: number): number {
  const f = BigInt(Math.round(fraction * 1e9));
  return Number((BigInt(n) * f + 500_000_000n) / 1_000_000_000n);
}

/** How unmapVirtualPages picks: bl-mem's patterns (random draws from a splitmix64 stream). */
export type VirtualPick = { pick: 'alternate' } | { pick: 'lowest' } | { pick: 'highest' } | { pick: 'random'; gen: Splitmix64 };

/**
 * madvise(MADV_DONTNEED) of single 4 KiB pages a program picks by virtual index, as
 * bl-mem's `free` does: the candidates are the base pages the process holds in
 * ascending virtual address order (virtualCandidates), N of them; K = shareOf(N,
 * fraction); alternate takes candidates 0, 2, 4 ... (until K), lowest 0 .. K-1,
 * highest N-1 down to N-K, random the first K of a Fisher-Yates shuffle whose j = i +
 * splitmix64() % (N - i). A base page is freed at once; a THP's subpage is unmapped
 * from it (zapThpSubpage). Returns the base pages unmapped and N.
 */
export function unmapVirtualPages(pgdat: PgData, proc: Process, fraction: number, how: VirtualPick): { freed: number; candidates: number } {
  const cand = virtualCandidates(pgdat, proc);
  const n = cand.length;
  const k = shareOf(n, fraction);
  const map = pgdat.map;
  let freed = 0;
  const release = (pfn: number) => {
    const f = pageFlags(map, pfn);
    if ((f & (PG.head | PG.tail)) === 0) {
      if (!PageLRU(map, pfn)) return;
      freed += zapAnonPage(pgdat, proc, pfn);
      return;
    }
    // a THP's subpage: its head is the THP's first pfn (THPs are naturally aligned)
    const head = pfn & ~(HPAGE_PMD_NR - 1);
    if (!PageLRU(map, head)) return;
    freed += zapThpSubpage(pgdat, proc, head, pfn - head);
  };
  if (how.pick === 'alternate') {
    for (let i = 0, done = 0; i < n && done < k; i += 2, done++) release(cand[i]!);
  } else if (how.pick === 'lowest') {
    for (let i = 0; i < k; i++) release(cand[i]!);
  } else if (how.pick === 'highest') {
    for (let i = 0; i < k; i++) release(cand[n - 1 - i]!);
  } else {
    for (let i = 0; i < k; i++) {
      const j = i + splitmix64Mod(how.gen, n - i);
      const t = cand[i]!; cand[i] = cand[j]!; cand[j] = t;
      release(cand[i]!);
    }
  }
  return { freed, candidates: n };
}

/** Whether pfn is (still) a mapped anonymous base page or THP head of the process. */
export function isProcessPage(pgdat: PgData, pid: number, pfn: number): boolean {
  const map = pgdat.map;
  return pageOwner(map, pfn) === Owner.anon && pageMapping(map, pfn) === pid && (pageFlags(map, pfn) & (PG.tail | PG.lru)) === PG.lru;
}

/**
 * @kernel kernel/exit.c do_exit (exit_mmap)
 * Frees all of a process's anonymous memory; returns the base pages freed (a THP counts 512).
 */
export function exitProcess(pgdat: PgData, procs: ProcessTable, proc: Process): number {
  let freed = 0;
  // in the order the pages were faulted (exit_mmap walks the address space in order)
  for (const pfn of proc.pages) {
    if (!isProcessPage(pgdat, proc.pid, pfn)) continue;
    freed += zapAnonPage(pgdat, proc, pfn);
  }
  if (proc.rssAnon > 0) {
    // pages not on the LRU when their entry was reached (none in a single-threaded model, but cheap to be sure)
    for (const pfn of processPages(pgdat, proc)) {
      if (!PageLRU(pgdat.map, pfn)) continue;
      freed += zapAnonPage(pgdat, proc, pfn);
    }
  }
  pgdat.swap.usedPages -= proc.swapPages;
  proc.swapPages = 0;
  procs.delete(proc.pid);
  return freed;
}
