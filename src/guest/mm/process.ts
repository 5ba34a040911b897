/**
 * Processes and their address spaces (mm/mmap.c, mm/memory.c, mm/madvise.c): a
 * process owns VMAs with virtual addresses (anonymous mmaps placed top-down below
 * mmap_base, the brk heap growing up from start_brk), page tables that are real
 * allocations, and the anonymous pages its faults put in them.
 *
 * Page tables (mm_types.ts Pmd): per 2 MiB of virtual space either a PTE table (a
 * typed array of 512 entries) or a huge PMD mapping a THP, and one unmovable
 * page-table page for it (GFP_PGTABLE_USER; a huge PMD keeps its table deposited, as
 * pgtable_trans_huge_deposit does); a PMD-table page per 1 GiB, a PUD-table page per
 * 512 GiB and the PGD above them. A page records its place in page->index (its virtual
 * page number) and its process in page->mapping, which is the reverse map migration
 * and reclaim use to find its pte.
 *
 * A fault by address takes a THP only where the kernel's would: THP allowed for the
 * VMA (enabled, VM_HUGEPAGE/VM_NOHUGEPAGE), the whole 2 MiB-aligned range inside the
 * VMA, and no PTE table there yet (pmd_none). Otherwise it allocates the PTE table and a
 * 4 KiB page. Unmapping part of a THP splits its PMD (the deposited table becomes the
 * PTE table) and queues the THP for the deferred split (huge_memory.ts). munmap frees
 * the page tables no mapping covers any more (free_pgtables); MADV_DONTNEED leaves
 * them. Simplifications are in docs/model-limits.md.
 */
import { NO_PAGE, Owner, PG, PageType, PAGEBLOCK_ORDER, PageLRU, pageFlags, pageIndex, pageMapping, pageOrder, pageOwner, setPageFlags, setPageIndex, setPageMapping, setPageType } from './memmap.js';
import { type PgData, type DeferredThp, PageWrite, totalramPages } from './mmzone.js';
import type { ThpDefrag } from './sysctl.js';
import { allocPages, freePages } from './page_alloc.js';
import { GFP_HIGHUSER_MOVABLE, GFP_KERNEL, GFP_TRANSHUGE, GFP_TRANSHUGE_LIGHT, __GFP_NORETRY, __GFP_KSWAPD_RECLAIM, __GFP_DIRECT_RECLAIM, __GFP_COMP, __GFP_ZERO, __GFP_ACCOUNT } from './gfp.js';
import { lruCacheAdd, delPageFromLruList } from './lru.js';
import { slabVmaAlloc, slabVmaFree, slabTaskAlloc, slabTaskFree } from './slab.js';
import { accountPageDirtied, balanceDirtyPages } from './page_writeback.js';
import { VmEvent, NodeStat } from './vmstat_items.js';
import { type Mm, type Pmd, type Process, type ProcessTable, type ThpAdvice, type Vma, PTE_NONE, PTE_SWAP } from './mm_types.js';
import { type Rng, type Splitmix64, createSplitmix64, rngBelow, splitmix64Mod } from '../../sim/rng.js';

export type { Process, ProcessTable, ThpAdvice, Vma, Pmd, Mm } from './mm_types.js';
export { PTE_NONE, PTE_SWAP } from './mm_types.js';

/** HPAGE_PMD_NR: base pages in a PMD-mapped THP (and ptes in a PTE table). */
export const HPAGE_PMD_NR = 1 << PAGEBLOCK_ORDER;
/** Virtual pages a PMD table covers (1 GiB) and a PUD table (512 GiB), as shifts of the vpn. */
const PMD_TABLE_SHIFT = 18;
const PUD_TABLE_SHIFT = 27;

/** Highest process id (page->mapping is 16 bits; 0 means "no process"). */
export const PID_MAX = 0xffff;

/**
 * The model's address space: virtual page numbers 0 .. 2^32 - 1 (16 TiB, what
 * page->index holds). The heap starts at 1 GiB plus brk randomization (up to 32 MiB,
 * arch_randomize_brk); top-down mmap starts 4 GiB below the top (the stack gap) less
 * mmap randomization (up to 2^24 pages here, page-granular as mmap_rnd_bits makes it),
 * so a mapping's alignment to 2 MiB is as much a matter of chance as in a real process.
 */
const VPN_LIMIT = 2 ** 32;
const BRK_BASE = 1 << PMD_TABLE_SHIFT;
const BRK_RND_PAGES = 8192;
const MMAP_TOP = VPN_LIMIT - (1 << 20);
const MMAP_RND_PAGES = 1 << 24;

/** GFP_PGTABLE_USER: page-table pages of a process (zeroed, unmovable, memcg-accounted). */
export const GFP_PGTABLE_USER = GFP_KERNEL | __GFP_ZERO | __GFP_ACCOUNT;

function newMm(pid: number, aslrSeed: number): Mm {
  // the layout's randomization: a function of the guest's ASLR seed and the pid
  const g = createSplitmix64((BigInt(aslrSeed) << 16n) + BigInt(pid));
  const brkRnd = splitmix64Mod(g, BRK_RND_PAGES);
  const mmapRnd = splitmix64Mod(g, MMAP_RND_PAGES);
  return { vmas: [], pmds: new Map(), pmdTables: new Map(), pudTables: new Map(), pgd: NO_PAGE, nrPgtables: 0, slabVmas: 0, mmapBase: MMAP_TOP - mmapRnd, startBrk: BRK_BASE + brkRnd, brk: BRK_BASE + brkRnd };
}

/** The process `pid`, created (with an empty address space) on first use. */
export function getProcess(procs: ProcessTable, pid: number, aslrSeed = 0): Process {
  if (!Number.isInteger(pid) || pid < 1 || pid > PID_MAX) throw new RangeError(`pid must be from 1 to ${PID_MAX}`);
  let p = procs.get(pid);
  if (!p) {
    p = { pid, madvised: false, rssAnon: 0, filePages: 0, swapPages: 0, mm: newMm(pid, aslrSeed), heap: null, cpu: 0, forked: false };
    procs.set(pid, p);
  }
  return p;
}

/**
 * @kernel kernel/fork.c kernel_clone (copy_process)
 * The process `pid`, forked now if it does not exist: getProcess, with the slab objects
 * a new task takes (task_struct, mm_struct, signal_struct, sighand_struct, files_struct,
 * cred, pid). A fork that cannot have them all still makes the process (the model's
 * workloads do not handle -ENOMEM from fork), without the objects.
 */
