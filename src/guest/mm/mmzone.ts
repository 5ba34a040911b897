/**
 * Zones, the node (pglist_data) and per-cpu pagesets (include/linux/mmzone.h); the
 * watermark and pageset setup that fills them in is page_alloc.ts's, as it is
 * mm/page_alloc.c's.
 *
 * One NUMA node. Zones DMA (first 16 MiB), DMA32 (to 4 GiB) and Normal (above), plus
 * the always-empty Movable and Device zones that /proc/zoneinfo still prints.
 */
import {
  type MemMap, MAX_ORDER, MIGRATE_TYPES, PAGEBLOCK_ORDER, PAGEBLOCK_NR_PAGES, MIGRATE_PCPTYPES, PAGE_ALLOC_COSTLY_ORDER,
  NR_OWNERS, listHeadAlloc,
} from './memmap.js';
import { type CostTable } from '../../sim/cost.js';
import { type VmSysctl, defaultVmSysctl } from './sysctl.js';
import type { DirtyList, SwapInfo, TaskWorld } from './mm_types.js';
import type { SlabCaches } from './slab_types.js';
import { NR_ZONESTAT_ITEMS, NR_NUMASTAT_ITEMS, NR_NODESTAT_ITEMS, NR_VMEVENT_ALL } from './vmstat_items.js';
import { type KernelProfile, type EraActivity, KERNEL_6_1, createEraActivity } from './kernel_era.js';

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

/** The driver's migrate callback (virtballoon_migratepage): inflate newpage, deflate page. */
export type BalloonMigrateFn = (b: BalloonDevInfo, newPfn: number, oldPfn: number, mode: MigrateMode) => MigrateResult;

/**
 * struct balloon_dev_info: one per balloon device. A guest may have several (the v8
 * review of the balloon compaction series removed the global balloon state that
 * allowed only one): each balloon page records its device in page->mapping, so
 * compaction's movable operations, which are the same for every balloon, find the
 * device a page belongs to (balloon_page_device).
 */
export type BalloonDevInfo = {
  pgdat: PgData;
  /** The device's index in pgdat.balloonDevs: what its pages carry in their mapping. */
  id: number;
  /** List head (in the memmap) of the balloon's pages. */
  pages: number;
  /** Pages on the list. */
  nrPages: number;
  /** Pages isolated by compaction (off the list, still the balloon's). */
  isolatedPages: number;
  /** CONFIG_BALLOON_COMPACTION: pages are movable and registered with compaction. */
  compaction: boolean;
  /** The driver's migrate callback. */
  migratepage: BalloonMigrateFn | null;
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
  /**
   * compact_init_migrate_pfn, compact_init_free_pfn: where the last skip-hint reset
   * found the first source and target pageblocks; 0 (as in a zeroed struct zone) until
   * one ran. A run whose migrate scanner starts at or below the first is a whole-zone
   * run; a free scanner at or above the second is starting its scan.
   */
  initMigratePfn: number;
  initFreePfn: number;
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
  /** ZONE_RECLAIM_ACTIVE: kswapd is reclaiming for this zone (the pcp lists keep less, nr_pcp_high). */
  reclaimActive: boolean;
  /** lowmem_reserve[classzone]: pages kept back from allocations that could use a higher zone. */
  lowmemReserve: Float64Array;
  /** nr_reserved_highatomic. */
  nrReservedHighatomic: number;
  /** The node's kernel profile (zone_watermark_ok and compaction_suitable have only the zone). */
  kernel: KernelProfile;
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
  /**
   * zone->lock, as far as a long holder makes the zone's other users wait: the holder
   * has it over [lockHeldFrom, lockHeldUntil) of virtual time (lockHeldUntil 0: nobody
   * holds it long). Only get_from_free_page_list (v33 free page hinting) sets it; the
   * allocator's own short holds are not modelled as contention.
   */
  lockHeldFrom: number;
  lockHeldUntil: number;
  /** Per cpu: the lockHeldUntil that cpu has already spun through (one wait per hold and cpu). */
  lockSpunUntil: Float64Array;
  /** Waits for zone->lock by the zone's allocations and frees: how many, and their total ns. */
  lockWaits: number;
  lockWaitNs: number;
};

