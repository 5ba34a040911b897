/**
 * Zones, the node (pglist_data), per-cpu pagesets and watermarks
 * (include/linux/mmzone.h, mm/page_alloc.c setup_per_zone_wmarks and friends).
 *
 * One NUMA node. Zones DMA (first 16 MiB), DMA32 (to 4 GiB) and Normal (above), plus
 * the always-empty Movable and Device zones that /proc/zoneinfo still prints.
 */
import {
  type MemMap, MAX_ORDER, MIGRATE_TYPES, PAGEBLOCK_NR_PAGES, MIGRATE_PCPTYPES, PAGE_ALLOC_COSTLY_ORDER,
  listHeadAlloc,
} from './memmap.js';
import { type CostTable, defaultCostTable } from '../../sim/cost.js';
import type { Process } from './process.js';
import { NR_ZONESTAT_ITEMS, NR_NUMASTAT_ITEMS, NR_NODESTAT_ITEMS, NR_VMEVENT_ITEMS } from './vmstat_items.js';

export const enum ZoneType {
  dma = 0,
  dma32 = 1,
  normal = 2,
  movable = 3,
  device = 4,
}
/** Zones with memory in the model (Movable and Device are always empty). */
export const NR_MODEL_ZONES = 3;
export const MAX_NR_ZONES = 5;
export const ZONE_NAMES: readonly string[] = ['DMA', 'DMA32', 'Normal', 'Movable', 'Device'];

/** transparent_hugepage/enabled: always, madvise (only MADV_HUGEPAGE memory), never. */
export type ThpEnabled = 'always' | 'madvise' | 'never';
/** transparent_hugepage/defrag: how hard a huge page fault tries (vma_thp_gfp_mask). */
export type ThpDefrag = 'always' | 'defer' | 'defer+madvise' | 'madvise' | 'never';
export const THP_ENABLED_MODES: readonly ThpEnabled[] = ['always', 'madvise', 'never'];
export const THP_DEFRAG_MODES: readonly ThpDefrag[] = ['always', 'defer', 'defer+madvise', 'madvise', 'never'];

/** enum lru_list. */
export const enum Lru {
  inactiveAnon = 0,
  activeAnon = 1,
  inactiveFile = 2,
  activeFile = 3,
  unevictable = 4,
}
export const NR_LRU_LISTS = 5;

/** The result of a non-LRU movable page's migrate callback (MIGRATEPAGE_SUCCESS, -EAGAIN, other errors). */
export const enum MigrateResult {
  success = 0,
  /** Try again later (e.g. the balloon lock is busy): the page is put back. */
  again = 1,
  /** Failed for good this time. */
  fail = 2,
}

/** Migration modes (enum migrate_mode). */
export const enum MigrateMode {
  async = 0,
  syncLight = 1,
  sync = 2,
}

/**
 * struct movable_operations (include/linux/migrate.h): how compaction moves pages that
 * are not on the LRU. isolatePage takes the page off its owner's lists; migratePage
 * moves its contents from src to dst (dst is a free page compaction isolated, already
 * given the source's owner); putbackPage returns an isolated page that was not moved.
 */
export type MovableOperations = {
  isolatePage(pgdat: PgData, pfn: number, mode: MigrateMode): boolean;
  migratePage(pgdat: PgData, dst: number, src: number, mode: MigrateMode): MigrateResult;
  putbackPage(pgdat: PgData, pfn: number): void;
};

/** Per-zone compaction state (struct zone's compact_* fields). */
export type ZoneCompactState = {
  /** compact_cached_migrate_pfn[sync?]: where the migrate scanner resumes. */
  cachedMigratePfn: [number, number];
  /** compact_cached_free_pfn: where the free scanner resumes. */
  cachedFreePfn: number;
  /** compact_considered, compact_defer_shift, compact_order_failed (deferral). */
  considered: number;
  deferShift: number;
  orderFailed: number;
  /** compact_blockskip_flush: clear the skip hints before the next run. */
  blockskipFlush: boolean;
};

export const enum Wmark {
  min = 0,
  low = 1,
  high = 2,
  promo = 3,
}

/**
 * Per-cpu page lists of one zone on one cpu (struct per_cpu_pages). NR_PCP_LISTS lists:
 * one per (pcp migratetype, order <= PAGE_ALLOC_COSTLY_ORDER), plus one for THP order.
 */