export function forkProcess(pgdat: PgData, pid: number, aslrSeed = 0): Process {
  const procs = pgdat.tasks.procs;
  const had = procs.get(pid);
  if (had !== undefined) return had;
  const p = getProcess(procs, pid, aslrSeed);
  p.forked = slabTaskAlloc(pgdat);
  return p;
}

// ---------------------------------------------------------------------------------
// Page-table pages

/**
 * @kernel include/asm-generic/pgalloc.h pte_alloc_one (and pmd/pud_alloc_one, pgd_alloc)
 * A page-table page for the process: an unmovable zeroed order-0 page, PageTable,
 * recording its process in page->mapping. NO_PAGE when the allocation failed (the fault
 * then fails with VM_FAULT_OOM).
 */
function pgtableAlloc(pgdat: PgData, proc: Process): number {
  const pfn = allocPages(pgdat, GFP_PGTABLE_USER, 0, Owner.pageTable);
  if (pfn === NO_PAGE) return NO_PAGE;
  if (!pgdat.tasks.procs.has(proc.pid)) {
    // the allocation's OOM kill took this very process (its tables are gone): the page goes back
    freePages(pgdat, pfn, 0);
    return NO_PAGE;
  }
  setPageType(pgdat.map, pfn, PageType.table);
  setPageMapping(pgdat.map, pfn, proc.pid);
  proc.mm.nrPgtables++;
  return pfn;
}

/** @kernel include/asm-generic/pgalloc.h pte_free: the page-table page goes back (PageTable cleared). */
function pgtableFree(pgdat: PgData, proc: Process, pfn: number): void {
  setPageType(pgdat.map, pfn, PageType.none);
  setPageMapping(pgdat.map, pfn, 0);
  freePages(pgdat, pfn, 0);
  proc.mm.nrPgtables--;
}

/**
 * @kernel mm/memory.c __pud_alloc, __pmd_alloc (and pgd_alloc at the first mapping)
 * The upper levels above a PMD index: the PGD, the PUD table of its 512 GiB and the PMD
 * table of its 1 GiB, allocated as the walk needs them. False when one could not be.
 */
function upperTablesAlloc(pgdat: PgData, proc: Process, pmdIdx: number): boolean {
  const mm = proc.mm;
  if (mm.pgd === NO_PAGE) {
    const pgd = pgtableAlloc(pgdat, proc);
    if (pgd === NO_PAGE) return false;
    mm.pgd = pgd;
  }
  const vpn = pmdIdx * HPAGE_PMD_NR;
  const pudKey = Math.floor(vpn / 2 ** PUD_TABLE_SHIFT);
  if (!mm.pudTables.has(pudKey)) {
    const t = pgtableAlloc(pgdat, proc);
    if (t === NO_PAGE) return false;
    mm.pudTables.set(pudKey, t);
  }
  const pmdKey = Math.floor(vpn / 2 ** PMD_TABLE_SHIFT);
  if (!mm.pmdTables.has(pmdKey)) {
    const t = pgtableAlloc(pgdat, proc);
    if (t === NO_PAGE) return false;
    mm.pmdTables.set(pmdKey, t);
  }
  return true;
}

/** @kernel mm/memory.c __pte_alloc: a PTE table for the PMD index (and the levels above); null when an allocation failed. */
function pteAlloc(pgdat: PgData, proc: Process, pmdIdx: number): Pmd | null {
  const have = proc.mm.pmds.get(pmdIdx);
  if (have !== undefined) return have;
  if (!upperTablesAlloc(pgdat, proc, pmdIdx)) return null;
  const table = pgtableAlloc(pgdat, proc);
  if (table === NO_PAGE) return null;
  // the allocation may have reclaimed (or OOM-killed) meanwhile; a new entry is ours
  const pmd: Pmd = { pte: new Int32Array(HPAGE_PMD_NR).fill(PTE_NONE), huge: NO_PAGE, table, present: 0, swapped: 0 };
  proc.mm.pmds.set(pmdIdx, pmd);
  return pmd;
}

// ---------------------------------------------------------------------------------
// Mappings

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

/**
 * @kernel mm/huge_memory.c hugepage_vma_check
 * May this mapping get huge pages: never with VM_NOHUGEPAGE or enabled=never, always
 * with enabled=always, only VM_HUGEPAGE mappings with enabled=madvise.
 */
export function vmaThpAllowed(pgdat: PgData, vma: Vma): boolean {
  if (vma.advice === 'nohugepage') return false;
  const enabled = pgdat.sysctl.thp.enabled;
  return enabled === 'always' || (enabled === 'madvise' && vma.advice === 'hugepage');
}

/** Whether any of the process's mappings (or its heap-to-be) may get huge pages. */
export function processThpEligible(pgdat: PgData, proc: Process): boolean {
  if (proc.mm.vmas.length === 0) return pgdat.sysctl.thp.enabled === 'always' || (pgdat.sysctl.thp.enabled === 'madvise' && proc.madvised);
  for (const v of proc.mm.vmas) if (vmaThpAllowed(pgdat, v)) return true;
  return false;
}