/**
 * The node (struct pglist_data) and, since the model has one node, the references to
 * the rest of the guest kernel's memory-management state that the kernel keeps in
 * globals: its tunables, the boot-time init choices, the tasks, the swap device, the
 * shrinker and OOM-notifier lists, the movable-ops registry and the seams to the
 * code that plugs in later (reclaim, page reporting, the hardware).
 */
export type PgData = {
  // --- struct pglist_data
  map: MemMap;
  /** node_zones: ZONE_DMA, ZONE_DMA32, ZONE_NORMAL (possibly empty), indexed by ZoneType. */
  zones: Zone[];
  /** Number of cpus (pagesets per zone). */
  nrCpus: number;
  /** vm_stat[] of the node (enum node_stat_item). */
  nodeStat: Float64Array;
  /** Sentinel index of the first LRU list (the node's lruvec); list l (enum Lru) is at lruBase + l. */
  lruBase: number;
  /** Virtual time kswapd and kcompactd have worked, ns (background CPU time). */
  daemonNs: number;
  /**
   * The page type balloon pages carry: PG_offline (Linux 4.20 on) or PG_balloon (4.0 to
   * 4.19), the same page_type bit renamed, or none (Linux 3.x: the v10 series marks a
   * balloon page only by its mapping, and /proc/kpageflags has no bit for it). The driver sets it at probe; page-types and
   * dump tools (report/mem_usage.ts: makedumpfile excludes only PageOffline) read it.
   */
  balloonPageType: 'offline' | 'balloon' | 'none';
  /** deferred_split_queue: THPs mapped only in part, waiting for the deferred split shrinker. */
  deferredSplitQueue: DeferredSplitQueue;
  /** khugepaged_scan: where the next khugepaged pass goes on (process, PMD index). */
  khugepagedCursor: { pid: number; pmdIdx: number };
  /** The flusher's dirty list (page_writeback.ts). */
  dirtyList: DirtyList;
  /** The guest's clock (virtual ns), for what mm stamps with a time (dirtied_when); the guest installs it. */
  nowNs: () => number;
  /**
   * kcompactd's state: busy with a proactive run (which goes on in slices), and the
   * order and highest zone of the work kswapd asked for meanwhile (0: none).
   */
  kcompactd: { busy: boolean; pendingOrder: number; pendingZone: number };
  /**
   * The tracepoints (trace.ts): null when off; when on, each event calls it with the
   * task that hit it (comm), the event's name and its fields as the kernel prints them.
   */
  trace: ((comm: string, event: string, fields: string) => void) | null;

  /** The kernel the guest runs (guest.kernel): the mechanisms of its era (kernel_era.ts). */
  kernel: KernelProfile;
  /** How often the era-specific mechanisms acted (the result document's kernel.activity). */
  era: EraActivity;

  // --- the kernel's globals, one set per guest
  /** vm_event_states (enum vm_event_item), summed over cpus. */
  events: Float64Array;
  /** Pages held, by Owner (the model's census; the checker compares a page walk against it). */
  ownerPages: Float64Array;
  /** Fallbacks that took a block of another migratetype (the mm_page_alloc_extfrag tracepoint). */
  extfragEvents: number;
  /** Direct compactions skipped because the zone's compaction was deferred (the mm_compaction_deferred tracepoint). */
  compactDeferredEvents: number;
  /** /proc/sys/vm/* and the THP sysfs knobs. */
  sysctl: VmSysctl;
  /** What the kernel command line fixed at boot (the init_on_alloc/init_on_free/page_poison static keys). */
  boot: MemInit;
  /** Processes and the cpu the current allocation runs on. */
  tasks: TaskWorld;
  /** The swap device (swap_info[0]). */
  swap: SwapInfo;
  /** The hugetlb pool of the default huge page size (default_hstate, 2 MiB). */
  hugetlb: HState;
  /** shrinker_list: registered shrinkers, asked for objects during reclaim. */
  shrinkers: Shrinker[];
  /** slab_caches and the root superblock (slab.ts, dcache.ts). */
  slab: SlabCaches;
  /** oom_notify_list: called before the OOM killer; each returns the pages it freed. */
  oomNotifiers: Array<(pgdat: PgData) => number>;
  /**
   * Movable operations of non-LRU movable pages (__PageMovable), by owner: the balloon
   * registers its isolate/migrate/putback here when balloon compaction is on.
   */
  movableOps: Array<MovableOperations | null>;
  /** The balloon devices' balloon_dev_info, by the id their pages carry in page->mapping (balloon_compaction.ts). */
  balloonDevs: BalloonDevInfo[];
  /** The cost table in effect (virtual ns per unit of work); the machine owns it. */
  costs: CostTable;
  /** Where other subsystems and the hardware plug in. */
  hooks: MmHooks;
};

