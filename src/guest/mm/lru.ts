/**
 * The LRU lists (mm/swap.c lru_cache_add, mm/vmscan.c isolate_lru_page and
 * putback_lru_page, include/linux/mm_inline.h).
 *
 * One node, five lists (inactive/active anon, inactive/active file, unevictable),
 * threaded through the pages' shared list links. New anonymous and file pages start
 * on the inactive list, as in 6.x. The per-node (nr_inactive_anon ...) and per-zone
 * (nr_zone_inactive_anon ...) counters follow every move. Reclaim (vmscan.ts, next)
 * ages and scans these lists; compaction isolates pages from them.
 */
import { type MemMap, PG, listAdd, listAddTail, listDel, pageFlags, pageOrder, setPageFlags } from './memmap.js';
import { type PgData, Lru, pfnZone } from './mmzone.js';
import { NodeStat, ZoneStat } from './vmstat_items.js';

const NODE_LRU_STAT = [NodeStat.nr_inactive_anon, NodeStat.nr_active_anon, NodeStat.nr_inactive_file, NodeStat.nr_active_file, NodeStat.nr_unevictable];
const ZONE_LRU_STAT = [ZoneStat.nr_zone_inactive_anon, ZoneStat.nr_zone_active_anon, ZoneStat.nr_zone_inactive_file, ZoneStat.nr_zone_active_file, ZoneStat.nr_zone_unevictable];

/** @kernel include/linux/mm_inline.h folio_lru_list: which list a page belongs on. */
export function pageLruList(map: MemMap, pfn: number): Lru {
  const f = pageFlags(map, pfn);
  const file = (f & PG.swapbacked) === 0;
  return (file ? Lru.inactiveFile : Lru.inactiveAnon) + ((f & PG.active) !== 0 ? 1 : 0);
}

/** Base pages a page on the LRU stands for: 2^order for a compound head (a THP), else 1. */
export function lruPages(map: MemMap, pfn: number): number {
  return (pageFlags(map, pfn) & PG.head) !== 0 ? 1 << pageOrder(map, pfn) : 1;
}

/** @kernel include/linux/mm_inline.h update_lru_size: n more (or fewer) pages on list lru, node and zone counters both. */
export function updateLruSize(pgdat: PgData, pfn: number, lru: Lru, n: number): void {
  const ns = pgdat.nodeStat;
  const k = NODE_LRU_STAT[lru]!;
  ns[k] = ns[k]! + n;
  const zs = pfnZone(pgdat, pfn).vmStat;
  const z = ZONE_LRU_STAT[lru]!;
  zs[z] = zs[z]! + n;
}

/** @kernel mm/swap.c lru_cache_add: the page joins the head of its LRU list. */
export function lruCacheAdd(pgdat: PgData, pfn: number): void {
  const map = pgdat.map;
  const lru = pageLruList(map, pfn);
  setPageFlags(map, pfn, pageFlags(map, pfn) | PG.lru);
  listAdd(map, pfn, pgdat.lruBase + lru);
  updateLruSize(pgdat, pfn, lru, lruPages(map, pfn));
}

/** @kernel include/linux/mm_inline.h del_page_from_lru_list: off the LRU, PG_lru cleared. */
export function delPageFromLruList(pgdat: PgData, pfn: number): void {
  const map = pgdat.map;
  const lru = pageLruList(map, pfn);
  listDel(map, pfn);
  setPageFlags(map, pfn, pageFlags(map, pfn) & ~PG.lru);
  updateLruSize(pgdat, pfn, lru, -lruPages(map, pfn));
}

function isolatedStat(map: MemMap, pfn: number): NodeStat {
  return (pageFlags(map, pfn) & PG.swapbacked) !== 0 ? NodeStat.nr_isolated_anon : NodeStat.nr_isolated_file;
}

/**
 * @kernel mm/vmscan.c isolate_lru_page
 * Takes a page off the LRU for migration or reclaim; false if it is not on the LRU.
 */
export function isolateLruPage(pgdat: PgData, pfn: number): boolean {
  if ((pageFlags(pgdat.map, pfn) & PG.lru) === 0) return false;
  delPageFromLruList(pgdat, pfn);
  const k = isolatedStat(pgdat.map, pfn);
  pgdat.nodeStat[k] = pgdat.nodeStat[k]! + lruPages(pgdat.map, pfn);
  return true;
}

/** @kernel mm/vmscan.c putback_lru_page: an isolated page goes back on its LRU list. */
export function putbackLruPage(pgdat: PgData, pfn: number): void {
  const k = isolatedStat(pgdat.map, pfn);
  pgdat.nodeStat[k] = pgdat.nodeStat[k]! - lruPages(pgdat.map, pfn);
  lruCacheAdd(pgdat, pfn);
}

/**
 * @kernel mm/huge_memory.c lru_add_page_tail
 * A subpage of a THP being split joins the LRU list of its head, just before it.
 */
export function lruAddPageTail(pgdat: PgData, head: number, tail: number): void {
  const map = pgdat.map;
  setPageFlags(map, tail, pageFlags(map, tail) | PG.lru);
  listAddTail(map, tail, head);
  updateLruSize(pgdat, tail, pageLruList(map, tail), 1);
}
