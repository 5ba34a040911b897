/**
 * Page migration (mm/migrate.c): move isolated pages to new pages.
 *
 * A page to migrate has been isolated by its caller (compaction): LRU pages with
 * isolateLruPage, non-LRU movable pages through their owner's movable operations.
 * For each, migratePages asks the caller for a target page and moves the contents:
 * an LRU page's state (owner, flags, process id) goes to the target, which joins the
 * LRU, and the source is freed; a non-LRU movable page is moved by its owner's
 * migratePage callback. Pages that cannot move now (locked, pinned by an extra
 * reference, or the owner says "try again") are retried for up to ten passes, then
 * put back where they came from. Counts pgmigrate_success and pgmigrate_fail.
 */
import {
  NO_PAGE, Owner, PG, listDel, listFirst, listNext, pageFlags, pageMapping, pageOwner, pageRefcount,
  setPageMapping, resetPages, pageIndex, setPageIndex,
} from './memmap.js';
import { type PgData, MigrateMode, MigrateResult } from './mmzone.js';
import { freePages, moveOwnerCount } from './page_alloc.js';
import { lruCacheAdd, putbackLruPage } from './lru.js';
import { rmapMovePage } from './process.js';
import { dirtyPageMoved } from './page_writeback.js';
import { NodeStat, VmEvent } from './vmstat_items.js';

/** NR_MAX_MIGRATE_PAGES_RETRY */
export const NR_MAX_MIGRATE_PAGES_RETRY = 10;

/** Supplies a free target page for a migration (compaction_alloc), or NO_PAGE. */
export type NewPageFn = (pgdat: PgData) => number;
/** Takes back a target page that was not used (compaction_free). */
export type FreePageFn = (pgdat: PgData, pfn: number) => void;

/** The outcome of migratePages. */
export type MigrateOutcome = {
  succeeded: number;
  failed: number;
  /** No target page could be had: the rest of the list was left for the caller. */
  outOfTargets: boolean;
};

/** Whether a page is movable by the LRU path right now (not locked, no extra pin). */
function lruPageBusy(pgdat: PgData, pfn: number): boolean {
  return (pageFlags(pgdat.map, pfn) & (PG.locked | PG.writeback)) !== 0 || pageRefcount(pgdat.map, pfn) > 1;
}

/**
 * @kernel mm/migrate.c migrate_folio_move (for an anonymous or page-cache page)
 * Moves an isolated LRU page to dst: dst takes the owner, flags and process id and
 * joins the LRU; src is freed.
 */
function moveLruPage(pgdat: PgData, dst: number, src: number): void {
  const map = pgdat.map;
  const owner = pageOwner(map, src);
  const flags = pageFlags(map, src) & ~PG.lru;
  const id = pageMapping(map, src);
  // dst: from compaction's free list to the source's owner (the counters move with it)
  moveOwnerCount(pgdat, Owner.compactFree, owner);
  resetPages(map, dst, dst + 1, owner, flags, 1);
  setPageMapping(map, dst, id);
  const k = (flags & PG.swapbacked) !== 0 ? NodeStat.nr_isolated_anon : NodeStat.nr_isolated_file;
  pgdat.nodeStat[k] = pgdat.nodeStat[k]! - 1;
  lruCacheAdd(pgdat, dst);
  // the pte that mapped src maps dst (remove_migration_ptes); dst takes src's page->index
  const proc = owner === Owner.anon ? pgdat.tasks.procs.get(id) : undefined;
  if (proc !== undefined) rmapMovePage(pgdat, proc, src, dst);
  else setPageIndex(map, dst, pageIndex(map, src));
  if (owner === Owner.file && (flags & PG.dirty) !== 0) dirtyPageMoved(pgdat, dst);
  // the copy writes dst with src's contents
  if (pgdat.hooks.pageCopy !== null) pgdat.hooks.pageCopy(dst, src);
  // src: the old copy is released. It is handed to freePages as a compaction page so
  // that the owner's node counters (nr_anon_pages ...), which dst now carries, stay put.
  moveOwnerCount(pgdat, owner, Owner.compactFree);
  resetPages(map, src, src + 1, Owner.compactFree, 0);
  freeMigratedSource(pgdat, src);
}