/**
 * struct hstate (include/linux/hugetlb.h) of the default huge page size, 2 MiB on
 * x86-64: the hugetlb pool vm.nr_hugepages sizes (hugetlb.ts). Pool pages are compound
 * pages owned by Owner.hugetlb; nothing in the model maps them, so every pool page is
 * free in the pool's sense and reservations and surplus pages stay 0.
 */
export type HState = {
  /** huge_page_order(h): HUGETLB_PAGE_ORDER (9). */
  order: number;
  /** max_huge_pages: what /proc/sys/vm/nr_hugepages reads. */
  maxHugePages: number;
  /** nr_huge_pages: pages in the pool (HugePages_Total). */
  nrHugePages: number;
  /** free_huge_pages (HugePages_Free). */
  freeHugePages: number;
  /** resv_huge_pages (HugePages_Rsvd). */
  resvHugePages: number;
  /** surplus_huge_pages (HugePages_Surp). */
  surplusHugePages: number;
  /** hugepage_freelists[0]: the heads of free pool pages; the list's head is the array's end (LIFO, as list_move/list_entry(.next) use it). */
  freelist: number[];
};

/** One THP on the deferred split queue: which of its subpages are no longer mapped. */
export type DeferredThp = {
  /** One byte per subpage: 1 once it has been unmapped. */
  unmapped: Uint8Array;
  /** How many subpages are unmapped (1 .. 2^order - 1: a THP unmapped whole is freed, not queued). */
  nr: number;
};

/**
 * struct deferred_split (pgdat->deferred_split_queue): anonymous THPs whose PMD mapping
 * was split by a partial unmap (madvise(MADV_DONTNEED) of part of it, munmap of part).
 * They stay whole, still allocated, until the deferred split shrinker splits them and
 * frees the unmapped subpages (process.ts, huge_memory.ts). Keyed by head pfn, in
 * queue order (deferred_split_huge_page adds at the tail).
 */
export type DeferredSplitQueue = { thps: Map<number, DeferredThp> };

/** The init_on_alloc / init_on_free / page_poison choices (mm/page_alloc.c static keys). */
export type MemInit = {
  /** init_on_alloc=1 (Debian's default): every allocation is zeroed, so written. */
  initOnAlloc: boolean;
  /** init_on_free=1 or page_poison=1: freed pages are written (zeroed or poisoned). */
  initOnFree: boolean;
  /** page_poison=1: freed pages hold PAGE_POISON bytes rather than zeroes. */
  pagePoisoning: boolean;
};

/**
 * The seams: functions other layers install so that page_alloc.ts need not import
 * them (reclaim and compaction import page_alloc), and the hardware below the guest.
 */