/** The index of the first mapping ending after vpn (binary search), or vmas.length. */
function vmaIndexAfter(vmas: readonly Vma[], vpn: number): number {
  let lo = 0, hi = vmas.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (vmas[mid]!.end <= vpn) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/** @kernel mm/mmap.c find_vma_intersection: the mapping containing vpn, or null. */
export function findVma(mm: Mm, vpn: number): Vma | null {
  const v = mm.vmas[vmaIndexAfter(mm.vmas, vpn)];
  return v !== undefined && v.start <= vpn ? v : null;
}

/** Whether any mapping intersects [start, end). */
function rangeMapped(mm: Mm, start: number, end: number): boolean {
  const v = mm.vmas[vmaIndexAfter(mm.vmas, start)];
  return v !== undefined && v.start < end;
}

/**
 * @kernel mm/mmap.c arch_get_unmapped_area_topdown (vm_unmapped_area, VM_UNMAPPED_AREA_TOPDOWN)
 * The highest free range of `pages` pages below mmap_base (aligned down to `align`
 * pages when asked: what a program gets by over-mapping and trimming), or NO_PAGE.
 */
function getUnmappedAreaTopdown(mm: Mm, pages: number, align: number, gap: number): number {
  let top = mm.mmapBase;
  const vmas = mm.vmas;
  for (let i = vmas.length - 1; i >= -1; i--) {
    const v = vmas[i];
    if (v !== undefined && v.start >= top) continue;
    const floor = v === undefined ? mm.startBrk + (1 << PMD_TABLE_SHIFT) : v.end + gap;
    const start = Math.floor((top - gap - pages) / align) * align;
    if (start >= floor) return start;
    if (v === undefined) break;
    top = v.start;
  }
  return NO_PAGE;
}

/**
 * @kernel kernel/fork.c vm_area_alloc, vm_area_free; mm/rmap.c anon_vma_prepare, unlink_anon_vmas
 * The mappings' slab objects follow their number (a new mapping allocates, a merge or
 * munmap frees, a split allocates): a vm_area_struct, and — every mapping here being
 * anonymous — an anon_vma with its anon_vma_chain, allocated with GFP_KERNEL (which
 * may reclaim); what cannot be had is retried at the next change. The kernel takes the
 * anon_vma at the first fault and lets a split's halves share one (each with its own
 * chain); the model takes a pair per mapping when it is made.
 */
function syncVmaSlab(pgdat: PgData, proc: Process): void {
  const mm = proc.mm, want = mm.vmas.length;
  while (mm.slabVmas > want) { slabVmaFree(pgdat, true); mm.slabVmas--; }
  while (mm.slabVmas < want && pgdat.tasks.procs.has(proc.pid) && mm.vmas.length === want) {
    if (!slabVmaAlloc(pgdat, true)) break;
    mm.slabVmas++;
  }
}

/** Inserts a mapping in address order, merging it with a neighbour of the same kind and flags (vma_merge). */
function insertVma(mm: Mm, vma: Vma): Vma {
  const vmas = mm.vmas;
  const i = vmaIndexAfter(vmas, vma.start);
  const next = vmas[i], prev = vmas[i - 1];
  const same = (o: Vma | undefined): o is Vma => o !== undefined && o.kind === vma.kind && o.advice === vma.advice && vma.kind === 'anon' && (o.bookkeeping === true) === (vma.bookkeeping === true);
  if (same(next) && next.start === vma.end) {
    // the new mapping grows the one above it downwards (top-down mmap: the usual case)
    next.faulted = next.faulted + (next.start - vma.start);
    next.start = vma.start;
    if (same(prev) && prev.end === next.start) { prev.end = next.end; vmas.splice(i, 1); return prev; }
    return next;
  }
  if (same(prev) && prev.end === vma.start) { prev.end = vma.end; return prev; }
  vmas.splice(i, 0, vma);
  return vma;
}

/**
 * @kernel mm/util.c __vm_enough_memory (OVERCOMMIT_GUESS, vm.overcommit_memory = 0)
 * Whether a private writable mapping of `pages` may be made: the heuristic refuses one
 * larger than all of RAM and swap together.
 */
export function vmEnoughMemory(pgdat: PgData, pages: number): boolean {
  return pages <= totalramPages(pgdat) + pgdat.swap.totalPages;
}

/**
 * @kernel mm/mmap.c do_mmap (MAP_PRIVATE | MAP_ANONYMOUS), mm/madvise.c madvise_behavior
 * A new anonymous mapping of `pages` pages, placed top-down, with its THP advice;
 * `align` (pages) places it on such a boundary, as a program that over-maps and trims
 * does, and `guard` keeps a page free either side (bl-mem's PROT_NONE guard pages: the
 * mapping merges with no neighbour); `bookkeeping` marks it as the program's own
 * (Vma.bookkeeping). Returns the mapping, which starts at the returned
 * `start` even when it merged with a neighbour (sequential faulting begins there), or
 * null when the mapping is refused (ENOMEM: vmEnoughMemory, or no room in the address
 * space).
 */
export function mmapAnon(pgdat: PgData, proc: Process, pages: number, advice: ThpAdvice, opts: { align?: number; guard?: boolean; bookkeeping?: boolean } = {}): { vma: Vma; start: number } | null {
  if (!(pages >= 1) || !Number.isInteger(pages)) throw new RangeError(`a mapping needs a whole number of pages, got ${pages}`);
  if (!vmEnoughMemory(pgdat, pages)) return null;
  const mm = proc.mm;
  const start = getUnmappedAreaTopdown(mm, pages, opts.align ?? 1, opts.guard === true ? 1 : 0);
  if (start === NO_PAGE) return null;
  const vma = insertVma(mm, opts.bookkeeping === true ? { start, end: start + pages, kind: 'anon', advice, faulted: 0, bookkeeping: true } : { start, end: start + pages, kind: 'anon', advice, faulted: 0 });
  syncVmaSlab(pgdat, proc);
  return { vma, start };
}

/**
 * A new anonymous mapping at `start` (the place a traced program's kernel chose), or
 * null when something is mapped there already.
 */
export function mmapAt(pgdat: PgData, proc: Process, start: number, pages: number, advice: ThpAdvice): { vma: Vma; start: number } | null {
  if (start < 0 || start + pages > VPN_LIMIT || rangeMapped(proc.mm, start, start + pages)) return null;
  const vma = insertVma(proc.mm, { start, end: start + pages, kind: 'anon', advice, faulted: 0 });
  syncVmaSlab(pgdat, proc);
  return { vma, start };
}

/** The brk heap (the mapping that ends at the break), made (empty, at start_brk) on first use; VM_HUGEPAGE when the process is `madvised`. */
export function processHeap(proc: Process): Vma {
  const mm = proc.mm;
  if (proc.heap !== null && proc.heap.end === mm.brk && mm.vmas.includes(proc.heap)) return proc.heap;
  const top = mm.vmas.find((v) => v.kind === 'brk' && v.end === mm.brk);
  proc.heap = top ?? insertVma(mm, { start: mm.brk, end: mm.brk, kind: 'brk', advice: proc.madvised ? 'hugepage' : 'default', faulted: 0 });
  return proc.heap;
}

/** @kernel mm/mmap.c brk (growing): the break moves `pages` up, the heap's mapping with it. */
export function brkGrow(proc: Process, pages: number): Vma {
  const heap = processHeap(proc);
  const next = proc.mm.vmas[proc.mm.vmas.indexOf(heap) + 1];
  if (next !== undefined && heap.end + pages > next.start) throw new RangeError('the heap ran into a mapping');
  heap.end += pages;
  proc.mm.brk = heap.end;
  return heap;
}

/** @kernel mm/mmap.c brk (shrinking): the top `pages` of the heap are unmapped (do_brk_munmap), the break moves down. */
export function brkShrink(pgdat: PgData, proc: Process, pages: number): void {
  const heap = processHeap(proc);
  const n = Math.min(pages, heap.end - heap.start);
  if (n <= 0) return;
  const end = heap.end;
  // the heap mapping shrinks; the rest of the range goes as munmap would
  heap.end -= n;
  heap.faulted = Math.min(heap.faulted, heap.end - heap.start);
  proc.mm.brk = heap.end;
  unmapPageRange(pgdat, proc, end - n, end);
  freePgtables(pgdat, proc, end - n, end);
}

// ---------------------------------------------------------------------------------
// Faults

/** Sets up a freshly allocated anonymous page (or THP head) at vpn and puts it on the LRU. */
function mapAnonPage(pgdat: PgData, proc: Process, pfn: number, order: number, vpn: number): void {
  const map = pgdat.map;
  setPageFlags(map, pfn, pageFlags(map, pfn) | PG.swapbacked | PG.uptodate | PG.dirty);
  for (let p = pfn, i = 0; i < 1 << order; p++, i++) { setPageMapping(map, p, proc.pid); setPageIndex(map, p, vpn + i); }
  lruCacheAdd(pgdat, pfn);
  // the process writes its new memory (the fault happens because it touches it)
  if (pgdat.hooks.pageWrite !== null) pgdat.hooks.pageWrite(pfn, 1 << order, PageWrite.data);
  proc.rssAnon += 1 << order; // per page: reclaim and the OOM killer may look at it mid-fault
}

/**
 * Maps a freshly allocated order-9 compound page as the process's THP at the 2 MiB
 * range of pmd (a fault's, or a collapse's): the PMD becomes huge, its table deposited.
 */
export function mapAnonHugePage(pgdat: PgData, proc: Process, pmdIdx: number, pmd: Pmd, pfn: number): void {
  pmd.pte = null;
  pmd.huge = pfn;
  pmd.present = 0;
  pmd.swapped = 0;
  mapAnonPage(pgdat, proc, pfn, PAGEBLOCK_ORDER, pmdIdx * HPAGE_PMD_NR);
  pgdat.nodeStat[NodeStat.nr_anon_transparent_hugepages] = pgdat.nodeStat[NodeStat.nr_anon_transparent_hugepages]! + HPAGE_PMD_NR;
}

/** Whether a THP fault at the PMD index could be tried: THP allowed, the aligned range inside the mapping, nothing mapped there (pmd_none). */
function thpSuitable(pgdat: PgData, proc: Process, vma: Vma, pmdIdx: number): boolean {
  const haddr = pmdIdx * HPAGE_PMD_NR;
  return haddr >= vma.start && haddr + HPAGE_PMD_NR <= vma.end && !proc.mm.pmds.has(pmdIdx) && vmaThpAllowed(pgdat, vma);
}

/** The outcome of one fault: pages mapped (512 for a THP, 1 for a page, 0 when it was there), or a failure. */
const FAULT_OOM = -1;

/**
 * @kernel mm/memory.c __handle_mm_fault, do_anonymous_page, do_swap_page (counted only), mm/huge_memory.c do_huge_pmd_anonymous_page
 * A write fault at vpn inside vma. Where a THP is suitable it tries an order-9 page with
 * the defrag setting's GFP mask (thp_fault_alloc, the table deposited; thp_fault_fallback
 * when it fails), then the PTE table and a GFP_HIGHUSER_MOVABLE page. A pte holding a
 * swap entry is swapped in (pswpin, pgmajfault). Returns the pages newly mapped, or
 * FAULT_OOM when an allocation failed or the OOM killer took the process.
 */
function handleMmFault(pgdat: PgData, proc: Process, vma: Vma, vpn: number): number {
  const pmdIdx = Math.floor(vpn / HPAGE_PMD_NR);
  const ev = pgdat.events;
  const alive = () => pgdat.tasks.procs.has(proc.pid);
  if (thpSuitable(pgdat, proc, vma, pmdIdx)) {
    if (!upperTablesAlloc(pgdat, proc, pmdIdx) || !alive()) return FAULT_OOM;
    const gfp = vmaThpGfpMask(pgdat.sysctl.thp.defrag, vma.advice === 'hugepage') | __GFP_COMP | __GFP_ZERO;
    const pfn = allocPages(pgdat, gfp, PAGEBLOCK_ORDER, Owner.anon);
    if (pfn !== NO_PAGE && !alive()) { freePages(pgdat, pfn, PAGEBLOCK_ORDER); return FAULT_OOM; }
    if (pfn !== NO_PAGE && !proc.mm.pmds.has(pmdIdx)) {
      const table = pgtableAlloc(pgdat, proc);
      if (table === NO_PAGE || !alive()) {
        if (table !== NO_PAGE) pgtableFree(pgdat, proc, table);
        freePages(pgdat, pfn, PAGEBLOCK_ORDER);
        return FAULT_OOM;
      }
      const pmd: Pmd = { pte: null, huge: NO_PAGE, table, present: 0, swapped: 0 };
      proc.mm.pmds.set(pmdIdx, pmd);
      mapAnonHugePage(pgdat, proc, pmdIdx, pmd, pfn);
      ev[VmEvent.thp_fault_alloc] = ev[VmEvent.thp_fault_alloc]! + 1;
      ev[VmEvent.pgfault] = ev[VmEvent.pgfault]! + 1;
      return HPAGE_PMD_NR;
    }
    if (pfn !== NO_PAGE) freePages(pgdat, pfn, PAGEBLOCK_ORDER);
    else ev[VmEvent.thp_fault_fallback] = ev[VmEvent.thp_fault_fallback]! + 1;
  }
  const pmd = pteAlloc(pgdat, proc, pmdIdx);
  if (pmd === null || !alive()) return FAULT_OOM;
  if (pmd.pte === null) return 0; // a THP is mapped there
  const i = vpn - pmdIdx * HPAGE_PMD_NR;
  const e = pmd.pte[i]!;
  if (e >= 0) return 0;
  const pfn = allocPages(pgdat, GFP_HIGHUSER_MOVABLE | __GFP_ZERO, 0, Owner.anon);
  if (pfn === NO_PAGE) return FAULT_OOM;
  if (!alive() || pmd.pte === null || pmd.pte[i]! >= 0 || proc.mm.pmds.get(pmdIdx) !== pmd) {
    // the allocation's own OOM kill chose this process (or its range changed): the page goes back
    freePages(pgdat, pfn, 0);
    return FAULT_OOM;
  }
  if (pmd.pte[i] === PTE_SWAP) {
    pmd.swapped--;
    proc.swapPages--;
    pgdat.swap.usedPages--;
    ev[VmEvent.pswpin] = ev[VmEvent.pswpin]! + 1;
    ev[VmEvent.pgpgin] = ev[VmEvent.pgpgin]! + 8;
    ev[VmEvent.pgmajfault] = ev[VmEvent.pgmajfault]! + 1;
    // the faulting task waits for the read
    pgdat.tasks.ioWaitNs += pgdat.costs.swapInPage;
  }
  pmd.pte[i] = pfn;
  pmd.present++;
  mapAnonPage(pgdat, proc, pfn, 0, vpn);
  ev[VmEvent.pgfault] = ev[VmEvent.pgfault]! + 1;
  return 1;
}

/**
 * The vCPU time of `faults` anonymous faults that mapped `pages` base pages: each fault's
 * own work and allocation (pageFault, pageAllocFast), every page zeroed once (the fault's
 * clear_user_highpage / clear_huge_page, or the allocator's init_on_alloc instead).
 */
export function anonFaultNs(pgdat: PgData, faults: number, pages: number): number {
  const c = pgdat.costs;
  return faults * (c.pageFault + c.pageAllocFast) + pages * c.clearPage;
}

/** The vCPU time of unmapping and freeing `pages` base pages (pageFree each, zeroed again with init_on_free). */
export function unmapFreeNs(pgdat: PgData, pages: number): number {
  const c = pgdat.costs;
  return pages * (c.pageFree + (pgdat.boot.initOnFree ? c.clearPage : 0));
}

/**
 * A program touching [start, start + pages) of a mapping in address order: one fault per
 * page not yet mapped (a THP fault maps its whole 2 MiB range, which may reach outside
 * the touched span). Stops at the first failure (or when the OOM killer took the
 * process). Returns the base pages newly mapped.
 */
export function faultRange(pgdat: PgData, proc: Process, vma: Vma, start: number, pages: number): number {
  const end = Math.min(start + pages, vma.end);
  const pmds = proc.mm.pmds, tasks = pgdat.tasks;
  let n = 0, fast = 0;
  outer: for (let vpn = Math.max(start, vma.start); vpn < end;) {
    const pmdIdx = Math.floor(vpn / HPAGE_PMD_NR);
    const pmd = pmds.get(pmdIdx);
    if (pmd !== undefined && pmd.pte === null) { vpn = (pmdIdx + 1) * HPAGE_PMD_NR; continue; }
    if (pmd !== undefined) {
      // the PTE table is there: do_anonymous_page for each empty pte of this 2 MiB, the
      // checks after the allocation only when it went to the slow path
      const pte = pmd.pte!, base = pmdIdx * HPAGE_PMD_NR, stop = Math.min(end, base + HPAGE_PMD_NR);
      for (; vpn < stop; vpn++) {
        const e = pte[vpn - base]!;
        if (e >= 0) continue;
        if (e === PTE_SWAP) {
          const got = handleMmFault(pgdat, proc, vma, vpn);
          if (got === FAULT_OOM) break outer;
          n += got;
          continue;
        }
        const epoch = tasks.slowpathEpoch;
        const pfn = allocPages(pgdat, GFP_HIGHUSER_MOVABLE | __GFP_ZERO, 0, Owner.anon);
        if (pfn === NO_PAGE) break outer;
        if (tasks.slowpathEpoch !== epoch && (!tasks.procs.has(proc.pid) || pmds.get(pmdIdx) !== pmd || pmd.pte !== pte || pte[vpn - base]! >= 0)) {
          freePages(pgdat, pfn, 0);
          break outer;
        }
        pte[vpn - base] = pfn;
        pmd.present++;
        mapAnonPage(pgdat, proc, pfn, 0, vpn);
        n++;
        fast++;
      }
      continue;
    }
    const got = handleMmFault(pgdat, proc, vma, vpn);
    if (got === FAULT_OOM) break;
    n += got;
    vpn = got === HPAGE_PMD_NR ? (pmdIdx + 1) * HPAGE_PMD_NR : vpn + 1;
  }
  pgdat.events[VmEvent.pgfault] = pgdat.events[VmEvent.pgfault]! + fast;
  return n;
}

/**
 * Faults in the next `pages` pages of a mapping in address order (from where earlier
 * calls stopped); without a mapping, the heap grows by `pages` (brk) and they are
 * faulted. Returns the base pages faulted (a THP counts 512, also when part of it lies
 * past the span asked for).
 */
export function faultAnonPages(pgdat: PgData, proc: Process, pages: number, vma?: Vma): number {
  const v = vma ?? brkGrow(proc, pages);
  const from = v.start + v.faulted;
  const want = Math.min(pages, v.end - from);
  if (want <= 0) return 0;
  v.faulted += want;
  return faultRange(pgdat, proc, v, from, want);
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
    setPageIndex(map, pfn, proc.filePages);
    lruCacheAdd(pgdat, pfn);
    if (dirty) accountPageDirtied(pgdat, pfn);
    proc.filePages++;
    // generic_perform_write calls balance_dirty_pages_ratelimited as it goes (every 32 pages here)
    if (dirty && (n & 31) === 31) balanceDirtyPages(pgdat);
  }
  if (!dirty) pgdat.events[VmEvent.pgpgin] = pgdat.events[VmEvent.pgpgin]! + 8 * n;
  // slab hook: the files' dentries and inodes, their xarray nodes, buffer_heads of written pages
  if (n > 0 && pgdat.hooks.pageCacheAdd !== null) pgdat.hooks.pageCacheAdd(pgdat, proc.pid, n, dirty, filePages);
  // the write's last balance_dirty_pages, with the slab it took counted out of dirtyable memory
  if (dirty) balanceDirtyPages(pgdat);
  return n;
}

