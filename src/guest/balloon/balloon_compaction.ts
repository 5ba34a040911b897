/**
 * Balloon compaction (mm/balloon_compaction.c, include/linux/balloon_compaction.h):
 * the pages a balloon driver holds, kept so that compaction can move them.
 *
 * A balloon page is PageOffline (its contents belong to the host) and sits on the
 * balloon's list. With balloon compaction on (the 2012 fix) balloon pages are
 * allocated movable and registered with the balloon's movable operations, so the
 * migrate scanner isolates them and page migration hands them to the driver's migrate
 * callback: inflate the new page to the host, enqueue it, deflate the old one, release
 * it. With balloon compaction off (the pre-2012 kernel, still selectable) they are
 * plain unmovable allocations that compaction can only skip.
 */
import { NO_PAGE, Owner, PG, PageType, listAdd, listDel, listFirst, listNext, listHeadAlloc, pageFlags, pageMapping, setPageFlags, setPageMapping, setPageOwner, setPageType, pageTypeOf } from '../mm/memmap.js';
import { type PgData, type MovableOperations, type BalloonDevInfo, MigrateResult } from '../mm/mmzone.js';
import { allocPages, moveOwnerCount } from '../mm/page_alloc.js';
import { GFP_HIGHUSER, GFP_HIGHUSER_MOVABLE, __GFP_NOMEMALLOC, __GFP_NORETRY, __GFP_NOWARN } from '../mm/gfp.js';
import { VmEvent } from '../mm/vmstat_items.js';

export type { BalloonDevInfo, BalloonMigrateFn } from '../mm/mmzone.js';

/**
 * balloon_devinfo_init(), plus the movable operations when compaction is on
 * (CONFIG_BALLOON_COMPACTION: one build option for every balloon of the kernel, so a
 * second device must agree with the first).
 */
export function balloonDevinfoInit(pgdat: PgData, compaction: boolean): BalloonDevInfo {
  const first = pgdat.balloonDevs[0];
  if (first !== undefined && first.compaction !== compaction) throw new RangeError('balloon compaction is a kernel build option (CONFIG_BALLOON_COMPACTION): every balloon device of a guest has it or none');
  const b: BalloonDevInfo = { pgdat, id: pgdat.balloonDevs.length, pages: listHeadAlloc(pgdat.map), nrPages: 0, isolatedPages: 0, compaction, migratepage: null };
  pgdat.balloonDevs.push(b);
  pgdat.movableOps[Owner.balloon] = compaction ? BALLOON_MOPS : null;
  return b;
}

/** @kernel include/linux/balloon_compaction.h balloon_page_device: the device a balloon page belongs to (its mapping). */
export function balloonPageDevice(pgdat: PgData, pfn: number): BalloonDevInfo {
  return pgdat.balloonDevs[pageMapping(pgdat.map, pfn)]!;
}

/** One more of a vmstat event. */
function count(pgdat: PgData, e: VmEvent): void {
  pgdat.events[e] = pgdat.events[e]! + 1;
}

function transferOwner(pgdat: PgData, pfn: number, from: Owner, to: Owner): void {
  moveOwnerCount(pgdat, from, to);
  setPageOwner(pgdat.map, pfn, to);
}

/**
 * @kernel mm/balloon_compaction.c balloon_page_alloc
 * One page for the balloon: movable with balloon compaction, unmovable without;
 * never retrying, never warning, never dipping into reserves. NO_PAGE when memory is
 * tight ("out of puff"). The page belongs to the driver until balloonPageEnqueue.
 */
export function balloonPageAlloc(b: BalloonDevInfo): number {
  const gfp = (b.compaction ? GFP_HIGHUSER_MOVABLE : GFP_HIGHUSER) | __GFP_NOMEMALLOC | __GFP_NORETRY | __GFP_NOWARN;
  return allocPages(b.pgdat, gfp, 0, Owner.kernel);
}

/** balloon_page_insert(): PageOffline, owned by the balloon, its mapping the balloon's, on its list. */
function balloonPageInsert(b: BalloonDevInfo, pfn: number): void {
  const map = b.pgdat.map;
  setPageType(map, pfn, PageType.offline);
  setPageMapping(map, pfn, b.id);
  listAdd(map, pfn, b.pages);
  b.nrPages++;
}

/**
 * @kernel mm/balloon_compaction.c balloon_page_enqueue
 * A page the driver allocated joins the balloon (counts balloon_inflate).
 */
