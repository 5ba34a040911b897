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
import { NO_PAGE, Owner, PAGEBLOCK_ORDER, PAGEBLOCK_NR_PAGES, MIGRATE_PCPTYPES, PG, pageFlags } from './memmap.js';
import { type PgData, ZoneType, populatedZone } from './mmzone.js';
import { allocPages, freePages, nrFreeBufferPages, calculateMinFreeKbytes, updatePerZoneWmarks } from './page_alloc.js';
import { GFP_TRANSHUGE, GFP_TRANSHUGE_LIGHT, __GFP_COMP } from './gfp.js';
import { delPageFromLruList } from './lru.js';
import { processPages, processThpEligibility, vmaThpAllowed, resolvePlaces, placeOf, mapAnonHugePage, isProcessPage, VMA_SPAN } from './process.js';
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
    const eligible = processThpEligibility(pgdat, proc);
    if (eligible === 'none') continue;
    const small: number[] = [];
    for (const pfn of processPages(pgdat, proc)) {
      if ((pageFlags(map, pfn) & (PG.head | PG.lru)) === PG.lru) small.push(pfn);
    }
    if (eligible === 'some') {
      // only the pages of mappings THP may use (hugepage_vma_check per VMA)
      const at = resolvePlaces(proc);
      const ok = proc.vmas.map((v) => vmaThpAllowed(pgdat, proc, v));
      const keep = small.filter((pfn) => ok[Math.floor((at.get(pfn) ?? 0) / VMA_SPAN)] === true);
      small.length = 0;
      small.push(...keep);
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
      // the huge page takes the place of the range's first page (the model's ranges are physical, not virtual)
      mapAnonHugePage(pgdat, proc, hpage, placeOf(small[i]!));
      pgdat.daemonNs += HPAGE_PMD_NR * pgdat.costs.migratePage;
      pgdat.events[VmEvent.thp_collapse_alloc] = pgdat.events[VmEvent.thp_collapse_alloc]! + 1;
      collapsed++;
    }
  }
  return collapsed;
}

/**
 * @kernel mm/khugepaged.c set_recommended_min_free_kbytes
 * With THP enabled: raise min_free_kbytes (never lower it) to keep two free pageblocks
 * per zone plus MIGRATE_PCPTYPES^2 pageblocks per zone for fallbacks, capped at 5% of
 * lowmem (nr_free_buffer_pages). With THP off: the plain default again
 * (calculate_min_free_kbytes, which keeps a larger value the user wrote). Either way
 * the watermarks and pagesets are set up again.
 */
export function setRecommendedMinFreeKbytes(pgdat: PgData): void {
  if (pgdat.sysctl.thp.enabled === 'never') {
    calculateMinFreeKbytes(pgdat);
  } else {
    let nrZones = 0;
    for (const z of pgdat.zones) if (populatedZone(z) && z.idx <= ZoneType.normal) nrZones++;
    let recommended = PAGEBLOCK_NR_PAGES * nrZones * 2;
    recommended += PAGEBLOCK_NR_PAGES * nrZones * MIGRATE_PCPTYPES * MIGRATE_PCPTYPES;
    recommended = Math.min(recommended, Math.floor(nrFreeBufferPages(pgdat) / 20));
    recommended *= 4; // pages to KiB
    if (recommended > pgdat.sysctl.minFreeKbytes) pgdat.sysctl.minFreeKbytes = recommended;
  }
  updatePerZoneWmarks(pgdat);
}

/**
 * @kernel mm/khugepaged.c start_stop_khugepaged
 * After transparent_hugepage/enabled changed: khugepaged runs while THP is enabled
 * (the model's khugepaged wakes every scan_sleep_millisecs regardless and does nothing
 * with enabled=never), and min_free_kbytes follows (set_recommended_min_free_kbytes).
 */
export function startStopKhugepaged(pgdat: PgData): void {
  setRecommendedMinFreeKbytes(pgdat);
}
