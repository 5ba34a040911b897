/**
 * The node's counters as the kernel reads and prints them: global_zone_page_state()
 * and friends, the dirty thresholds, MemAvailable, and the whole of /proc/vmstat as
 * (name, value) pairs in the kernel's order (mm/vmstat.c vmstat_start): zone counters
 * summed over zones, NUMA counters, node counters, nr_dirty_threshold and
 * nr_dirty_background_threshold, the vm events, and the legacy nr_unstable (0).
 */
import { PAGEBLOCK_ORDER, PAGE_SHIFT } from './memmap.js';
import { type PgData, MAX_NR_ZONES, Wmark, wmarkPages } from './mmzone.js';
import {
  ZoneStat, NodeStat, VmEvent, NR_ZONESTAT_ITEMS, NR_NUMASTAT_ITEMS, NR_NODESTAT_ITEMS, NR_VMEVENT_ITEMS, NR_VMEVENT_ALL, OTHER_ERA_EVENT_NAMES,
  ZONE_STAT_NAMES, NUMA_STAT_NAMES, NODE_STAT_NAMES, VM_EVENT_NAMES,
} from './vmstat_items.js';

// ---------------------------------------------------------------------------------
// Global counters (include/linux/vmstat.h)

/** global_zone_page_state(): a zone counter summed over the node's zones. */
export function globalZonePageState(pgdat: PgData, item: ZoneStat): number {
  let x = 0;
  for (const z of pgdat.zones) x += z.vmStat[item]!;
  return x < 0 ? 0 : x;
}

/** global_node_page_state(): one node, so the node counter itself, clamped at 0. */
export function globalNodePageState(pgdat: PgData, item: NodeStat): number {
  const x = pgdat.nodeStat[item]!;
  return x < 0 ? 0 : x;
}

/** vmstat_item_print_in_thp(): node counters kept in pages but printed in THPs. */
function vmstatItemPrintInThp(item: number): boolean {
  return item === NodeStat.nr_anon_transparent_hugepages || item === NodeStat.nr_file_hugepages ||
    item === NodeStat.nr_shmem_hugepages || item === NodeStat.nr_shmem_pmdmapped || item === NodeStat.nr_file_pmdmapped;
}

/** HPAGE_PMD_NR */
export const HPAGE_PMD_NR = 1 << PAGEBLOCK_ORDER;

/** A node counter as /proc/vmstat and /proc/zoneinfo print it. */
export function nodeStatPrinted(pgdat: PgData, item: number): number {
  const v = globalNodePageState(pgdat, item as NodeStat);
  return vmstatItemPrintInThp(item) ? Math.floor(v / HPAGE_PMD_NR) : v;
}

/**
 * @kernel mm/page_alloc.c calculate_totalreserve_pages
 * Pages the allocator keeps back: per zone, its largest lowmem_reserve plus its high
 * watermark (without boost: the kernel computes this when watermarks are set up),
 * capped at the zone's managed pages.
 */
export function calculateTotalreservePages(pgdat: PgData): number {
  let reserve = 0;
  for (const z of pgdat.zones) {
    let max = 0;
    for (let j = z.idx; j < MAX_NR_ZONES; j++) if (z.lowmemReserve[j]! > max) max = z.lowmemReserve[j]!;
    max += z.watermark[Wmark.high]!;
    if (max > z.managedPages) max = z.managedPages;
    reserve += max;
  }
  return reserve;
}

/** vm.dirty_ratio and vm.dirty_background_ratio (defaults; the guest's values are pgdat.sysctl's). */
export const VM_DIRTY_RATIO = 20;
export const DIRTY_BACKGROUND_RATIO = 10;

/**
 * @kernel mm/page-writeback.c global_dirty_limits
 * [background threshold, threshold] in pages: domain_dirty_limits() over
 * global_dirtyable_memory() = free - totalreserve + file LRU + 1, with
 * vm.dirty_ratio and vm.dirty_background_ratio converted to per-PAGE_SIZE units as
 * the kernel does. The flusher and balance_dirty_pages use it (page_writeback.ts).
 */
