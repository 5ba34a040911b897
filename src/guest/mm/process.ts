/**
 * The smallest process model reclaim and compaction need: a process owns anonymous
 * pages (faulted in on demand, on the LRU, swap-backed), can unmap some of them, and
 * exits. Pages record their process in page->mapping (the model's 16-bit id), which
 * is all the reverse map compaction needs: migrating a page moves the id with it.
 *
 * Simplification (docs/model-limits.md): no virtual addresses or page tables per
 * process; "which pages" is chosen over the process's pages in physical order (what
 * fragments memory) or at random. Workloads (src/workloads) build on these calls.
 */
import { NO_PAGE, Owner, PG, pageMapping, pageOwner, setPageFlags, setPageMapping } from './memmap.js';
import { type PgData } from './mmzone.js';
import { allocPages, freePages } from './page_alloc.js';
import { GFP_HIGHUSER_MOVABLE } from './gfp.js';
import { lruCacheAdd, delPageFromLruList } from './lru.js';
import { VmEvent, NodeStat } from './vmstat_items.js';
import { type Rng, rngBelow } from '../../sim/rng.js';

/** Highest process id (page->mapping is 16 bits; 0 means "no process"). */
export const PID_MAX = 0xffff;

export type Process = {
  pid: number;
  /** Anonymous pages mapped (MM_ANONPAGES). */
  rssAnon: number;
  /** Page-cache pages this process read or wrote that are still cached (its file). */
  filePages: number;
  /** Anonymous pages swapped out (MM_SWAPENTS). */
  swapPages: number;
};

/** The guest's processes, by pid. */
export type ProcessTable = Map<number, Process>;

export function getProcess(procs: ProcessTable, pid: number): Process {
  if (!Number.isInteger(pid) || pid < 1 || pid > PID_MAX) throw new RangeError(`pid must be from 1 to ${PID_MAX}`);
  let p = procs.get(pid);
  if (!p) {
    p = { pid, rssAnon: 0, filePages: 0, swapPages: 0 };
    procs.set(pid, p);
  }
  return p;
}

/**
 * @kernel mm/memory.c do_anonymous_page
 * Faults in `pages` anonymous pages for a process (GFP_HIGHUSER_MOVABLE, onto the
 * inactive anon LRU). Stops at the first failed allocation; returns the number faulted.
 */
export function faultAnonPages(pgdat: PgData, proc: Process, pages: number): number {
  const map = pgdat.map;
  let n = 0;
  for (; n < pages; n++) {
    // A process the OOM killer chose stops faulting (it is exiting).
    if (!pgdat.procs.has(proc.pid)) break;
    const pfn = allocPages(pgdat, GFP_HIGHUSER_MOVABLE, 0, Owner.anon);
    if (pfn === NO_PAGE) break;
    setPageFlags(map, pfn, PG.swapbacked | PG.uptodate | PG.dirty);
    setPageMapping(map, pfn, proc.pid);
    lruCacheAdd(pgdat, pfn);
    proc.rssAnon++; // per page: reclaim and the OOM killer may look at it mid-fault
  }
  pgdat.events[VmEvent.pgfault] = pgdat.events[VmEvent.pgfault]! + n;
  return n;
}

/**
 * Reads (or, with dirty, writes) `pages` pages of the process's file into the page
 * cache: GFP_HIGHUSER_MOVABLE page-cache pages on the inactive file LRU, tagged with
 * the process id as their file. Returns the pages cached.
 */
export function readFilePages(pgdat: PgData, proc: Process, pages: number, dirty: boolean): number {
  const map = pgdat.map;
  let n = 0;
  for (; n < pages; n++) {
    const pfn = allocPages(pgdat, GFP_HIGHUSER_MOVABLE, 0, Owner.file);
    if (pfn === NO_PAGE) break;
    setPageFlags(map, pfn, PG.uptodate | (dirty ? PG.dirty : 0));
    setPageMapping(map, pfn, proc.pid);
    lruCacheAdd(pgdat, pfn);
    proc.filePages++;
  }
  if (dirty) pgdat.nodeStat[NodeStat.nr_dirtied] = pgdat.nodeStat[NodeStat.nr_dirtied]! + n;
  else pgdat.events[VmEvent.pgpgin] = pgdat.events[VmEvent.pgpgin]! + 8 * n;
  return n;
}

/** Unmaps and frees one anonymous page of a process (zap_pte_range for one pte). */
function zapAnonPage(pgdat: PgData, proc: Process, pfn: number): void {
  delPageFromLruList(pgdat, pfn);
  freePages(pgdat, pfn, 0);
  proc.rssAnon--;
}

/** The process's anonymous pages on the LRU, in physical order (a memmap walk). */
export function processPages(pgdat: PgData, pid: number): Int32Array {
  const map = pgdat.map;
  const out: number[] = [];
  for (let pfn = 0; pfn < map.nrPages; pfn++) {
    if (pageOwner(map, pfn) === Owner.anon && pageMapping(map, pfn) === pid) out.push(pfn);
  }
  return Int32Array.from(out);
}

export type UnmapPick = 'alternate' | 'random' | 'lowest' | 'highest';

/**
 * munmap of a share of a process's anonymous memory. `alternate` frees every other
 * page in physical order: the classic way to leave memory free but fragmented.
 * Isolated pages (mid-migration) are skipped. Returns the pages freed.
 */
export function unmapAnonPages(pgdat: PgData, rng: Rng, proc: Process, fraction: number, pick: UnmapPick): number {
  const pages = processPages(pgdat, proc.pid);
  const n = pages.length;
  const want = Math.round(n * fraction);
  let freed = 0;
  const free = (pfn: number) => {
    if ((pgdat.map.w[pfn << 2]! & PG.lru) === 0) return;
    zapAnonPage(pgdat, proc, pfn);
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
  return freed;
}

/** @kernel kernel/exit.c do_exit (exit_mmap): frees all of a process's anonymous pages. */
export function exitProcess(pgdat: PgData, procs: ProcessTable, proc: Process): number {
  const pages = processPages(pgdat, proc.pid);
  let freed = 0;
  for (const pfn of pages) {
    if ((pgdat.map.w[pfn << 2]! & PG.lru) === 0) continue;
    zapAnonPage(pgdat, proc, pfn);
    freed++;
  }
  pgdat.swap.usedPages -= proc.swapPages;
  proc.swapPages = 0;
  procs.delete(proc.pid);
  return freed;
}