export const NR_LOWORDER_PCP_LISTS = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1);
export const NR_PCP_LISTS = NR_LOWORDER_PCP_LISTS + 1;

export type PerCpuPages = {
  /** Pages on all lists (in base pages). */
  count: number;
  /** High watermark: above it, pages are returned to the buddy in batches. */
  high: number;
  /** Chunk size for refills and drains. */
  batch: number;
  /** Doubles the drain size while frees run without allocations (6.1 free_factor). */
  freeFactor: number;
  /** Sentinel index of list 0; list i is at listBase + i. */
  listBase: number;
};

export type Zone = {
  idx: ZoneType;
  name: string;
  /** First memmap PFN of the zone. */
  zoneStartPfn: number;
  /** PFNs spanned (end - start), holes included. */
  spannedPages: number;
  /** Pages of RAM in the span. */
  presentPages: number;
  /** Pages handed to the buddy allocator (present minus memblock reservations). */
  managedPages: number;
  /** _watermark[min, low, high, promo]. */
  watermark: Float64Array;
  /** watermark_boost, raised by fragmenting fallbacks (boost_watermark). */
  watermarkBoost: number;
  /** ZONE_BOOSTED_WATERMARK: kswapd should be woken at the next allocation from this zone. */
  boostedWatermark: boolean;
  /** lowmem_reserve[classzone]: pages kept back from allocations that could use a higher zone. */
  lowmemReserve: Float64Array;
  /** nr_reserved_highatomic. */
  nrReservedHighatomic: number;
  /** Sentinel index of free_area[0].free_list[0]; list (o, mt) is at freeBase + o * MIGRATE_TYPES + mt. */
  freeBase: number;
  /** Free blocks per (order, migratetype) (what pagetypeinfo walks the lists to count). */
  nrFreeMt: Int32Array;
  /** free_area[order].nr_free. */
  nrFree: Int32Array;
  /** vm_stat[] (enum zone_stat_item). */
  vmStat: Float64Array;
  /** NUMA event counters (enum numa_stat_item). */
  numaStat: Float64Array;
  /** One pageset per cpu. */
  pcp: PerCpuPages[];
  /** Compaction's per-zone state. */
  compact: ZoneCompactState;
};