export function balloonPageEnqueue(b: BalloonDevInfo, pfn: number): void {
  transferOwner(b.pgdat, pfn, Owner.kernel, Owner.balloon);
  balloonPageInsert(b, pfn);
  b.pgdat.events[VmEvent.balloon_inflate] = b.pgdat.events[VmEvent.balloon_inflate]! + 1;
}

/**
 * @kernel mm/balloon_compaction.c balloon_page_dequeue
 * Takes a page off the balloon for the driver to release (counts balloon_deflate):
 * not PageOffline any more, owned by the driver (Owner.kernel) until it frees it.
 * Pages that are locked are skipped. Returns NO_PAGE when none is available now;
 * if some pages are isolated by compaction, that means "try again later".
 */
export function balloonPageDequeue(b: BalloonDevInfo): number {
  const map = b.pgdat.map;
  for (let pfn = listFirst(map, b.pages); pfn !== NO_PAGE; pfn = nextOnList(b, pfn)) {
    if (pageFlags(map, pfn) & (PG.locked | PG.isolated)) continue;
    listDel(map, pfn);
    b.nrPages--;
    setPageType(map, pfn, PageType.none);
    transferOwner(b.pgdat, pfn, Owner.balloon, Owner.kernel);
    b.pgdat.events[VmEvent.balloon_deflate] = b.pgdat.events[VmEvent.balloon_deflate]! + 1;
    return pfn;
  }
  return NO_PAGE;
}

function nextOnList(b: BalloonDevInfo, pfn: number): number {
  const n = listNext(b.pgdat.map, pfn);
  return n === b.pages ? NO_PAGE : n;
}

/** Whether a dequeue failure means "try again later" (pages isolated by compaction). */
export function balloonDequeueShouldRetry(b: BalloonDevInfo): boolean {
  return b.nrPages === 0 && b.isolatedPages > 0;
}

/**
 * @kernel mm/balloon_compaction.c balloon_mops
 * The balloon's movable operations, the same for every balloon device: each finds its
 * page's device through the page's mapping.
 */
const BALLOON_MOPS: MovableOperations = {
  /** @kernel mm/balloon_compaction.c balloon_page_isolate */
  isolatePage(pgdat, pfn) {
    if (pageTypeOf(pgdat.map, pfn) !== PageType.offline) return false;
    const b = balloonPageDevice(pgdat, pfn);
    listDel(pgdat.map, pfn);
    b.nrPages--;
    b.isolatedPages++;
    count(pgdat, VmEvent.compact_balloon_isolated);
    return true;
  },
  /** @kernel mm/balloon_compaction.c balloon_page_migrate */
  migratePage(pgdat, dst, src, mode) {
    const b = balloonPageDevice(pgdat, src);
    if (!b.migratepage) return MigrateResult.fail;
    const r = b.migratepage(b, dst, src, mode);
    if (r === MigrateResult.success) {
      setPageFlags(pgdat.map, src, pageFlags(pgdat.map, src) & ~PG.isolated);
      // the v10 series: migrated, and the old page released after migration
      count(pgdat, VmEvent.compact_balloon_migrated);
      count(pgdat, VmEvent.compact_balloon_released);
    }
    return r;
  },
  /** @kernel mm/balloon_compaction.c balloon_page_putback */
  putbackPage(pgdat, pfn) {
    const b = balloonPageDevice(pgdat, pfn);
    setPageFlags(pgdat.map, pfn, pageFlags(pgdat.map, pfn) & ~PG.isolated);
    listAdd(pgdat.map, pfn, b.pages);
    b.nrPages++;
    b.isolatedPages--;
    count(pgdat, VmEvent.compact_balloon_returned);
  },
};

/**
 * The migrate callback's bookkeeping on the balloon side (the first and last steps of
 * virtballoon_migratepage): the new page joins the balloon, the old one leaves it
 * (balloon_page_finalize). The driver tells the host in between.
 */
export function balloonPageReplace(b: BalloonDevInfo, newPfn: number, oldPfn: number): void {
  // newpage: given Owner.balloon by the migration core; now inserted
  balloonPageInsert(b, newPfn);
  b.isolatedPages--;
  b.pgdat.events[VmEvent.balloon_migrate] = b.pgdat.events[VmEvent.balloon_migrate]! + 1;
  // old page: no longer offline; the migration core releases it
  setPageType(b.pgdat.map, oldPfn, PageType.none);
}