export type MmHooks = {
  /** The allocation slow path (reclaim, compaction): null until installed. */
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
  /**
   * Wakes kcompactd for a proactive check now (compaction_proactiveness_sysctl_handler's
   * proactive_compact_trigger); installed with kcompactd, null before.
   */
  kcompactdWake: (() => void) | null;
  /** Wakes the flusher for background writeback now (wb_start_background_writeback); installed by the guest. */
  wakeFlusher: (() => void) | null;
  /**
   * The VFS side of a page-cache fill (dcache.ts vfsFilePagesAdded: the files' dentries,
   * inodes, buffer_heads and xarray nodes), installed when the root file system is
   * mounted at boot so that process.ts need not import the VFS; null before.
   */
  pageCacheAdd: ((pgdat: PgData, pid: number, pages: number, dirty: boolean, filePages: number | undefined) => void) | null;
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
 * Objects are the shrinker's own: pages for the balloon's, queued THPs for the deferred
 * split's, dentries and inodes for a superblock's.
 */
export type Shrinker = {
  name: string;
  countObjects(pgdat: PgData): number;
  scanObjects(pgdat: PgData, nrToScan: number): number;
  /** shrinker->seeks (DEFAULT_SEEKS = 2; 0: objects that cost no I/O to recreate). */
  seeks: number;
  /** shrinker->batch: objects per scanObjects call (0 or absent: SHRINK_BATCH, 128). */
  batch?: number;
  /** shrinker->nr_deferred (one node): scan work left over from earlier calls, carried into the next. */
  nrDeferred?: number;
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
    watermark: new Float64Array(4), watermarkBoost: 0, boostedWatermark: false, reclaimActive: false,
    lowmemReserve: new Float64Array(MAX_NR_ZONES), nrReservedHighatomic: 0, kernel: KERNEL_6_1, freeBase,
    nrFreeMt: new Int32Array(MAX_ORDER * MIGRATE_TYPES), nrFree: new Int32Array(MAX_ORDER),
    vmStat: new Float64Array(NR_ZONESTAT_ITEMS), numaStat: new Float64Array(NR_NUMASTAT_ITEMS), pcp,
    compact: { cachedMigratePfn: [start, start], cachedFreePfn: Math.max(start, (start + spanned - 1) & ~(PAGEBLOCK_NR_PAGES - 1)), considered: 0, deferShift: 0, orderFailed: MAX_ORDER, blockskipFlush: false, initMigratePfn: 0, initFreePfn: 0 },
    lockHeldFrom: 0, lockHeldUntil: 0, lockSpunUntil: new Float64Array(nrCpus), lockWaits: 0, lockWaitNs: 0,
  };
}

export function createPgData(map: MemMap, nrCpus: number, costs: CostTable, kernel: KernelProfile = KERNEL_6_1): PgData {
  const lruBase = map.nrPages + map.nrListHeads;
  for (let l = 0; l < NR_LRU_LISTS; l++) listHeadAlloc(map);
  return {
    map, zones: [], nrCpus, nodeStat: new Float64Array(NR_NODESTAT_ITEMS), lruBase, daemonNs: 0, balloonPageType: 'offline', kernel, era: createEraActivity(),
    deferredSplitQueue: { thps: new Map() }, khugepagedCursor: { pid: 0, pmdIdx: 0 }, dirtyList: { pfns: new Int32Array(1024), times: new Float64Array(1024), head: 0, len: 0 }, nowNs: () => 0, kcompactd: { busy: false, pendingOrder: 0, pendingZone: 0 }, trace: null,
    events: new Float64Array(NR_VMEVENT_ALL), ownerPages: new Float64Array(NR_OWNERS), extfragEvents: 0, compactDeferredEvents: 0,
    sysctl: defaultVmSysctl(), boot: { initOnAlloc: true, initOnFree: false, pagePoisoning: false },
    tasks: { procs: new Map(), cpu: 0, stallNs: 0, ioWaitNs: 0, slowpathEpoch: 0, captureControl: null }, swap: { totalPages: 0, usedPages: 0 },
    hugetlb: { order: PAGEBLOCK_ORDER, maxHugePages: 0, nrHugePages: 0, freeHugePages: 0, resvHugePages: 0, surplusHugePages: 0, freelist: [] },
    shrinkers: [], slab: { caches: [], byName: new Map(), std: null, sb: null, freedPages: 0 }, oomNotifiers: [], movableOps: new Array<MovableOperations | null>(NR_OWNERS).fill(null), balloonDevs: [], costs,
    hooks: { slowpath: null, wakeupKswapd: null, pageReporting: null, pageWrite: null, pageCopy: null, kcompactdWake: null, wakeFlusher: null, pageCacheAdd: null },
  };
}

/**
 * @kernel include/linux/mm.h page_zone
 * The zone a memmap PFN belongs to.
 */
export function pfnZone(pgdat: PgData, pfn: number): Zone {
  const zones = pgdat.zones;
  const normal = zones[ZoneType.normal]!;
  if (pfn >= normal.zoneStartPfn && normal.spannedPages > 0) return normal;
  return pfn >= zones[ZoneType.dma32]!.zoneStartPfn ? zones[ZoneType.dma32]! : zones[ZoneType.dma]!;
}

/** Total managed pages of all zones (totalram_pages). */
export function totalramPages(pgdat: PgData): number {
  let n = 0;
  for (const z of pgdat.zones) n += z.managedPages;
  return n;
}