/** The node: all zones, node-level counters, vm events, tunables. */
export type PgData = {
  map: MemMap;
  /** ZONE_DMA, ZONE_DMA32, ZONE_NORMAL (possibly empty), indexed by ZoneType. */
  zones: Zone[];
  /** Number of cpus (pagesets per zone). */
  nrCpus: number;
  /** The cpu doing the current allocation (this_cpu). */
  cpu: number;
  /** enum node_stat_item counters. */
  nodeStat: Float64Array;
  /** enum vm_event_item counters. */
  events: Float64Array;
  /** Pages held, by Owner (the checker compares a page walk against this). */
  ownerPages: Float64Array;
  /** vm.min_free_kbytes in effect. */
  minFreeKbytes: number;
  /** vm.watermark_scale_factor (default 10 = 0.1%). */
  watermarkScaleFactor: number;
  /** vm.watermark_boost_factor (default 15000 = 150% of high). */
  watermarkBoostFactor: number;
  /** vm.lowmem_reserve_ratio. */
  lowmemReserveRatio: number[];
  /**
   * Movable operations of non-LRU movable pages (__PageMovable), by owner: the balloon
   * registers its isolate/migrate/putback here when balloon compaction is on.
   */
  movableOps: Array<MovableOperations | null>;
  /** Sentinel index of the first LRU list; list l (enum Lru) is at lruBase + l. */
  lruBase: number;
  /** Fallbacks that took a block of another migratetype (the mm_page_alloc_extfrag tracepoint). */
  extfragEvents: number;
  /** The cost table in effect (virtual ns per unit of work). */
  costs: CostTable;
  /**
   * Virtual time allocating tasks have spent stalled in the slow path (direct reclaim
   * and compaction), ns. Workloads read and charge it to the task that allocated.
   */
  stallNs: number;
  /** Virtual time kswapd and kcompactd have worked, ns (background CPU time). */
  daemonNs: number;
  /** The swap device: size and use in pages (0 = no swap). */
  swap: { totalPages: number; usedPages: number };
  /** /sys/kernel/mm/transparent_hugepage/{enabled,defrag}. */
  thp: { enabled: ThpEnabled; defrag: ThpDefrag };
  /** vm.swappiness (0-200, default 60). */
  swappiness: number;
  /** vm.compaction_proactiveness (0-100, default 20; 0 turns proactive compaction off). */
  compactionProactiveness: number;
  /**
   * Processes by pid (process.ts). Reclaim needs them as the reverse map does: a page
   * swapped out or a process killed by the OOM killer changes its owner's counters.
   */
  procs: Map<number, Process>;
  /** Seam for the allocation slow path (reclaim, compaction): null until installed. */
  slowpath: AllocSlowpathHook | null;
  /** Called when an allocation wants kswapd woken (a zone's watermark got boosted, or the slow path). */
  wakeupKswapd: ((pgdat: PgData, zone: Zone, order: number) => void) | null;
  /**
   * Free page reporting (page_reporting.ts) when a device registered it: told when a
   * block of at least `order` is freed (page_reporting_notify_free). Null otherwise.
   */
  pageReporting: { order: number; notify: () => void } | null;
  /**
   * The hardware seam for the guest writing whole pages: zeroing on allocation
   * (init_on_alloc), poisoning or zeroing on free (init_on_free, page_poison), copying
   * in migration. The machine connects it to the host's RAM backing (which faults the
   * page in); null for a guest on its own. Memmap PFNs.
   */
  pageWrite: ((pfn: number, nr: number, what: PageWrite) => void) | null;
  /** The same seam for a page copied from another (migration): dst gets src's contents. */
  pageCopy: ((dst: number, src: number) => void) | null;
  /** init_on_alloc=1 (Debian's default): every allocation is zeroed, so written. */
  initOnAlloc: boolean;
  /** init_on_free=1 or page_poison=1: freed pages are written (zeroed or poisoned). */
  initOnFree: boolean;
  /** page_poison=1: freed pages hold PAGE_POISON bytes rather than zeroes. */
  pagePoisoning: boolean;
  /** Registered shrinkers (register_shrinker), asked for objects during reclaim. */
  shrinkers: Shrinker[];
  /** OOM notifiers (register_oom_notifier): called before the OOM killer; each returns pages it freed. */
  oomNotifiers: Array<(pgdat: PgData) => number>;
};

/** What a whole-page write leaves in the page (the content class the host can see). */
export const enum PageWrite {
  /** Zeroed (init_on_alloc, __GFP_ZERO, init_on_free). */
  zero = 0,
  /** Written with data (a process, the page cache, the kernel). */
  data = 1,
  /** Filled with PAGE_POISON (page_poison=1 on free). */
  poison = 2,
}

/**
 * struct shrinker: countObjects says how many objects could be freed, scanObjects
 * frees up to nrToScan of them and returns how many it freed (SHRINK_STOP as -1).
 * Objects are pages for every shrinker the model has.
 */
export type Shrinker = {
  name: string;
  countObjects(pgdat: PgData): number;
  scanObjects(pgdat: PgData, nrToScan: number): number;
  /** shrinker->seeks (DEFAULT_SEEKS = 2). */
  seeks: number;
};

/**
 * The slow-path seam: reclaim and compaction install a function here. It is called
 * after the fast path and the min-watermark retry both failed, and returns a PFN or -1.
 */
export type AllocSlowpathHook = (pgdat: PgData, gfp: number, order: number, owner: number) => number;

export function freeListHead(zone: Zone, order: number, mt: number): number {
  return zone.freeBase + order * MIGRATE_TYPES + mt;
}

export function zoneEndPfn(zone: Zone): number {
  return zone.zoneStartPfn + zone.spannedPages;
}

export function populatedZone(zone: Zone): boolean {
  return zone.presentPages > 0;
}

export function managedZone(zone: Zone): boolean {
  return zone.managedPages > 0;
}

export function zoneSpansPfn(zone: Zone, pfn: number): boolean {
  return pfn >= zone.zoneStartPfn && pfn < zone.zoneStartPfn + zone.spannedPages;
}

/**
 * @kernel include/linux/mmzone.h wmark_pages
 * wmark_pages(): the watermark plus the current boost.
 */
export function wmarkPages(zone: Zone, w: Wmark): number {
  return zone.watermark[w]! + zone.watermarkBoost;
}