/** The source of a completed migration goes back to the allocator. */
function freeMigratedSource(pgdat: PgData, src: number): void {
  // freePages accounts the page to its current owner (compactFree here); pgfree counts it.
  freePages(pgdat, src, 0);
}

/**
 * @kernel mm/migrate.c migrate_pages
 * Migrates every page on the list `head` (a list head in the memmap). Successful pages
 * leave the list; failed ones are put back (LRU or their owner) and leave it too. When
 * no target is available the remaining pages stay on the list and outOfTargets is set.
 * Returns the counts.
 */
export function migratePages(pgdat: PgData, head: number, getNewPage: NewPageFn, putNewPage: FreePageFn, mode: MigrateMode): MigrateOutcome {
  const map = pgdat.map;
  const out: MigrateOutcome = { succeeded: 0, failed: 0, outOfTargets: false };
  for (let pass = 0; pass < NR_MAX_MIGRATE_PAGES_RETRY; pass++) {
    let retry = 0;
    let pfn = listFirst(map, head);
    while (pfn !== NO_PAGE) {
      const next = listNext(map, pfn);
      const nextPfn = next === head ? NO_PAGE : next;
      const owner = pageOwner(map, pfn);
      const ops = pgdat.movableOps[owner] ?? null;
      if (ops === null && lruPageBusy(pgdat, pfn)) {
        retry++;
        pfn = nextPfn;
        continue;
      }
      const dst = getNewPage(pgdat);
      if (dst === NO_PAGE) {
        out.outOfTargets = true;
        return finish(pgdat, head, out);
      }
      if (ops === null) {
        listDel(map, pfn);
        moveLruPage(pgdat, dst, pfn);
        out.succeeded++;
      } else {
        // The owner's callback takes dst (given the source's owner) and leaves src,
        // still on the migration list, for the core to release.
        moveOwnerCount(pgdat, Owner.compactFree, owner);
        resetPages(map, dst, dst + 1, owner, 0);
        const r = ops.migratePage(pgdat, dst, pfn, mode);
        if (r === MigrateResult.success) {
          listDel(map, pfn);
          out.succeeded++;
          moveOwnerCount(pgdat, owner, Owner.compactFree);
          resetPages(map, pfn, pfn + 1, Owner.compactFree, 0);
          freeMigratedSource(pgdat, pfn);
        } else {
          // dst goes back to compaction; src stays for the next pass (again) or is put back
          moveOwnerCount(pgdat, owner, Owner.compactFree);
          resetPages(map, dst, dst + 1, Owner.compactFree, 0);
          putNewPage(pgdat, dst);
          if (r === MigrateResult.again) {
            retry++;
          } else {
            listDel(map, pfn);
            ops.putbackPage(pgdat, pfn);
            out.failed++;
            pgdat.events[VmEvent.pgmigrate_fail] = pgdat.events[VmEvent.pgmigrate_fail]! + 1;
          }
        }
      }
      pfn = nextPfn;
    }
    // Pages left on the list failed for a reason that may pass (-EAGAIN): another pass.
    if (retry === 0) break;
  }
  return finish(pgdat, head, out);
}

/** Puts back whatever is still on the migration list and counts it as failed. */
function finish(pgdat: PgData, head: number, out: MigrateOutcome): MigrateOutcome {
  const map = pgdat.map;
  if (!out.outOfTargets) {
    for (let pfn = listFirst(map, head); pfn !== NO_PAGE; pfn = listFirst(map, head)) {
      listDel(map, pfn);
      putbackMovablePage(pgdat, pfn);
      out.failed++;
      pgdat.events[VmEvent.pgmigrate_fail] = pgdat.events[VmEvent.pgmigrate_fail]! + 1;
    }
  }
  pgdat.events[VmEvent.pgmigrate_success] = pgdat.events[VmEvent.pgmigrate_success]! + out.succeeded;
  return out;
}

/** @kernel mm/migrate.c putback_movable_pages (one page): LRU or owner's putback. */
export function putbackMovablePage(pgdat: PgData, pfn: number): void {
  const ops = pgdat.movableOps[pageOwner(pgdat.map, pfn)] ?? null;
  if (ops) ops.putbackPage(pgdat, pfn);
  else putbackLruPage(pgdat, pfn);
}
