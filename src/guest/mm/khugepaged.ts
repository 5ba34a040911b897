/**
 * khugepaged (mm/khugepaged.c): collapses small anonymous pages into huge pages in
 * the background.
 *
 * Every scan_sleep_millisecs (10 s) it looks at up to pages_to_scan (4096) pages of
 * processes whose memory may use THP. Without virtual addresses in the model, a
 * "2 MiB range" is 512 of the process's small pages taken in physical order: for each,
 * khugepaged allocates a huge page (with direct reclaim and compaction when
 * khugepaged/defrag is on, the default), copies the 512 pages into it and frees them
 * (thp_collapse_alloc), or counts thp_collapse_alloc_failed and stops the scan.
 */
import { NO_PAGE, Owner, PAGEBLOCK_ORDER, PG, pageFlags } from './memmap.js';
import { type PgData } from './mmzone.js';
import { allocPages, freePages } from './page_alloc.js';
import { GFP_TRANSHUGE, GFP_TRANSHUGE_LIGHT, __GFP_COMP } from './gfp.js';
import { delPageFromLruList } from './lru.js';
import { processPages, thpAllowed, mapAnonHugePage, isProcessPage } from './process.js';
import { VmEvent } from './vmstat_items.js';

/** /sys/kernel/mm/transparent_hugepage/khugepaged/{pages_to_scan,scan_sleep_millisecs,defrag}. */
export const KHUGEPAGED_PAGES_TO_SCAN = 4096;
export const KHUGEPAGED_SCAN_SLEEP_NS = 10e9;

const HPAGE_PMD_NR = 1 << PAGEBLOCK_ORDER;

/**
 * @kernel mm/khugepaged.c khugepaged_do_scan
 * One scan pass; returns the number of huge pages collapsed.
 */
export function khugepagedScan(pgdat: PgData, pagesToScan = KHUGEPAGED_PAGES_TO_SCAN, defrag = true): number {
  if (pgdat.sysctl.thp.enabled === 'never') return 0;
  const map = pgdat.map;
  const gfp = (defrag ? GFP_TRANSHUGE : GFP_TRANSHUGE_LIGHT) | __GFP_COMP;
  let budget = pagesToScan;
  let collapsed = 0;
  for (const proc of [...pgdat.tasks.procs.values()].sort((a, b) => a.pid - b.pid)) {
    if (budget <= 0) break;
    if (!thpAllowed(pgdat, proc)) continue;
    const small: number[] = [];
    for (const pfn of processPages(pgdat, proc)) {
      if ((pageFlags(map, pfn) & (PG.head | PG.lru)) === PG.lru) small.push(pfn);
    }
    for (let i = 0; i + HPAGE_PMD_NR <= small.length && budget > 0; i += HPAGE_PMD_NR) {
      budget -= HPAGE_PMD_NR;
      const hpage = allocPages(pgdat, gfp, PAGEBLOCK_ORDER, Owner.anon);
      if (hpage === NO_PAGE) {
        pgdat.events[VmEvent.thp_collapse_alloc_failed] = pgdat.events[VmEvent.thp_collapse_alloc_failed]! + 1;
        return collapsed;
      }
      // __collapse_huge_page_isolate: the allocation may have reclaimed or migrated some
      // of the pages (direct compaction); look again, and give up on this range if so.
      let intact = true;
      for (let k = i; k < i + HPAGE_PMD_NR && intact; k++) intact = isProcessPage(pgdat, proc.pid, small[k]!);
      if (!intact) {
        freePages(pgdat, hpage, PAGEBLOCK_ORDER);
        pgdat.events[VmEvent.thp_collapse_alloc_failed] = pgdat.events[VmEvent.thp_collapse_alloc_failed]! + 1;
        break; // this process's list is stale; the next scan looks again
      }
      // collapse_huge_page: copy the 512 pages, free them, map the huge page
      for (let k = i; k < i + HPAGE_PMD_NR; k++) {
        const pfn = small[k]!;
        delPageFromLruList(pgdat, pfn);
        freePages(pgdat, pfn, 0);
      }
      proc.rssAnon -= HPAGE_PMD_NR;
      mapAnonHugePage(pgdat, proc, hpage);
      pgdat.daemonNs += HPAGE_PMD_NR * pgdat.costs.migratePage;
      pgdat.events[VmEvent.thp_collapse_alloc] = pgdat.events[VmEvent.thp_collapse_alloc]! + 1;
      collapsed++;
    }
  }
  return collapsed;
}