export function createZone(map: MemMap, idx: ZoneType, start: number, spanned: number, present: number, nrCpus: number): Zone {
  const freeBase = map.nrPages + map.nrListHeads;
  for (let i = 0; i < MAX_ORDER * MIGRATE_TYPES; i++) listHeadAlloc(map);
  const pcp: PerCpuPages[] = [];
  for (let c = 0; c < nrCpus; c++) {
    const listBase = map.nrPages + map.nrListHeads;
    for (let i = 0; i < NR_PCP_LISTS; i++) listHeadAlloc(map);
    pcp.push({ count: 0, high: 0, batch: 1, freeFactor: 0, listBase });
  }
  return {
    idx, name: ZONE_NAMES[idx]!, zoneStartPfn: start, spannedPages: spanned, presentPages: present, managedPages: 0,
    watermark: new Float64Array(4), watermarkBoost: 0, boostedWatermark: false,
    lowmemReserve: new Float64Array(MAX_NR_ZONES), nrReservedHighatomic: 0, freeBase,
    nrFreeMt: new Int32Array(MAX_ORDER * MIGRATE_TYPES), nrFree: new Int32Array(MAX_ORDER),
    vmStat: new Float64Array(NR_ZONESTAT_ITEMS), numaStat: new Float64Array(NR_NUMASTAT_ITEMS), pcp,
    compact: { cachedMigratePfn: [start, start], cachedFreePfn: Math.max(start, (start + spanned - 1) & ~(PAGEBLOCK_NR_PAGES - 1)), considered: 0, deferShift: 0, orderFailed: MAX_ORDER, blockskipFlush: false },
  };
}

export function createPgData(map: MemMap, nrCpus: number): PgData {
  const lruBase = map.nrPages + map.nrListHeads;
  for (let l = 0; l < NR_LRU_LISTS; l++) listHeadAlloc(map);
  return {
    map, zones: [], nrCpus, cpu: 0,
    nodeStat: new Float64Array(NR_NODESTAT_ITEMS), events: new Float64Array(NR_VMEVENT_ITEMS),
    ownerPages: new Float64Array(16), minFreeKbytes: 0, watermarkScaleFactor: 10, watermarkBoostFactor: 15000,
    lowmemReserveRatio: [256, 256, 32, 0, 0], movableOps: new Array<MovableOperations | null>(16).fill(null),
    lruBase, extfragEvents: 0, costs: defaultCostTable(), stallNs: 0, daemonNs: 0,
    swap: { totalPages: 0, usedPages: 0 }, swappiness: 60, compactionProactiveness: 20, procs: new Map(),
    thp: { enabled: 'always', defrag: 'madvise' }, slowpath: null, wakeupKswapd: null,
    pageReporting: null, pageWrite: null, pageCopy: null, initOnAlloc: true, initOnFree: false, pagePoisoning: false, shrinkers: [], oomNotifiers: [],
  };
}

/** Total managed pages of all zones (totalram_pages). */
export function totalramPages(pgdat: PgData): number {
  let n = 0;
  for (const z of pgdat.zones) n += z.managedPages;
  return n;
}

/**
 * @kernel lib/math/int_sqrt.c int_sqrt
 * The integer square root, rounded down (calculate_min_free_kbytes takes it of lowmem in KiB x 16).
 */
function intSqrt(x: number): number {
  return Math.floor(Math.sqrt(x));
}

/**
 * @kernel mm/page_alloc.c calculate_min_free_kbytes
 * calculate_min_free_kbytes() (init_per_zone_wmark_min): sqrt(lowmem_kbytes * 16),
 * clamped to [128, 262144]; then, with THP enabled, set_recommended_min_free_kbytes()
 * raises it to cover two free pageblocks per zone plus MIGRATE_PCPTYPES^2 pageblocks
 * per zone for fallbacks, capped at 5% of lowmem.
 */