export function globalDirtyLimits(pgdat: PgData): [number, number] {
  let x = globalZonePageState(pgdat, ZoneStat.nr_free_pages);
  x -= Math.min(x, calculateTotalreservePages(pgdat));
  x += globalNodePageState(pgdat, NodeStat.nr_inactive_file);
  x += globalNodePageState(pgdat, NodeStat.nr_active_file);
  const available = x + 1;
  const pageSize = 1 << PAGE_SHIFT;
  const ratio = Math.floor((pgdat.sysctl.dirtyRatio * pageSize) / 100);
  const bgRatio = Math.floor((pgdat.sysctl.dirtyBackgroundRatio * pageSize) / 100);
  const thresh = Math.floor((ratio * available) / pageSize);
  let bgThresh = Math.floor((bgRatio * available) / pageSize);
  if (bgThresh >= thresh) bgThresh = Math.floor(thresh / 2);
  return [bgThresh, thresh];
}

/**
 * @kernel mm/page_alloc.c si_mem_available
 * MemAvailable in pages: free - totalreserve, plus the file LRU less what must stay
 * (min(half, sum of low watermarks)), plus reclaimable slab and misc less the same cap.
 */
export function siMemAvailable(pgdat: PgData): number {
  let wmarkLow = 0;
  for (const z of pgdat.zones) wmarkLow += wmarkPages(z, Wmark.low);
  let available = globalZonePageState(pgdat, ZoneStat.nr_free_pages) - calculateTotalreservePages(pgdat);
  let pagecache = globalNodePageState(pgdat, NodeStat.nr_active_file) + globalNodePageState(pgdat, NodeStat.nr_inactive_file);
  pagecache -= Math.min(Math.floor(pagecache / 2), wmarkLow);
  available += pagecache;
  const reclaimable = globalNodePageState(pgdat, NodeStat.nr_slab_reclaimable) + globalNodePageState(pgdat, NodeStat.nr_kernel_misc_reclaimable);
  available += reclaimable - Math.min(Math.floor(reclaimable / 2), wmarkLow);
  return available < 0 ? 0 : available;
}

/**
 * @kernel mm/vmstat.c vmstat_start
 * Every /proc/vmstat line as [name, value], in order. Values are what the kernel
 * prints: clamped at 0, THP node counters in huge pages, pgpgin/pgpgout (kept in
 * sectors, as in the kernel) in KiB.
 */
export function vmstatEntries(pgdat: PgData): Array<[string, number]> {
  if (pgdat.kernel.vmstat === '3.6') return vmstatEntries36(pgdat);
  return vmstatEntries61(pgdat);
}

function vmstatEntries61(pgdat: PgData): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  const ul = (v: number) => (v > 0 ? Math.trunc(v) : 0);
  for (let i = 0; i < NR_ZONESTAT_ITEMS; i++) out.push([ZONE_STAT_NAMES[i]!, ul(globalZonePageState(pgdat, i))]);
  for (let i = 0; i < NR_NUMASTAT_ITEMS; i++) {
    let x = 0;
    for (const z of pgdat.zones) x += z.numaStat[i]!;
    out.push([NUMA_STAT_NAMES[i]!, ul(x)]);
  }
  for (let i = 0; i < NR_NODESTAT_ITEMS; i++) out.push([NODE_STAT_NAMES[i]!, ul(nodeStatPrinted(pgdat, i))]);
  const [bg, thresh] = globalDirtyLimits(pgdat);
  out.push(['nr_dirty_threshold', ul(thresh)], ['nr_dirty_background_threshold', ul(bg)]);
  const ev = pgdat.events;
  for (let i = 0; i < NR_VMEVENT_ITEMS; i++) {
    let v = ev[i]!;
    if (i === VmEvent.pgpgin || i === VmEvent.pgpgout) v = Math.floor(v / 2);
    out.push([VM_EVENT_NAMES[i]!, ul(v)]);
  }
  out.push(['nr_unstable', 0]);
  return out;
}

/** /proc/vmstat as an object (the result document's `vmstat`). */
export function vmstatObject(pgdat: PgData): Record<string, number> {
  const o: Record<string, number> = {};
  for (const [k, v] of vmstatEntries(pgdat)) o[k] = v;
  return o;
}