// ---------------------------------------------------------------------------------
// The reverse map

/** The pte (its table and slot) that maps the anonymous base page pfn of proc, or null. */
export function pageVmaAddress(pgdat: PgData, proc: Process, pfn: number): { pmd: Pmd; i: number } | null {
  const vpn = pageIndex(pgdat.map, pfn);
  const pmd = proc.mm.pmds.get(Math.floor(vpn / HPAGE_PMD_NR));
  if (pmd === undefined || pmd.pte === null) return null;
  const i = vpn % HPAGE_PMD_NR;
  return pmd.pte[i] === pfn ? { pmd, i } : null;
}

/**
 * @kernel mm/rmap.c try_to_migrate_one (set the new pte), remove_migration_ptes
 * A migrated anonymous base page: the pte that mapped src maps dst, which takes src's
 * place (page->index). False when no pte of the process maps src.
 */
export function rmapMovePage(pgdat: PgData, proc: Process, src: number, dst: number): boolean {
  const at = pageVmaAddress(pgdat, proc, src);
  setPageIndex(pgdat.map, dst, pageIndex(pgdat.map, src));
  if (at === null) return false;
  at.pmd.pte![at.i] = dst;
  return true;
}

/**
 * @kernel mm/rmap.c try_to_unmap_one (anonymous page to swap)
 * Reclaim wrote the anonymous base page pfn to swap: its pte holds the swap entry now.
 */
