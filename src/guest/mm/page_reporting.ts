/**
 * Free page reporting (mm/page_reporting.c, include/linux/page_reporting.h): the
 * guest tells a device about free blocks of at least the reporting order (pageblock
 * order by default) so the host can discard their backing without a balloon target.
 *
 * Freeing a block of at least that order asks for a report; the request becomes a
 * delayed work item two seconds later, so a sizeable queue builds up. The worker walks
 * every zone's free lists from the reporting order up, skipping PageReported blocks,
 * isolates up to PAGE_REPORTING_CAPACITY blocks at a time (whole, off their lists),
 * hands them to the device and waits; on success the blocks go back to the tail of
 * their lists marked PageReported, unless they merged with a neighbour on the way back
 * (the bigger block is new to the host and will be reported on its own). A budget per
 * list (a sixteenth of its blocks per pass, plus one) keeps one pass short; what is
 * left waits for the next pass, two seconds on ("all pages on an idle system in about
 * 30 seconds"). A zone is skipped unless it is comfortably above its low watermark.
 * An allocation takes PageReported off a block (del_page_from_free_list).
 */
import {
  NO_PAGE, MAX_ORDER, MIGRATE_TYPES, PAGEBLOCK_ORDER, MigrateType, Owner, PG,
  listFirst, listNext, listDel, listAddTail, PageBuddy, PageReported, buddyOrder, setPageFlag,
} from './memmap.js';
import { type PgData, type Zone, Wmark, freeListHead } from './mmzone.js';
import { isolateFreeBlock, putbackIsolatedPage, zoneWatermarkOk } from './page_alloc.js';

/** Blocks per report (one scatterlist). */
export const PAGE_REPORTING_CAPACITY = 32;
/** Delay before a requested pass runs: 2 s. */
export const PAGE_REPORTING_DELAY_NS = 2_000_000_000;

/** prdev->state. */
export const enum PageReportingState {
  idle = 0,
  /** Someone freed a large block: a pass is (or will be) scheduled. */
  requested = 1,
  /** A pass is running. */
  active = 2,
}

/**
 * The device's report callback (prdev->report): the blocks in pfns/orders[start,
 * start+n) are isolated and must not be touched until it returns. Returns 0 on success
 * (the host has them), anything else on failure (the blocks go back unreported).
 */
export type PageReportFn = (pfns: Int32Array, orders: Int32Array, start: number, n: number) => number;

/** struct page_reporting_dev_info, with the scatterlist scratch and counters. */
export type PageReportingDevInfo = {
  pgdat: PgData;
  report: PageReportFn;
  /** page_reporting_order in effect. */
  order: number;
  state: PageReportingState;
  /** Schedules the delayed work (schedule_delayed_work). */
  schedule: (delayNs: number, fn: () => void) => void;
  /** The scatterlist: blocks fill it from the end (offset counts down), as in the kernel. */
  sgPfn: Int32Array;
  sgOrder: Int32Array;
  /** Passes run, reports sent, blocks and pages reported, reports that failed. */
  passes: number;
  reports: number;
  reportedBlocks: number;
  reportedPages: number;
  failedReports: number;
};

/**
 * @kernel mm/page_reporting.c page_reporting_register
 * Registers a device's report callback; order < 0 means the default (pageblock order).
 * Starts a first pass (the initial flush of the zones).
 */
export function pageReportingRegister(pgdat: PgData, report: PageReportFn, order: number, schedule: (delayNs: number, fn: () => void) => void): PageReportingDevInfo {
  const prdev: PageReportingDevInfo = {
    pgdat, report, order: order >= 0 && order < MAX_ORDER ? order : PAGEBLOCK_ORDER, state: PageReportingState.idle, schedule,
    sgPfn: new Int32Array(PAGE_REPORTING_CAPACITY), sgOrder: new Int32Array(PAGE_REPORTING_CAPACITY),
    passes: 0, reports: 0, reportedBlocks: 0, reportedPages: 0, failedReports: 0,
  };
  pgdat.hooks.pageReporting = { order: prdev.order, notify: () => pageReportingRequest(prdev) };
  pageReportingRequest(prdev);
  return prdev;
}

/** @kernel mm/page_reporting.c page_reporting_unregister */
export function pageReportingUnregister(prdev: PageReportingDevInfo): void {
  if (prdev.pgdat.hooks.pageReporting?.order === prdev.order) prdev.pgdat.hooks.pageReporting = null;
  prdev.state = PageReportingState.idle;
}

/**
 * @kernel mm/page_reporting.c __page_reporting_request
 * A large block was freed: schedule a pass in two seconds unless one is already
 * requested or running (a running pass sees the request and schedules another).
 */
export function pageReportingRequest(prdev: PageReportingDevInfo): void {
  if (prdev.state === PageReportingState.requested) return;
  const was = prdev.state;
  prdev.state = PageReportingState.requested;
  if (was !== PageReportingState.idle) return;
  prdev.schedule(PAGE_REPORTING_DELAY_NS, () => pageReportingProcess(prdev));
}

/**
 * @kernel mm/page_reporting.c page_reporting_process
 * One pass over every zone. If a request came in meanwhile, another pass follows in
 * two seconds.
 */