/** Linux 3.6's /proc/vmstat (mm/vmstat.c vmstat_text[] of 3.6, CONFIG_NUMA, COMPACTION, HUGETLB, THP; the v10 balloon counters). */
const VMSTAT_3_6_ZONE = [
  'nr_free_pages', 'nr_inactive_anon', 'nr_active_anon', 'nr_inactive_file', 'nr_active_file', 'nr_unevictable', 'nr_mlock',
  'nr_anon_pages', 'nr_mapped', 'nr_file_pages', 'nr_dirty', 'nr_writeback', 'nr_slab_reclaimable', 'nr_slab_unreclaimable',
  'nr_page_table_pages', 'nr_kernel_stack', 'nr_unstable', 'nr_bounce', 'nr_vmscan_write', 'nr_vmscan_immediate_reclaim',
  'nr_writeback_temp', 'nr_isolated_anon', 'nr_isolated_file', 'nr_shmem', 'nr_dirtied', 'nr_written',
  'numa_hit', 'numa_miss', 'numa_foreign', 'numa_interleave', 'numa_local', 'numa_other', 'nr_anon_transparent_hugepages',
  'nr_dirty_threshold', 'nr_dirty_background_threshold',
];
const ZONES_3_6 = ['dma', 'dma32', 'normal', 'movable'];
const perZone = (n: string) => ZONES_3_6.map((z) => `${n}_${z}`);
const VMSTAT_3_6_EVENTS = [
  'pgpgin', 'pgpgout', 'pswpin', 'pswpout', ...perZone('pgalloc'), 'pgfree', 'pgactivate', 'pgdeactivate', 'pgfault', 'pgmajfault',
  ...perZone('pgrefill'), ...perZone('pgsteal_kswapd'), ...perZone('pgsteal_direct'), ...perZone('pgscan_kswapd'), ...perZone('pgscan_direct'),
  'pgscan_direct_throttle', 'zone_reclaim_failed', 'pginodesteal', 'slabs_scanned', 'kswapd_inodesteal', 'kswapd_low_wmark_hit_quickly',
  'kswapd_high_wmark_hit_quickly', 'kswapd_skip_congestion_wait', 'pageoutrun', 'allocstall', 'pgrotated',
  'compact_blocks_moved', 'compact_pages_moved', 'compact_pagemigrate_failed', 'compact_stall', 'compact_fail', 'compact_success',
  'compact_balloon_isolated', 'compact_balloon_migrated', 'compact_balloon_released', 'compact_balloon_returned',
  'htlb_buddy_alloc_success', 'htlb_buddy_alloc_fail', 'unevictable_pgs_culled', 'unevictable_pgs_scanned', 'unevictable_pgs_rescued',
  'unevictable_pgs_mlocked', 'unevictable_pgs_munlocked', 'unevictable_pgs_cleared', 'unevictable_pgs_stranded', 'unevictable_pgs_mlockfreed',
  'thp_fault_alloc', 'thp_fault_fallback', 'thp_collapse_alloc', 'thp_collapse_alloc_failed', 'thp_split',
];
/** Every /proc/vmstat name of Linux 3.6, in its order. */
export const VMSTAT_3_6_NAMES: readonly string[] = [...VMSTAT_3_6_ZONE, ...VMSTAT_3_6_EVENTS];

/**
 * /proc/vmstat as Linux 3.6 prints it, from the model's counters: the same figures
 * under that era's names (compact_blocks_moved, allocstall, thp_split ...), kernel
 * stacks counted as stacks (16 KiB each here), and the reclaim counters 3.6 keeps
 * per zone (the model per node) on the highest populated zone's line.
 */
function vmstatEntries36(pgdat: PgData): Array<[string, number]> {
  const now = new Map(vmstatEntries61(pgdat));
  for (let i = NR_VMEVENT_ITEMS; i < NR_VMEVENT_ALL; i++) now.set(OTHER_ERA_EVENT_NAMES[i - NR_VMEVENT_ITEMS]!, Math.max(0, Math.trunc(pgdat.events[i]!)));
  const top = pgdat.zones[2]?.presentPages ? 'normal' : 'dma32';
  const perZoneNode = new Set(['pgrefill', 'pgsteal_kswapd', 'pgsteal_direct', 'pgscan_kswapd', 'pgscan_direct']);
  const value = (name: string): number => {
    if (name === 'allocstall') return ZONES_3_6.reduce((a, z) => a + (now.get(`allocstall_${z}`) ?? 0), 0);
    if (name === 'thp_split') return now.get('thp_split_page') ?? 0;
    if (name === 'nr_kernel_stack') return Math.floor((now.get('nr_kernel_stack') ?? 0) / 16);
    const m = /^(.*)_(dma|dma32|normal|movable)$/.exec(name);
    if (m && perZoneNode.has(m[1]!)) return m[2] === top ? now.get(m[1]!) ?? 0 : 0;
    return now.get(name) ?? 0;
  };
  return VMSTAT_3_6_NAMES.map((n) => [n, value(n)]);
}