export function rmapSwapOut(pgdat: PgData, proc: Process, pfn: number): void {
  const at = pageVmaAddress(pgdat, proc, pfn);
  if (at === null) return;
  at.pmd.pte![at.i] = PTE_SWAP;
  at.pmd.present--;
  at.pmd.swapped++;
  proc.rssAnon--;
  proc.swapPages++;
}

/**
 * @kernel mm/huge_memory.c __split_huge_pmd_locked (anonymous)
 * The huge PMD of a THP becomes a PTE table (the deposited one) whose 512 ptes map the
 * THP's subpages; the THP leaves AnonHugePages (thp_split_pmd). The THP itself stays
 * whole until it is split (huge_memory.ts).
 */
export function splitHugePmd(pgdat: PgData, pmd: Pmd): void {
  const head = pmd.huge;
  const pte = new Int32Array(HPAGE_PMD_NR);
  for (let i = 0; i < HPAGE_PMD_NR; i++) pte[i] = head + i;
  pmd.pte = pte;
  pmd.huge = NO_PAGE;
  pmd.present = HPAGE_PMD_NR;
  pgdat.events[VmEvent.thp_split_pmd] = pgdat.events[VmEvent.thp_split_pmd]! + 1;
  pgdat.nodeStat[NodeStat.nr_anon_transparent_hugepages] = pgdat.nodeStat[NodeStat.nr_anon_transparent_hugepages]! - HPAGE_PMD_NR;
}