export function pageReportingProcess(prdev: PageReportingDevInfo): void {
  if (prdev.pgdat.hooks.pageReporting === null) return; // unregistered meanwhile
  prdev.state = PageReportingState.active;
  prdev.passes++;
  for (const zone of prdev.pgdat.zones) {
    if (!zone.managedPages) continue;
    if (pageReportingProcessZone(prdev, zone) !== 0) break;
  }
  if (prdev.state === PageReportingState.active) prdev.state = PageReportingState.idle;
  else if (prdev.state === PageReportingState.requested) prdev.schedule(PAGE_REPORTING_DELAY_NS, () => pageReportingProcess(prdev));
}

/**
 * @kernel mm/page_reporting.c page_reporting_drain
 * Puts reported blocks back on their free lists; those that did not merge on the way
 * back are marked PageReported when the report succeeded.
 */
function pageReportingDrain(prdev: PageReportingDevInfo, start: number, n: number, reported: boolean): void {
  const pgdat = prdev.pgdat;
  const map = pgdat.map;
  for (let i = start; i < start + n; i++) {
    const pfn = prdev.sgPfn[i]!, order = prdev.sgOrder[i]!;
    putbackIsolatedPage(pgdat, pfn, order);
    if (!reported) continue;
    if (PageBuddy(map, pfn) && buddyOrder(map, pfn) === order) setPageFlag(map, pfn, PG.reported);
  }
}

function sendReport(prdev: PageReportingDevInfo, start: number, n: number): number {
  prdev.reports++;
  const err = prdev.report(prdev.sgPfn, prdev.sgOrder, start, n);
  if (err === 0) {
    prdev.reportedBlocks += n;
    for (let i = start; i < start + n; i++) prdev.reportedPages += 1 << prdev.sgOrder[i]!;
  } else prdev.failedReports++;
  pageReportingDrain(prdev, start, n, err === 0);
  return err;
}

/** The scatterlist offset, shared by the cycles of one zone (the kernel's *offset). */
type Cursor = { offset: number };

/**
 * @kernel mm/page_reporting.c page_reporting_cycle
 * Walks one free list: isolates unreported blocks into the scatterlist, reports each
 * time it is full, within the list's budget. Leaves the first unprocessed block at the
 * head of the list so the next pass resumes there.
 */
function pageReportingCycle(prdev: PageReportingDevInfo, zone: Zone, order: number, mt: number, cur: Cursor): number {
  const map = prdev.pgdat.map;
  const head = freeListHead(zone, order, mt);
  if (listFirst(map, head) === NO_PAGE) return 0;
  let budget = Math.ceil(zone.nrFree[order]! / (PAGE_REPORTING_CAPACITY * 16));
  let err = 0;
  let page = listFirst(map, head);
  let next = page === NO_PAGE ? head : page;
  while (page !== NO_PAGE) {
    const after = listNext(map, page);
    next = after;
    if (PageReported(map, page)) { page = after === head ? NO_PAGE : after; continue; }
    if (budget < 0) {
      prdev.state = PageReportingState.requested;
      next = page;
      break;
    }
    if (cur.offset) {
      if (!isolateFreeBlock(prdev.pgdat, zone, page, order, Owner.reporting)) { next = page; break; }
      cur.offset--;
      prdev.sgPfn[cur.offset] = page;
      prdev.sgOrder[cur.offset] = order;
      page = after === head ? NO_PAGE : after;
      continue;
    }
    // The scatterlist is full: make this block the head (list_rotate_to_front), report.
    if (listFirst(map, head) !== page) rotateToFront(map, head, page);
    err = sendReport(prdev, 0, PAGE_REPORTING_CAPACITY);
    cur.offset = PAGE_REPORTING_CAPACITY;
    budget--;
    const first = listFirst(map, head);
    page = first;
    next = first === NO_PAGE ? head : first;
    if (err) break;
  }
  if (next !== head && next !== NO_PAGE && listFirst(map, head) !== next) rotateToFront(map, head, next);
  return err;
}

/** list_rotate_to_front(): entry becomes the first element (the head moves in front of it). */
function rotateToFront(map: PgData['map'], head: number, entry: number): void {
  listDel(map, head);
  listAddTail(map, head, entry);
}

/**
 * @kernel mm/page_reporting.c page_reporting_process_zone
 * Every free list of the zone from the reporting order up (all migratetypes but
 * Isolate), then whatever is left in the scatterlist. Skips the zone unless it is
 * above low watermark + capacity << order, to guarantee progress.
 */
function pageReportingProcessZone(prdev: PageReportingDevInfo, zone: Zone): number {
  const mark = zone.watermark[Wmark.low]! + (PAGE_REPORTING_CAPACITY << prdev.order);
  if (!zoneWatermarkOk(zone, 0, mark, 0, 0)) return 0;
  const cur: Cursor = { offset: PAGE_REPORTING_CAPACITY };
  for (let order = prdev.order; order < MAX_ORDER; order++) {
    for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
      if (mt === MigrateType.isolate) continue;
      const err = pageReportingCycle(prdev, zone, order, mt, cur);
      if (err) return err;
    }
  }
  const leftover = PAGE_REPORTING_CAPACITY - cur.offset;
  if (leftover) return sendReport(prdev, cur.offset, leftover);
  return 0;
}
