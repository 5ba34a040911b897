/**
 * khugepaged (mm/khugepaged.c): collapses small anonymous pages into huge pages in
 * the background, by virtual range.
 *
 * Every scan_sleep_millisecs (10 s) it goes on from where the last pass stopped
 * (khugepaged_scan: a process and an address), over the 2 MiB-aligned ranges that lie
 * wholly inside mappings THP may use, pages_to_scan (4096) base pages' worth a pass
 * (each range counts 512, as khugepaged_scan_mm_slot's progress does). A range is
 * collapsed when its PTE table maps at least one page and no more than max_ptes_none
 * (511) ptes are empty, none holds a swap entry, no page is a THP's, and all are on the
 * LRU (hpage_collapse_scan_pmd): khugepaged allocates a huge page (with direct reclaim
 * and compaction when khugepaged/defrag is on, the default), copies the pages into it,
 * zero-fills the empty ptes, frees the small pages and maps the huge page with the PTE
 * table deposited (thp_collapse_alloc), or counts thp_collapse_alloc_failed and ends
 * the pass.
 */
import { NO_PAGE, Owner, PAGEBLOCK_ORDER, PAGEBLOCK_NR_PAGES, MIGRATE_PCPTYPES, PG, pageFlags } from './memmap.js';
import { type PgData, ZoneType, populatedZone } from './mmzone.js';
import { allocPages, freePages, nrFreeBufferPages, calculateMinFreeKbytes, updatePerZoneWmarks } from './page_alloc.js';
import { GFP_TRANSHUGE, GFP_TRANSHUGE_LIGHT, __GFP_COMP } from './gfp.js';
import { delPageFromLruList } from './lru.js';
import { type Process, type Pmd, HPAGE_PMD_NR, PTE_NONE, processThpEligible, vmaThpAllowed, mapAnonHugePage } from './process.js';
import { VmEvent } from './vmstat_items.js';

/** /sys/kernel/mm/transparent_hugepage/khugepaged/{pages_to_scan,scan_sleep_millisecs,defrag,max_ptes_none}. */
export const KHUGEPAGED_PAGES_TO_SCAN = 4096;
export const KHUGEPAGED_SCAN_SLEEP_NS = 10e9;
export const KHUGEPAGED_MAX_PTES_NONE = HPAGE_PMD_NR - 1;

/** Whether the PTE table of a range may be collapsed (hpage_collapse_scan_pmd's checks); returns the pages it maps, or 0. */
function collapsible(pgdat: PgData, pmd: Pmd): number {
  const pte = pmd.pte;
  if (pte === null || pmd.swapped > 0 || pmd.present === 0 || HPAGE_PMD_NR - pmd.present > KHUGEPAGED_MAX_PTES_NONE) return 0;
  const map = pgdat.map;
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const e = pte[i]!;
    if (e === PTE_NONE) continue;
    if ((pageFlags(map, e) & (PG.head | PG.tail | PG.lru)) !== PG.lru) return 0; // SCAN_PAGE_COMPOUND, SCAN_PAGE_LRU
  }
  return pmd.present;
}

/**
 * @kernel mm/khugepaged.c collapse_huge_page
 * Collapses one range of a process into a new huge page; false when the allocation
 * failed (the pass ends) — a range the allocation changed is left for a later pass.
 */
function collapseHugePage(pgdat: PgData, proc: Process, pmdIdx: number, pmd: Pmd, gfp: number): boolean {
  const hpage = allocPages(pgdat, gfp, PAGEBLOCK_ORDER, Owner.anon);
  if (hpage === NO_PAGE) {
    pgdat.events[VmEvent.thp_collapse_alloc_failed] = pgdat.events[VmEvent.thp_collapse_alloc_failed]! + 1;
    return false;
  }
  // __collapse_huge_page_isolate: the allocation may have reclaimed, migrated or OOM-killed; look again
  if (!pgdat.tasks.procs.has(proc.pid) || proc.mm.pmds.get(pmdIdx) !== pmd || collapsible(pgdat, pmd) === 0) {
    freePages(pgdat, hpage, PAGEBLOCK_ORDER);
    return true;
  }
  const pte = pmd.pte!;
  const present = pmd.present;
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const e = pte[i]!;
    if (e === PTE_NONE) continue;
    delPageFromLruList(pgdat, e);
    freePages(pgdat, e, 0);
  }
  proc.rssAnon -= present;
  mapAnonHugePage(pgdat, proc, pmdIdx, pmd, hpage);
  // __collapse_huge_page_copy: the mapped pages copied, the empty ptes' pages zeroed
  pgdat.daemonNs += present * pgdat.costs.migratePage + (HPAGE_PMD_NR - present) * pgdat.costs.clearPage;
  pgdat.events[VmEvent.thp_collapse_alloc] = pgdat.events[VmEvent.thp_collapse_alloc]! + 1;
  return true;
}

/**
 * @kernel mm/khugepaged.c khugepaged_do_scan, khugepaged_scan_mm_slot
 * One scan pass; returns the number of huge pages collapsed.
 */
export function khugepagedScan(pgdat: PgData, pagesToScan = KHUGEPAGED_PAGES_TO_SCAN, defrag = true): number {
  if (pgdat.sysctl.thp.enabled === 'never') return 0;
  const gfp = (defrag ? GFP_TRANSHUGE : GFP_TRANSHUGE_LIGHT) | __GFP_COMP;
  const procs = [...pgdat.tasks.procs.values()].filter((p) => processThpEligible(pgdat, p)).sort((a, b) => a.pid - b.pid);
  if (procs.length === 0) return 0;
  const cur = pgdat.khugepagedCursor;
  let first = procs.findIndex((p) => p.pid >= cur.pid);
  if (first < 0) { first = 0; cur.pmdIdx = 0; }
  if (procs[first]!.pid !== cur.pid) cur.pmdIdx = 0;
  let progress = 0, collapsed = 0;
  // each process once, from the cursor round (the first one again from its start at the end)
  for (let k = 0; k <= procs.length && progress < pagesToScan; k++) {
    const proc = procs[(first + k) % procs.length]!;
    if (!pgdat.tasks.procs.has(proc.pid)) continue;
    const from = k === 0 ? cur.pmdIdx : 0;
    let done = true;
    for (const vma of [...proc.mm.vmas]) {
      if (!vmaThpAllowed(pgdat, vma)) { progress++; continue; }
      for (let idx = Math.max(from, Math.ceil(vma.start / HPAGE_PMD_NR)); (idx + 1) * HPAGE_PMD_NR <= vma.end; idx++) {
        if (progress >= pagesToScan) { cur.pid = proc.pid; cur.pmdIdx = idx; done = false; break; }
        progress += HPAGE_PMD_NR;
        const pmd = proc.mm.pmds.get(idx);
        if (pmd === undefined || collapsible(pgdat, pmd) === 0) continue;
        if (!collapseHugePage(pgdat, proc, idx, pmd, gfp)) { cur.pid = proc.pid; cur.pmdIdx = idx; return collapsed; }
        if (proc.mm.pmds.get(idx)?.pte === null) collapsed++;
        if (!pgdat.tasks.procs.has(proc.pid)) break;
      }
      if (!done || !pgdat.tasks.procs.has(proc.pid)) break;
    }
    if (!done) return collapsed;
    // this process is scanned through: the next one from its start
    const next = procs[(first + k + 1) % procs.length]!;
    cur.pid = next.pid;
    cur.pmdIdx = 0;
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