/** The THP head a PTE-mapped subpage belongs to, or NO_PAGE for a base page. */
function thpHeadOf(pgdat: PgData, pfn: number): number {
  const f = pageFlags(pgdat.map, pfn);
  if ((f & PG.tail) !== 0) return pfn & ~(HPAGE_PMD_NR - 1); // THPs are naturally aligned
  if ((f & PG.head) !== 0) return pfn;
  return NO_PAGE;
}

// ---------------------------------------------------------------------------------
// Unmapping

/**
 * @kernel mm/memory.c zap_pte_range (one pte of a PTE-mapped THP), mm/rmap.c page_remove_rmap, mm/huge_memory.c deferred_split_huge_page
 * Unmaps one 4 KiB subpage of a PTE-mapped THP: the first one queues the THP for the
 * deferred split (thp_deferred_split_page); the subpage leaves the process's rss and
 * AnonPages but stays allocated with the rest of the THP until the deferred split
 * shrinker splits it (splitHugePage), or until its last mapped subpage goes, when the
 * whole THP is freed.
 */
function zapThpSubpage(pgdat: PgData, proc: Process, head: number, sub: number): void {
  const q = pgdat.deferredSplitQueue.thps;
  const n = 1 << pageOrder(pgdat.map, head);
  let d: DeferredThp | undefined = q.get(head);
  if (d === undefined) {
    d = { unmapped: new Uint8Array(n), nr: 0 };
    q.set(head, d);
    pgdat.events[VmEvent.thp_deferred_split_page] = pgdat.events[VmEvent.thp_deferred_split_page]! + 1;
  }
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
}

/**
 * Clears one pte of a PTE table: a base page is freed, a THP subpage unmapped from its
 * THP, a swap entry's slot freed. A page off the LRU (isolated by a migration in
 * progress) is left mapped. Returns the pages that left the process's rss.
 */
function zapPte(pgdat: PgData, proc: Process, pmd: Pmd, i: number): number {
  const e = pmd.pte![i]!;
  if (e === PTE_NONE) return 0;
  if (e === PTE_SWAP) {
    pmd.pte![i] = PTE_NONE;
    pmd.swapped--;
    proc.swapPages--;
    pgdat.swap.usedPages--;
    return 0;
  }
  const head = thpHeadOf(pgdat, e);
  if (!PageLRU(pgdat.map, head === NO_PAGE ? e : head)) return 0;
  pmd.pte![i] = PTE_NONE;
  pmd.present--;
  if (head !== NO_PAGE) { zapThpSubpage(pgdat, proc, head, e - head); return 1; }
  delPageFromLruList(pgdat, e);
  freePages(pgdat, e, 0);
  proc.rssAnon--;
  return 1;
}

/**
 * @kernel mm/memory.c zap_pmd_range, mm/huge_memory.c zap_huge_pmd
 * Unmaps the pages of [start, end) inside one PMD's range: a THP covered whole is freed
 * with its deposited table (the PMD is empty again); one covered in part has its PMD
 * split first. Returns the pages that left the process's rss.
 */
function zapPmdRange(pgdat: PgData, proc: Process, pmdIdx: number, pmd: Pmd, start: number, end: number): number {
  const base = pmdIdx * HPAGE_PMD_NR;
  if (pmd.pte === null) {
    const head = pmd.huge;
    if (!PageLRU(pgdat.map, head)) return 0;
    if (start === base && end === base + HPAGE_PMD_NR) {
      delPageFromLruList(pgdat, head);
      pgdat.nodeStat[NodeStat.nr_anon_transparent_hugepages] = pgdat.nodeStat[NodeStat.nr_anon_transparent_hugepages]! - HPAGE_PMD_NR;
      freePages(pgdat, head, PAGEBLOCK_ORDER);
      proc.rssAnon -= HPAGE_PMD_NR;
      proc.mm.pmds.delete(pmdIdx);
      pgtableFree(pgdat, proc, pmd.table);
      return HPAGE_PMD_NR;
    }
    splitHugePmd(pgdat, pmd);
  }
  let n = 0;
  for (let v = start; v < end; v++) n += zapPte(pgdat, proc, pmd, v - base);
  return n;
}