export function defaultMinFreeKbytes(pgdat: PgData, thp: boolean): number {
  const lowmemPages = totalramPages(pgdat);
  const lowmemKbytes = lowmemPages * 4;
  let minFree = intSqrt(lowmemKbytes * 16);
  minFree = Math.min(Math.max(minFree, 128), 262144);
  if (thp) {
    let nrZones = 0;
    for (const z of pgdat.zones) if (populatedZone(z)) nrZones++;
    let recommended = PAGEBLOCK_NR_PAGES * nrZones * 2;
    recommended += PAGEBLOCK_NR_PAGES * nrZones * MIGRATE_PCPTYPES * MIGRATE_PCPTYPES;
    recommended = Math.min(recommended, Math.floor(lowmemPages / 20));
    recommended *= 4;
    if (recommended > minFree) minFree = recommended;
  }
  return minFree;
}

/**
 * @kernel mm/page_alloc.c __setup_per_zone_wmarks
 * __setup_per_zone_wmarks(): min is min_free_kbytes split across zones by managed
 * size; low and high each add max(min/4, managed * watermark_scale_factor / 10000).
 */
export function setupPerZoneWmarks(pgdat: PgData): void {
  const pagesMin = pgdat.minFreeKbytes >> 2;
  let lowmemPages = 0;
  for (const z of pgdat.zones) lowmemPages += z.managedPages;
  for (const z of pgdat.zones) {
    const tmp = lowmemPages ? Math.floor((pagesMin * z.managedPages) / lowmemPages) : 0;
    z.watermark[Wmark.min] = tmp;
    const gap = Math.max(tmp >> 2, Math.floor((z.managedPages * pgdat.watermarkScaleFactor) / 10000));
    z.watermarkBoost = 0;
    z.watermark[Wmark.low] = tmp + gap;
    z.watermark[Wmark.high] = tmp + 2 * gap;
    z.watermark[Wmark.promo] = tmp + 3 * gap;
  }
}

/**
 * @kernel mm/page_alloc.c setup_per_zone_lowmem_reserve
 * How many pages each zone keeps back from allocations that could have used a higher
 * zone: the managed pages of the zones above, divided by that zone's
 * lowmem_reserve_ratio (256 for DMA and DMA32, 32 for Normal). A zone with a ratio of
 * 0 or no managed pages reserves nothing.
 */
export function setupPerZoneLowmemReserve(pgdat: PgData): void {
  const zones = pgdat.zones;
  for (let i = 0; i < MAX_NR_ZONES - 1; i++) {
    const z = zones[i];
    if (!z) continue;
    const ratio = pgdat.lowmemReserveRatio[i] ?? 0;
    const clear = !ratio || !z.managedPages;
    let managed = 0;
    for (let j = i + 1; j < MAX_NR_ZONES; j++) {
      managed += zones[j]?.managedPages ?? 0;
      z.lowmemReserve[j] = clear ? 0 : Math.floor(managed / ratio);
    }
  }
}

/**
 * @kernel include/linux/log2.h rounddown_pow_of_two
 * The largest power of two not above x (0 for x < 1).
 */
function rounddownPow2(x: number): number {
  return x < 1 ? 0 : 2 ** Math.floor(Math.log2(x));
}

/**
 * @kernel mm/page_alloc.c zone_batchsize
 * The pcp batch: about a quarter of a thousandth of the zone (at most 1 MiB worth),
 * then rounded to 2^n - 1 so that batches do not keep hitting the same cache colours.
 */
export function zoneBatchsize(zone: Zone): number {
  let batch = Math.min(zone.managedPages >> 10, (1024 * 1024) / 4096);
  batch = Math.floor(batch / 4);
  if (batch < 1) batch = 1;
  return rounddownPow2(batch + (batch >> 1)) - 1;
}

/**
 * @kernel mm/page_alloc.c zone_highsize
 * zone_highsize(): the low watermark split across the node's cpus, at least 4 batches.
 */
export function zoneHighsize(zone: Zone, batch: number, nrCpus: number): number {
  const high = Math.floor(zone.watermark[Wmark.low]! / nrCpus);
  return Math.max(high, batch << 2);
}

/**
 * @kernel mm/page_alloc.c zone_set_pageset_high_and_batch
 * Sets every cpu's pageset in every zone to the zone's batch and high marks; called
 * again whenever the watermarks change (min_free_kbytes).
 */
export function setupPagesets(pgdat: PgData): void {
  for (const z of pgdat.zones) {
    const batch = Math.max(1, zoneBatchsize(z));
    const high = zoneHighsize(z, batch, pgdat.nrCpus);
    for (const p of z.pcp) { p.batch = batch; p.high = high; }
  }
}
