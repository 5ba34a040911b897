/**
 * Writeback of dirty page cache (mm/page-writeback.c, fs/fs-writeback.c): the dirty
 * accounting (NR_FILE_DIRTY, nr_dirtied, nr_written), the flusher (one bdi_writeback
 * with its b_dirty list, in the order pages were dirtied), and the throttle a writer
 * meets in balance_dirty_pages.
 *
 * The flusher wakes every dirty_writeback_centisecs (5 s: wb_workfn's periodic
 * wb_check_old_data_flush) and writes back what was dirtied more than
 * dirty_expire_centisecs (30 s) ago; it is woken at once when dirty pages pass the
 * background threshold (dirty_background_ratio of dirtyable memory:
 * wb_start_background_writeback) and then writes the oldest until they are below it. A
 * writer past the hard threshold (dirty_ratio) is paused for the time the device needs
 * to write the excess (balance_dirty_pages' pause, with the flusher doing the writing).
 *
 * Dirtyable memory is what global_dirtyable_memory counts: free pages and the file
 * LRU, less the zones' high watermarks and lowmem reserves (totalreserve_pages). A page
 * written back is cleaned at once, its I/O charged to the flusher's (daemon) time at
 * `writebackPage` a page; PG_writeback, per-inode ordering and the bdi's bandwidth
 * estimate are not modelled (docs/model-limits.md).
 */
import { Owner, PG, pageFlags, pageOwner, setPageFlags } from './memmap.js';
import type { PgData } from './mmzone.js';
import { NodeStat, VmEvent } from './vmstat_items.js';
import { globalDirtyLimits } from './vmstat.js';

import type { DirtyList } from './mm_types.js';

function push(d: DirtyList, pfn: number, t: number): void {
  if (d.len === d.pfns.length) {
    const n = d.pfns.length * 2;
    const pfns = new Int32Array(n), times = new Float64Array(n);
    for (let i = 0; i < d.len; i++) { const k = (d.head + i) % d.pfns.length; pfns[i] = d.pfns[k]!; times[i] = d.times[k]!; }
    d.pfns = pfns; d.times = times; d.head = 0;
  }
  const k = (d.head + d.len) % d.pfns.length;
  d.pfns[k] = pfn;
  d.times[k] = t;
  d.len++;
}

/**
 * @kernel mm/page-writeback.c folio_account_dirtied
 * A page-cache page became dirty: NR_FILE_DIRTY and nr_dirtied count it, and it joins
 * the dirty list at the current time.
 */
export function accountPageDirtied(pgdat: PgData, pfn: number): void {
  const ns = pgdat.nodeStat;
  ns[NodeStat.nr_dirty] = ns[NodeStat.nr_dirty]! + 1;
  ns[NodeStat.nr_dirtied] = ns[NodeStat.nr_dirtied]! + 1;
  push(pgdat.dirtyList, pfn, pgdat.nowNs());
}

/**
 * @kernel mm/page-writeback.c folio_clear_dirty_for_io, folio_end_writeback (written); folio_account_cleaned (cancelled)
 * A dirty page-cache page is clean again: written back (nr_written, pgpgout) or, when
 * `written` is false, its dirt cancelled (truncation). Its dirty-list entry goes stale.
 */
export function accountPageCleaned(pgdat: PgData, pfn: number, written: boolean): void {
  setPageFlags(pgdat.map, pfn, pageFlags(pgdat.map, pfn) & ~PG.dirty);
  const ns = pgdat.nodeStat;
  ns[NodeStat.nr_dirty] = ns[NodeStat.nr_dirty]! - 1;
  if (!written) return;
  ns[NodeStat.nr_written] = ns[NodeStat.nr_written]! + 1;
  pgdat.events[VmEvent.pgpgout] = pgdat.events[VmEvent.pgpgout]! + 8;
}

/** A dirty page-cache page migrated: its new frame takes a place on the dirty list (at the current time; the old entry goes stale). */
export function dirtyPageMoved(pgdat: PgData, dst: number): void {
  push(pgdat.dirtyList, dst, pgdat.nowNs());
}

/** The background and the hard threshold, in pages (vmstat.ts globalDirtyLimits: domain_dirty_limits over global_dirtyable_memory). */
export function dirtyThresholds(pgdat: PgData): { background: number; dirty: number } {
  const [background, dirty] = globalDirtyLimits(pgdat);
  return { background, dirty };
}

/** Writes back the list's oldest dirty pages while `more` says so; returns the pages written. Stale entries are dropped. */
function writebackOldest(pgdat: PgData, more: (t: number) => boolean): number {
  const d = pgdat.dirtyList, map = pgdat.map;
  let written = 0;
  while (d.len > 0) {
    const pfn = d.pfns[d.head]!, t = d.times[d.head]!;
    const live = pageOwner(map, pfn) === Owner.file && (pageFlags(map, pfn) & (PG.dirty | PG.lru)) === (PG.dirty | PG.lru);
    if (live && !more(t)) break;
    d.head = (d.head + 1) % d.pfns.length;
    d.len--;
    if (!live) continue;
    accountPageCleaned(pgdat, pfn, true);
    written++;
  }
  // the flusher submits the writes; the device's time (writebackPage) is not the CPU's
  pgdat.daemonNs += written * pgdat.costs.pageoutSubmit;
  return written;
}

/**
 * @kernel fs/fs-writeback.c wb_workfn (wb_do_writeback: wb_check_background_flush, wb_check_old_data_flush)
 * One flusher run: below the background threshold, pages dirtied longer than
 * dirty_expire_centisecs ago; above it, the oldest until dirty pages are under it.
 * Returns the pages written.
 */
export function wbWorkfn(pgdat: PgData): number {
  const now = pgdat.nowNs();
  const expire = now - pgdat.sysctl.dirtyExpireCentisecs * 1e7;
  let written = writebackOldest(pgdat, (t) => t <= expire);
  const { background } = dirtyThresholds(pgdat);
  if (pgdat.nodeStat[NodeStat.nr_dirty]! > background) written += writebackOldest(pgdat, () => pgdat.nodeStat[NodeStat.nr_dirty]! > background);
  return written;
}

/**
 * @kernel mm/page-writeback.c balance_dirty_pages
 * After a writer dirtied pages: past the background threshold the flusher is woken;
 * past the hard threshold the writer pauses while the flusher writes the excess, the
 * pause (the device's time for those pages) added to the task's I/O wait (it sleeps in
 * io_schedule_timeout; its vCPU is free meanwhile).
 */
export function balanceDirtyPages(pgdat: PgData): void {
  const { background, dirty } = dirtyThresholds(pgdat);
  const nr = pgdat.nodeStat[NodeStat.nr_dirty]!;
  if (nr <= background) return;
  if (nr > dirty) {
    const excess = nr - dirty;
    const written = writebackOldest(pgdat, () => pgdat.nodeStat[NodeStat.nr_dirty]! > dirty);
    pgdat.tasks.ioWaitNs += Math.min(excess, written) * pgdat.costs.writebackPage;
  }
  pgdat.hooks.wakeFlusher?.();
}