/** @kernel mm/memory.c unmap_page_range: unmaps every page of [start, end); returns the pages that left the rss. */
function unmapPageRange(pgdat: PgData, proc: Process, start: number, end: number): number {
  let n = 0;
  for (let idx = Math.floor(start / HPAGE_PMD_NR); idx * HPAGE_PMD_NR < end; idx++) {
    const pmd = proc.mm.pmds.get(idx);
    if (pmd === undefined || (pmd.pte !== null && pmd.present === 0 && pmd.swapped === 0)) continue;
    n += zapPmdRange(pgdat, proc, idx, pmd, Math.max(start, idx * HPAGE_PMD_NR), Math.min(end, (idx + 1) * HPAGE_PMD_NR));
  }
  return n;
}

/**
 * @kernel mm/mmap.c free_pgtables (free_pgd_range)
 * Frees the page tables of [start, end) that no mapping needs any more: a PTE table
 * whose 2 MiB no mapping touches, a PMD table whose 1 GiB none does, a PUD table whose
 * 512 GiB none does. Its entries must be empty (the range was unmapped first).
 */
function freePgtables(pgdat: PgData, proc: Process, start: number, end: number): void {
  const mm = proc.mm;
  const levels: Array<[number, Map<number, number> | null]> = [[PAGEBLOCK_ORDER, null], [PMD_TABLE_SHIFT, mm.pmdTables], [PUD_TABLE_SHIFT, mm.pudTables]];
  for (const [shift, tables] of levels) {
    const span = 2 ** shift;
    for (let k = Math.floor(start / span); k * span < end; k++) {
      if (rangeMapped(mm, k * span, (k + 1) * span)) continue;
      if (tables === null) {
        const pmd = mm.pmds.get(k);
        if (pmd === undefined || pmd.present > 0 || pmd.swapped > 0 || pmd.huge !== NO_PAGE) continue;
        mm.pmds.delete(k);
        pgtableFree(pgdat, proc, pmd.table);
      } else {
        const t = tables.get(k);
        if (t === undefined) continue;
        tables.delete(k);
        pgtableFree(pgdat, proc, t);
      }
    }
  }
}

/** Splits the mapping containing vpn so that one starts there (split_vma); returns the index of the mapping starting at vpn, or of the first after it. */
function splitVmaAt(mm: Mm, vpn: number): number {
  const i = vmaIndexAfter(mm.vmas, vpn);
  const v = mm.vmas[i];
  if (v === undefined || v.start >= vpn) return i;
  const upper: Vma = { start: vpn, end: v.end, kind: v.kind, advice: v.advice, faulted: Math.max(0, v.faulted - (vpn - v.start)) };
  v.end = vpn;
  v.faulted = Math.min(v.faulted, vpn - v.start);
  mm.vmas.splice(i + 1, 0, upper);
  return i + 1;
}

/**
 * @kernel mm/mmap.c do_munmap (__do_munmap, unmap_region)
 * Unmaps [start, start + pages): the mappings there are split at the edges and
 * removed, their pages unmapped, and the page tables nothing maps any more freed.
 * Returns the base pages that left the process's rss.
 */
export function munmapRange(pgdat: PgData, proc: Process, start: number, pages: number): number {
  const end = start + pages;
  const mm = proc.mm;
  const i = splitVmaAt(mm, start);
  const j = splitVmaAt(mm, end);
  const gone = mm.vmas.splice(i, j - i);
  if (proc.heap !== null && gone.includes(proc.heap)) proc.heap = null;
  const n = unmapPageRange(pgdat, proc, start, end);
  freePgtables(pgdat, proc, start, end);
  syncVmaSlab(pgdat, proc);
  return n;
}

/** madvise() advice by range: MADV_DONTNEED, MADV_HUGEPAGE, MADV_NOHUGEPAGE. */
export type MadviseAdvice = 'dontneed' | 'hugepage' | 'nohugepage';

/**
 * @kernel mm/madvise.c madvise_dontneed_single_vma, madvise_behavior (hugepage_madvise)
 * madvise() of [start, start + pages): DONTNEED unmaps the pages there (page tables
 * stay); HUGEPAGE / NOHUGEPAGE set VM_HUGEPAGE / VM_NOHUGEPAGE on that range, splitting
 * mappings at its edges. Returns the base pages that left the process's rss.
 */
export function madviseRange(pgdat: PgData, proc: Process, start: number, pages: number, advice: MadviseAdvice): number {
  const end = start + pages;
  if (advice === 'dontneed') return unmapPageRange(pgdat, proc, start, end);
  const mm = proc.mm;
  const i = splitVmaAt(mm, start);
  const j = splitVmaAt(mm, end);
  for (let k = i; k < j; k++) mm.vmas[k]!.advice = advice;
  syncVmaSlab(pgdat, proc);
  return 0;
}

/**
 * Unmaps and frees one anonymous page or THP of a process by its pfn (the page's own
 * pte or PMD, found through page->index). Returns the base pages unmapped.
 */
function zapPage(pgdat: PgData, proc: Process, pfn: number): number {
  const vpn = pageIndex(pgdat.map, pfn);
  const idx = Math.floor(vpn / HPAGE_PMD_NR);
  const pmd = proc.mm.pmds.get(idx);
  if (pmd === undefined) return 0;
  if (pmd.pte === null) return pmd.huge === pfn ? zapPmdRange(pgdat, proc, idx, pmd, idx * HPAGE_PMD_NR, (idx + 1) * HPAGE_PMD_NR) : 0;
  const head = thpHeadOf(pgdat, pfn);
  if (head === NO_PAGE) return pmd.pte[vpn - idx * HPAGE_PMD_NR] === pfn ? zapPte(pgdat, proc, pmd, vpn - idx * HPAGE_PMD_NR) : 0;
  // a PTE-mapped THP listed by its head: every subpage still mapped goes
  let n = 0;
  const hv = pageIndex(pgdat.map, head);
  for (let sub = 0; sub < HPAGE_PMD_NR; sub++) {
    const v = hv + sub;
    const p = proc.mm.pmds.get(Math.floor(v / HPAGE_PMD_NR));
    if (p?.pte != null && p.pte[v % HPAGE_PMD_NR] === head + sub) n += zapPte(pgdat, proc, p, v % HPAGE_PMD_NR);
  }
  return n;
}

// ---------------------------------------------------------------------------------
// Walks

/** Calls fn(vpn, entry) for every pte and huge PMD of the process in address order (entry: pfn, PTE_SWAP; a huge PMD once, with its head). */
export function walkPageTables(proc: Process, fn: (vpn: number, entry: number, huge: boolean) => void): void {
  const keys = [...proc.mm.pmds.keys()].sort((a, b) => a - b);
  for (const idx of keys) {
    const pmd = proc.mm.pmds.get(idx)!;
    const base = idx * HPAGE_PMD_NR;
    if (pmd.pte === null) { fn(base, pmd.huge, true); continue; }
    if (pmd.present === 0 && pmd.swapped === 0) continue;
    const pte = pmd.pte;
    for (let i = 0; i < HPAGE_PMD_NR; i++) if (pte[i] !== PTE_NONE) fn(base + i, pte[i]!, false);
  }
}

/**
 * Whether a virtual page lies in one of the process's bookkeeping mappings
 * (Vma.bookkeeping): a test over their few ranges, made once per walk.
 */
function bookkeepingTest(proc: Process): (vpn: number) => boolean {
  const own = proc.mm.vmas.filter((v) => v.bookkeeping === true);
  if (own.length === 0) return () => false;
  return (vpn) => { for (const v of own) if (vpn >= v.start && vpn < v.end) return true; return false; };
}

/**
 * The process's anonymous pages in physical order: base pages and THP heads (a THP,
 * PMD- or PTE-mapped, is listed once), from its page tables; not its bookkeeping's.
 */
export function processPages(pgdat: PgData, proc: Process): Int32Array {
  const out: number[] = [];
  const seen = new Set<number>();
  const own = bookkeepingTest(proc);
  walkPageTables(proc, (vpn, e, huge) => {
    if (e < 0 || own(vpn)) return;
    if (huge) { out.push(e); return; }
    const head = thpHeadOf(pgdat, e);
    if (head === NO_PAGE) out.push(e);
    else if (!seen.has(head)) { seen.add(head); out.push(head); }
  });
  return Int32Array.from(out).sort();
}

/** Base pages of a process's anonymous memory its page tables map (the rss walked). */
export function processRss(proc: Process): number {
  let n = 0;
  walkPageTables(proc, (_vpn, e, huge) => { if (e >= 0) n += huge ? HPAGE_PMD_NR : 1; });
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
    basePages += zapPage(pgdat, proc, pfn);
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
 * The base pages the process has mapped, in ascending virtual address order, as their
 * virtual page numbers (a THP's subpages are consecutive candidates). Top-down mmap
 * places each new mapping below the ones before, so the newest comes first; the heap
 * (brk) lies below them all.
 */
export function virtualCandidates(proc: Process): Float64Array {
  const out: number[] = [];
  const own = bookkeepingTest(proc);
  walkPageTables(proc, (vpn, e, huge) => {
    if (e < 0 || own(vpn)) return;
    if (!huge) { out.push(vpn); return; }
    for (let i = 0; i < HPAGE_PMD_NR; i++) out.push(vpn + i);
  });
  return Float64Array.from(out);
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
 * bl-mem's `free` does: the candidates are the base pages the process has mapped
 * outside its bookkeeping (Vma.bookkeeping) in ascending virtual address order (virtualCandidates), N of them; K = shareOf(N,
 * fraction); alternate takes candidates 0, 2, 4 ... (until K), lowest 0 .. K-1,
 * highest N-1 down to N-K, random the first K of a Fisher-Yates shuffle whose j = i +
 * splitmix64() % (N - i). Unmapping a page of a PMD-mapped THP splits the PMD.
 * Returns the base pages unmapped and N.
 */
export function unmapVirtualPages(pgdat: PgData, proc: Process, fraction: number, how: VirtualPick): { freed: number; candidates: number } {
  const cand = virtualCandidates(proc);
  const n = cand.length;
  const k = shareOf(n, fraction);
  let freed = 0;
  const release = (vpn: number) => { freed += unmapPageRange(pgdat, proc, vpn, vpn + 1); };
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

/** The pfn that vpn maps in the process (a THP's subpage for a huge PMD), PTE_SWAP, or PTE_NONE. */
export function followPage(proc: Process, vpn: number): number {
  const idx = Math.floor(vpn / HPAGE_PMD_NR);
  const pmd = proc.mm.pmds.get(idx);
  if (pmd === undefined) return PTE_NONE;
  if (pmd.pte === null) return pmd.huge + (vpn - idx * HPAGE_PMD_NR);
  return pmd.pte[vpn - idx * HPAGE_PMD_NR]!;
}

/** Whether pfn is (still) a mapped anonymous base page or THP head of the process. */
export function isProcessPage(pgdat: PgData, pid: number, pfn: number): boolean {
  const map = pgdat.map;
  return pageOwner(map, pfn) === Owner.anon && pageMapping(map, pfn) === pid && (pageFlags(map, pfn) & (PG.tail | PG.lru)) === PG.lru;
}

/**
 * @kernel kernel/exit.c do_exit (exit_mmap: unmap_vmas, free_pgtables, pgd_free)
 * Frees all of a process's anonymous memory, swap entries and page tables; returns the
 * base pages freed (a THP counts 512).
 */
export function exitProcess(pgdat: PgData, procs: ProcessTable, proc: Process): number {
  const mm = proc.mm;
  const keys = [...mm.pmds.keys()].sort((a, b) => a - b);
  let freed = 0;
  for (const idx of keys) {
    const pmd = mm.pmds.get(idx);
    if (pmd === undefined) continue;
    freed += zapPmdRange(pgdat, proc, idx, pmd, idx * HPAGE_PMD_NR, (idx + 1) * HPAGE_PMD_NR);
  }
  mm.vmas.length = 0;
  proc.heap = null;
  syncVmaSlab(pgdat, proc);
  for (const [, pmd] of mm.pmds) pgtableFree(pgdat, proc, pmd.table);
  mm.pmds.clear();
  for (const t of mm.pmdTables.values()) pgtableFree(pgdat, proc, t);
  for (const t of mm.pudTables.values()) pgtableFree(pgdat, proc, t);
  mm.pmdTables.clear();
  mm.pudTables.clear();
  if (mm.pgd !== NO_PAGE) { pgtableFree(pgdat, proc, mm.pgd); mm.pgd = NO_PAGE; }
  pgdat.swap.usedPages -= proc.swapPages;
  proc.swapPages = 0;
  if (proc.forked) { slabTaskFree(pgdat); proc.forked = false; }
  procs.delete(proc.pid);
  return freed;
}
