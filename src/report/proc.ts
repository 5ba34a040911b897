/**
 * The guest's /proc views, printed byte for byte as a Linux 6.1 x86-64 kernel prints
 * them (same fields, order, widths and trailing spaces), from the model's state:
 *
 *   /proc/vmstat, /proc/buddyinfo, /proc/pagetypeinfo, /proc/zoneinfo   mm/vmstat.c
 *   /proc/meminfo                                    fs/proc/meminfo.c (+ hugetlb, x86)
 *   /proc/slabinfo                                   mm/slab_common.c (SLUB's get_slabinfo)
 *   /sys/kernel/debug/extfrag/{extfrag_index,unusable_index}            mm/vmstat.c
 *   page-types (no options)                          tools/vm/page-types.c
 *
 * The formats were checked against a real 6.1 guest's files (test/fixtures). The
 * kernel prints one node; so does the model. Counters the model does not keep print
 * 0, as an idle kernel would; values derived rather than tracked (DirectMap*, Percpu,
 * the dirty thresholds, MemAvailable) say how at their function.
 */
import type { Guest } from '../guest/guest.js';
import { MAX_ORDER, MIGRATE_TYPES, MIGRATETYPE_NAMES, PAGEBLOCK_ORDER, PAGEBLOCK_NR_PAGES, PAGE_SHIFT, MigrateType, getPageblockMigratetype } from '../guest/mm/memmap.js';
import { type PgData, type Zone, MAX_NR_ZONES, ZONE_NAMES, Wmark, populatedZone, wmarkPages, zoneEndPfn } from '../guest/mm/mmzone.js';
import { physPfn, BIOS_TOP_RESERVED_PAGES } from '../guest/mm/layout.js';
import { ZoneStat, NodeStat, NR_ZONESTAT_ITEMS, NR_NUMASTAT_ITEMS, NR_NODESTAT_ITEMS, ZONE_STAT_NAMES, NUMA_STAT_NAMES, NODE_STAT_NAMES } from '../guest/mm/vmstat_items.js';
import { vmstatEntries, globalZonePageState, globalNodePageState, nodeStatPrinted, siMemAvailable } from '../guest/mm/vmstat.js';
import { hugetlbTotalPages, pagesPerHugePage } from '../guest/mm/hugetlb.js';
import { mixedBlockCounts } from '../guest/mm/page_owner.js';
import { getSlabinfo } from '../guest/mm/slab.js';
export { globalZonePageState, globalNodePageState, calculateTotalreservePages, globalDirtyLimits, siMemAvailable, VM_DIRTY_RATIO, DIRTY_BACKGROUND_RATIO } from '../guest/mm/vmstat.js';
import { type ContigPageInfo, createContigPageInfo, fillContigPageInfo, __fragmentationIndex, __unusableFreeIndex } from '../guest/mm/fragmentation.js';
import { KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL, KPF_HUGE, KPF_OFFLINE, walkKpageflags } from './kpageflags.js';

// ---------------------------------------------------------------------------------
// printf helpers

/** %Nd / %Nlu: right-aligned in width. */
function rj(v: number | string, width: number): string {
  return String(v).padStart(width);
}

/** %-Ns: left-aligned in width. */
function lj(s: string, width: number): string {
  return s.padEnd(width);
}

/** C's %0Nd: zero-padded to width, the sign counted in the width. */
function zeroPad(v: number, width: number): string {
  const s = String(Math.abs(v));
  if (v < 0) return '-' + s.padStart(width - 1, '0');
  return s.padStart(width, '0');
}

/**
 * An unsigned counter as the kernel reads it: global_zone_page_state() and friends
 * clamp a transiently negative sum to 0 (CONFIG_SMP).
 */
function ul(v: number): string {
  return v > 0 ? String(Math.trunc(v)) : '0';
}

/** The zones /proc walks (walk_zones_in_node): index 0..MAX_NR_ZONES-1, undefined for a zone the model lacks. */
function nodeZone(pgdat: PgData, i: number): Zone | undefined {
  return pgdat.zones[i];
}

function populated(z: Zone | undefined): z is Zone {
  return z !== undefined && populatedZone(z);
}

// ---------------------------------------------------------------------------------
// /proc/vmstat

/** Free blocks of each order 0..10, summed over zones (buddyinfo summed). */
export function freeBlocksPerOrder(g: Guest): number[] {
  const out = new Array<number>(MAX_ORDER).fill(0);
  for (const z of g.pgdat.zones) for (let o = 0; o < MAX_ORDER; o++) out[o] = out[o]! + z.nrFree[o]!;
  return out;
}

/** Pageblocks of each migratetype over all zones, by the names pagetypeinfo uses. */
export function pageblockCounts(g: Guest): Record<string, number> {
  const counts = new Array<number>(MIGRATE_TYPES).fill(0);
  const map = g.pgdat.map;
  for (const z of g.pgdat.zones) {
    const end = z.zoneStartPfn + z.spannedPages;
    for (let pfn = z.zoneStartPfn & ~(PAGEBLOCK_NR_PAGES - 1); pfn < end; pfn += PAGEBLOCK_NR_PAGES) counts[getPageblockMigratetype(map, pfn)]!++;
  }
  const out: Record<string, number> = {};
  for (const [i, n] of migratetypeColumns(g)) out[n] = counts[i]!;
  return out;
}

/** @kernel mm/vmstat.c vmstat_start: one "name value" line per counter (src/guest/mm/vmstat.ts). */
export function procVmstat(g: Guest): string {
  let out = '';
  for (const [name, v] of vmstatEntries(g.pgdat)) out += `${name} ${v}\n`;
  return out;
}

// ---------------------------------------------------------------------------------
// /proc/slabinfo

/**
 * @kernel mm/slab_common.c slab_show (print_slabinfo_header, cache_show)
 * Version 2.1 without statistics: one line per cache, newest first (slab_caches is
 * added to at its head), "%-17s %6lu %6lu %6u %4u %4d", SLUB's tunables all 0 and
 * slabdata active_slabs = num_slabs.
 */
export function procSlabinfo(g: Guest): string {
  let out = 'slabinfo - version: 2.1\n' +
    '# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>' +
    ' : tunables <limit> <batchcount> <sharedfactor>' +
    ' : slabdata <active_slabs> <num_slabs> <sharedavail>\n';
  const caches = g.pgdat.slab.caches;
  for (let i = caches.length - 1; i >= 0; i--) {
    const si = getSlabinfo(caches[i]!);
    out += `${lj(si.name, 17)} ${rj(si.activeObjs, 6)} ${rj(si.numObjs, 6)} ${rj(si.objsize, 6)} ${rj(si.objperslab, 4)} ${rj(si.pagesperslab, 4)}` +
      ` : tunables ${rj(0, 4)} ${rj(0, 4)} ${rj(0, 4)}` +
      ` : slabdata ${rj(si.activeSlabs, 6)} ${rj(si.numSlabs, 6)} ${rj(0, 6)}\n`;
  }
  return out;
}

// ---------------------------------------------------------------------------------
// /proc/buddyinfo and /proc/pagetypeinfo

/** "Node %d, zone %8s " */
function nodeZonePrefix(name: string): string {
  return `Node 0, zone ${rj(name, 8)} `;
}

/**
 * @kernel mm/vmstat.c frag_show_print
 * One line per populated zone: nr_free per order, "%6lu " each.
 */
export function procBuddyinfo(g: Guest): string {
  let s = '';
  for (let i = 0; i < MAX_NR_ZONES; i++) {
    const z = nodeZone(g.pgdat, i);
    if (!populated(z)) continue;
    s += nodeZonePrefix(z.name);
    for (let o = 0; o < MAX_ORDER; o++) s += `${rj(ul(z.nrFree[o]!), 6)} `;
    s += '\n';
  }
  return s;
}

/** pagetypeinfo_showfree_print caps its list walk: at 100000 entries it prints ">100000". */
const FREE_LIST_WALK_CAP = 100000;

/**
 * @kernel mm/vmstat.c pagetypeinfo_showblockcount_print
 * Pageblocks of each migratetype in a zone: the kernel samples one pfn per pageblock
 * from zone_start_pfn in pageblock steps, so a partly spanned first or last pageblock
 * counts.
 */
export function zonePageblockCounts(g: Guest, zone: Zone): number[] {
  const count = new Array<number>(MIGRATE_TYPES).fill(0);
  const map = g.pgdat.map;
  const end = zoneEndPfn(zone);
  for (let pfn = zone.zoneStartPfn; pfn < end; pfn += PAGEBLOCK_NR_PAGES) {
    const mt = getPageblockMigratetype(map, pfn);
    if (mt < MIGRATE_TYPES) count[mt]!++;
  }
  return count;
}

/** page_owner's mixed-block census of a zone (guest/mm/page_owner.ts). */
export function zoneMixedBlockCounts(g: Guest, zone: Zone): number[] {
  return mixedBlockCounts(g.pgdat, zone);
}

/** The migratetypes in the order the guest's kernel prints them, with its names (3.6: Unmovable, Reclaimable, Movable, Reserve, Isolate). */
export function migratetypeColumns(g: Guest): Array<[number, string]> {
  if (g.pgdat.kernel.reserve === 'migrate-reserve') {
    return [[MigrateType.unmovable, 'Unmovable'], [MigrateType.reclaimable, 'Reclaimable'], [MigrateType.movable, 'Movable'], [MigrateType.reserve, 'Reserve'], [MigrateType.isolate, 'Isolate']];
  }
  return MIGRATETYPE_NAMES.map((n, i) => [i, n]);
}

/**
 * @kernel mm/vmstat.c pagetypeinfo_show
 * Free blocks per (zone, migratetype, order), then pageblocks per migratetype, then,
 * as a kernel with page_owner enabled prints it, the pageblocks of mixed
 * migratetypes (mm/page_owner.c; only with `mixed: true`: a stock kernel prints none).
 * The migratetypes are in the guest kernel's order and names.
 */
export function procPagetypeinfo(g: Guest, opts: { mixed?: boolean } = {}): string {
  const pgdat = g.pgdat;
  const cols = migratetypeColumns(g);
  let s = `Page block order: ${PAGEBLOCK_ORDER}\nPages per block:  ${PAGEBLOCK_NR_PAGES}\n\n`;
  s += `${lj('Free pages count per migrate type at order', 43)} `;
  for (let o = 0; o < MAX_ORDER; o++) s += `${rj(o, 6)} `;
  s += '\n';
  for (let i = 0; i < MAX_NR_ZONES; i++) {
    const z = nodeZone(pgdat, i);
    if (!populated(z)) continue;
    for (const [mt, name] of cols) {
      s += `Node ${rj(0, 4)}, zone ${rj(z.name, 8)}, type ${rj(name, 12)} `;
      for (let o = 0; o < MAX_ORDER; o++) {
        const n = z.nrFreeMt[o * MIGRATE_TYPES + mt]!;
        s += n >= FREE_LIST_WALK_CAP ? `>${rj(FREE_LIST_WALK_CAP, 6)} ` : `${rj(ul(n), 6)} `;
      }
      s += '\n';
    }
  }
  const table = (title: string, counts: (z: Zone) => number[]) => {
    s += `\n${lj(title, 23)}`;
    for (const [, name] of cols) s += `${rj(name, 12)} `;
    s += '\n';
    for (let i = 0; i < MAX_NR_ZONES; i++) {
      const z = nodeZone(pgdat, i);
      if (!populated(z)) continue;
      s += nodeZonePrefix(z.name);
      const c = counts(z);
      for (const [mt] of cols) s += `${rj(c[mt]!, 12)} `;
      s += '\n';
    }
  };
  table('Number of blocks type ', (z) => zonePageblockCounts(g, z));
  if (opts.mixed) table('Number of mixed blocks ', (z) => zoneMixedBlockCounts(g, z));
  return s;
}

// ---------------------------------------------------------------------------------
// /proc/zoneinfo

/** fls(): the 1-based index of the highest set bit, 0 for 0. */
function fls(x: number): number {
  return x <= 0 ? 0 : 32 - Math.clz32(x);
}

/**
 * @kernel mm/vmstat.c calculate_normal_threshold
 * The per-cpu vmstat drift allowed before folding: 2 * fls(cpus) * (1 + fls(managed
 * in 128 MiB units)), at most 125.
 */
export function calculateNormalThreshold(zone: Zone, nrCpus: number): number {
  const mem = Math.floor(zone.managedPages / 2 ** (27 - PAGE_SHIFT));
  return Math.min(125, 2 * fls(nrCpus) * (1 + fls(mem)));
}

/** "\n      %-12s %lu" */
function statLine(name: string, v: string): string {
  return `\n      ${lj(name, 12)} ${v}`;
}

/**
 * @kernel mm/vmstat.c zoneinfo_show_print
 * Every zone, populated or not (MAX_NR_ZONES of them). The node's counters are
 * printed once, in the first populated zone. Unpopulated zones stop after the
 * protection line.
 */
export function procZoneinfo(g: Guest): string {
  const pgdat = g.pgdat;
  let firstPopulated = -1;
  for (let i = 0; i < MAX_NR_ZONES; i++) if (populated(nodeZone(pgdat, i))) { firstPopulated = i; break; }
  let s = '';
  for (let i = 0; i < MAX_NR_ZONES; i++) {
    const z = nodeZone(pgdat, i);
    s += `Node 0, zone ${rj(z?.name ?? ZONE_NAMES[i]!, 8)}`;
    if (i === firstPopulated) {
      s += '\n  per-node stats';
      for (let k = 0; k < NR_NODESTAT_ITEMS; k++) s += statLine(NODE_STAT_NAMES[k]!, ul(nodeStatPrinted(pgdat, k)));
    }
    const wm = (w: Wmark) => (z ? ul(wmarkPages(z, w)) : '0');
    s += `\n  pages free     ${z ? ul(z.vmStat[ZoneStat.nr_free_pages]!) : '0'}` +
      `\n        boost    ${z ? ul(z.watermarkBoost) : '0'}` +
      `\n        min      ${wm(Wmark.min)}` +
      `\n        low      ${wm(Wmark.low)}` +
      `\n        high     ${wm(Wmark.high)}` +
      `\n        spanned  ${z ? ul(z.spannedPages) : '0'}` +
      `\n        present  ${z ? ul(z.presentPages) : '0'}` +
      `\n        managed  ${z ? ul(z.managedPages) : '0'}` +
      '\n        cma      0';
    const prot: string[] = [];
    for (let j = 0; j < MAX_NR_ZONES; j++) prot.push(String(Math.trunc(z?.lowmemReserve[j] ?? 0)));
    s += `\n        protection: (${prot.join(', ')})`;
    if (!populated(z)) {
      s += '\n';
      continue;
    }
    for (let k = 0; k < NR_ZONESTAT_ITEMS; k++) s += statLine(ZONE_STAT_NAMES[k]!, ul(z.vmStat[k]!));
    for (let k = 0; k < NR_NUMASTAT_ITEMS; k++) s += statLine(NUMA_STAT_NAMES[k]!, ul(z.numaStat[k]!));
    s += '\n  pagesets';
    const threshold = calculateNormalThreshold(z, pgdat.nrCpus);
    for (let cpu = 0; cpu < z.pcp.length; cpu++) {
      const p = z.pcp[cpu]!;
      s += `\n    cpu: ${cpu}` +
        `\n              count: ${p.count}` +
        `\n              high:  ${p.high}` +
        `\n              batch: ${p.batch}` +
        `\n  vm stats threshold: ${threshold}`;
    }
    // node_unreclaimable: kswapd_failures >= MAX_RECLAIM_RETRIES; the model has no kswapd failures yet.
    s += '\n  node_unreclaimable:  0' +
      `\n  start_pfn:           ${physPfn(g.layout, z.zoneStartPfn)}\n`;
  }
  return s;
}

// ---------------------------------------------------------------------------------
// /proc/meminfo

/** show_val_kb(): a 16-column label, pages as KiB right-aligned in 8, " kB". */
function showValKb(label: string, pages: number): string {
  return `${lj(label, 16)}${rj(ul(pages * 4), 8)} kB\n`;
}

/** A line already in KiB ("%8lu kB"). */
function showKb(label: string, kb: number): string {
  return `${lj(label, 16)}${rj(ul(kb), 8)} kB\n`;
}

/** Percpu: the first chunk of the reference guest, 64 pages (256 KiB) per cpu unit. */
const PERCPU_PAGES_PER_CPU = 64;
/**
 * 4 KiB-mapped direct-map memory around the kernel image (text/rodata/data
 * boundaries split 2 MiB mappings): 12 pageblocks in the reference guest.
 */
const DIRECT_MAP_IMAGE_SPLIT_PAGES = 12 * PAGEBLOCK_NR_PAGES;

/**
 * arch/x86/mm/pat/set_memory.c arch_report_meminfo: the direct map of RAM in 4 KiB
 * and 2 MiB pages, in KiB. The direct map covers [0, end of RAM below 4 GiB) and the
 * RAM above 4 GiB; the first 2 MiB, the unaligned tail below the BIOS reservation and
 * the kernel image's splits use 4 KiB pages, the rest 2 MiB pages. No DirectMap1G:
 * QEMU's default CPU model has no 1 GiB pages (pdpe1gb), as in the reference guest.
 */
export function directMapKb(g: Guest): { k4: number; m2: number } {
  const lay = g.layout;
  const lowEnd = Math.min(lay.lowmemPages, lay.nrPages) - BIOS_TOP_RESERVED_PAGES;
  const highPages = lay.nrPages - Math.min(lay.lowmemPages, lay.nrPages);
  const total = lowEnd + highPages;
  const k4 = Math.min(total, PAGEBLOCK_NR_PAGES + (lowEnd % PAGEBLOCK_NR_PAGES) + DIRECT_MAP_IMAGE_SPLIT_PAGES);
  return { k4: k4 * 4, m2: (total - k4) * 4 };
}

/**
 * @kernel fs/proc/meminfo.c meminfo_proc_show
 * Also hugetlb_report_meminfo() and x86 arch_report_meminfo(). No swap, no buffers.
 * Not tracked (0): Committed_AS, VmallocUsed, Mapped unless the model counts nr_mapped.
 * The hugetlb pool's pages are allocated memory: they are not in MemFree or
 * MemAvailable, and CommitLimit leaves them out (vm_commit_limit).
 */
export function procMeminfo(g: Guest): string {
  const pgdat = g.pgdat;
  const node = (i: NodeStat) => globalNodePageState(pgdat, i);
  let totalram = 0;
  for (const z of pgdat.zones) totalram += z.managedPages;
  const freeram = globalZonePageState(pgdat, ZoneStat.nr_free_pages);
  const swapcache = node(NodeStat.nr_swapcached);
  const bufferram = 0;
  let cached = node(NodeStat.nr_file_pages) - swapcache - bufferram;
  if (cached < 0) cached = 0;
  const activeAnon = node(NodeStat.nr_active_anon), inactiveAnon = node(NodeStat.nr_inactive_anon);
  const activeFile = node(NodeStat.nr_active_file), inactiveFile = node(NodeStat.nr_inactive_file);
  const sreclaimable = node(NodeStat.nr_slab_reclaimable);
  const sunreclaim = node(NodeStat.nr_slab_unreclaimable);
  const overcommitRatio = 50;
  const h = pgdat.hugetlb;
  const commitLimit = Math.floor(((totalram - hugetlbTotalPages(h)) * overcommitRatio) / 100);
  const dm = directMapKb(g);
  return showValKb('MemTotal:', totalram) +
    showValKb('MemFree:', freeram) +
    showValKb('MemAvailable:', siMemAvailable(pgdat)) +
    showValKb('Buffers:', bufferram) +
    showValKb('Cached:', cached) +
    showValKb('SwapCached:', swapcache) +
    showValKb('Active:', activeAnon + activeFile) +
    showValKb('Inactive:', inactiveAnon + inactiveFile) +
    showValKb('Active(anon):', activeAnon) +
    showValKb('Inactive(anon):', inactiveAnon) +
    showValKb('Active(file):', activeFile) +
    showValKb('Inactive(file):', inactiveFile) +
    showValKb('Unevictable:', node(NodeStat.nr_unevictable)) +
    showValKb('Mlocked:', globalZonePageState(pgdat, ZoneStat.nr_mlock)) +
    showValKb('SwapTotal:', 0) +
    showValKb('SwapFree:', 0) +
    showValKb('Dirty:', node(NodeStat.nr_dirty)) +
    showValKb('Writeback:', node(NodeStat.nr_writeback)) +
    showValKb('AnonPages:', node(NodeStat.nr_anon_pages)) +
    showValKb('Mapped:', node(NodeStat.nr_mapped)) +
    showValKb('Shmem:', node(NodeStat.nr_shmem)) +
    showValKb('KReclaimable:', sreclaimable + node(NodeStat.nr_kernel_misc_reclaimable)) +
    showValKb('Slab:', sreclaimable + sunreclaim) +
    showValKb('SReclaimable:', sreclaimable) +
    showValKb('SUnreclaim:', sunreclaim) +
    showKb('KernelStack:', node(NodeStat.nr_kernel_stack)) +
    showValKb('PageTables:', node(NodeStat.nr_page_table_pages)) +
    showValKb('SecPageTables:', node(NodeStat.nr_sec_page_table_pages)) +
    showValKb('NFS_Unstable:', 0) +
    showValKb('Bounce:', globalZonePageState(pgdat, ZoneStat.nr_bounce)) +
    showValKb('WritebackTmp:', node(NodeStat.nr_writeback_temp)) +
    showValKb('CommitLimit:', commitLimit) +
    showValKb('Committed_AS:', 0) +
    // VMALLOC_TOTAL >> 10: the 4-level-paging vmalloc area is 32 TiB minus one byte.
    showKb('VmallocTotal:', 34359738367) +
    showValKb('VmallocUsed:', 0) +
    showValKb('VmallocChunk:', 0) +
    showValKb('Percpu:', PERCPU_PAGES_PER_CPU * pgdat.nrCpus) +
    showValKb('AnonHugePages:', node(NodeStat.nr_anon_transparent_hugepages)) +
    showValKb('ShmemHugePages:', node(NodeStat.nr_shmem_hugepages)) +
    showValKb('ShmemPmdMapped:', node(NodeStat.nr_shmem_pmdmapped)) +
    showValKb('FileHugePages:', node(NodeStat.nr_file_hugepages)) +
    showValKb('FilePmdMapped:', node(NodeStat.nr_file_pmdmapped)) +
    `${lj('HugePages_Total:', 19)}${rj(h.nrHugePages, 5)}\n` +
    `${lj('HugePages_Free:', 19)}${rj(h.freeHugePages, 5)}\n` +
    `${lj('HugePages_Rsvd:', 19)}${rj(h.resvHugePages, 5)}\n` +
    `${lj('HugePages_Surp:', 19)}${rj(h.surplusHugePages, 5)}\n` +
    showKb('Hugepagesize:', (pagesPerHugePage(h) << PAGE_SHIFT) >> 10) +
    showKb('Hugetlb:', (hugetlbTotalPages(h) << PAGE_SHIFT) >> 10) +
    showKb('DirectMap4k:', dm.k4) +
    showKb('DirectMap2M:', dm.m2);
}

// ---------------------------------------------------------------------------------
// debugfs extfrag/extfrag_index and extfrag/unusable_index

/** One line per populated zone with a value per order, as the extfrag debugfs files print. */
function perZoneOrderLines(g: Guest, cell: (order: number, info: ContigPageInfo) => string): string {
  const info: ContigPageInfo = createContigPageInfo();
  let s = '';
  for (let i = 0; i < MAX_NR_ZONES; i++) {
    const z = nodeZone(g.pgdat, i);
    if (!populated(z)) continue;
    s += nodeZonePrefix(z.name);
    for (let o = 0; o < MAX_ORDER; o++) {
      fillContigPageInfo(z, o, info);
      s += cell(o, info);
    }
    s += '\n';
  }
  return s;
}

/**
 * @kernel mm/vmstat.c extfrag_show_print
 * One line per populated zone: __fragmentation_index per order as "%2d.%03d " of
 * index / 1000 and index % 1000 (C division: -1000 prints "-1.000").
 */
export function procExtfragIndex(g: Guest): string {
  return perZoneOrderLines(g, (o, info) => {
    const index = __fragmentationIndex(o, info);
    return `${rj(Math.trunc(index / 1000), 2)}.${zeroPad(index % 1000, 3)} `;
  });
}

/**
 * @kernel mm/vmstat.c unusable_show_print
 * One line per populated zone: unusable_free_index per order as "%d.%03d ".
 */
export function procUnusableIndex(g: Guest): string {
  return perZoneOrderLines(g, (o, info) => {
    const index = __unusableFreeIndex(o, info);
    return `${Math.trunc(index / 1000)}.${zeroPad(index % 1000, 3)} `;
  });
}

// ---------------------------------------------------------------------------------
// page-types (tools/vm/page-types.c as shipped with 6.1), summary mode

/**
 * page_flag_names[]: "letter:name" per KPF bit, null where the tool has no name. The
 * 6.1 tool also names its own overloaded bits 47-51 and 61-63 (raw mode only).
 */
export const PAGE_FLAG_NAMES: readonly (string | null)[] = (() => {
  const t: (string | null)[] = new Array<string | null>(64).fill(null);
  const names: [number, string][] = [
    [0, 'L:locked'], [1, 'E:error'], [2, 'R:referenced'], [3, 'U:uptodate'], [4, 'D:dirty'], [5, 'l:lru'],
    [6, 'A:active'], [7, 'S:slab'], [8, 'W:writeback'], [9, 'I:reclaim'], [10, 'B:buddy'],
    [11, 'M:mmap'], [12, 'a:anonymous'], [13, 's:swapcache'], [14, 'b:swapbacked'], [15, 'H:compound_head'],
    [16, 'T:compound_tail'], [17, 'G:huge'], [18, 'u:unevictable'], [19, 'X:hwpoison'], [20, 'n:nopage'],
    [21, 'x:ksm'], [22, 't:thp'], [23, 'o:offline'], [24, 'z:zero_page'], [25, 'i:idle_page'], [26, 'g:pgtable'],
    [32, 'r:reserved'], [33, 'm:mlocked'], [34, 'd:mappedtodisk'], [35, 'P:private'], [36, 'p:private_2'],
    [37, 'O:owner_private'], [38, 'h:arch'], [39, 'c:uncached'], [40, 'f:softdirty'], [41, 'H:arch_2'],
    [47, 'd:anon_exclusive'], [48, 'I:readahead'], [49, 'P:slob_free'], [50, 'A:slub_frozen'], [51, 'E:slub_debug'],
    [61, 'F:file'], [62, 'w:swap'], [63, '1:mmap_exclusive'],
  ];
  for (const [bit, name] of names) t[bit] = name;
  return t;
})();

function bitSet(lo: number, hi: number, bit: number): boolean {
  return bit < 32 ? ((lo >>> bit) & 1) === 1 : ((hi >>> (bit - 32)) & 1) === 1;
}

/** page_flag_name(): one character per named bit, its letter when set, '_' otherwise. */
export function pageFlagName(lo: number, hi: number): string {
  let s = '';
  for (let i = 0; i < PAGE_FLAG_NAMES.length; i++) {
    const n = PAGE_FLAG_NAMES[i];
    if (n === null || n === undefined) {
      if (bitSet(lo, hi, i)) throw new RangeError(`page-types: unknown flag bit ${i}`);
      continue;
    }
    s += bitSet(lo, hi, i) ? n[0] : '_';
  }
  return s;
}

/**
 * page_flag_longname(): the names of the set bits, comma-separated. Bit 23 is
 * KPF_OFFLINE ("offline") from Linux 4.20 on, KPF_BALLOON ("balloon") before: the
 * tools of a kernel whose balloon pages are PG_balloon print the old name.
 */
export function pageFlagLongname(lo: number, hi: number, balloonPageType: 'offline' | 'balloon' | 'none' = 'offline'): string {
  const parts: string[] = [];
  for (let i = 0; i < PAGE_FLAG_NAMES.length; i++) {
    const n = PAGE_FLAG_NAMES[i];
    // bit 23 is never set on a kernel without a balloon page flag ('none'): walkKpageflags leaves it out
    if (n && bitSet(lo, hi, i)) parts.push(i === KPF_OFFLINE ? (balloonPageType === 'balloon' ? 'balloon' : 'offline') : n.slice(2));
  }
  return parts.join(',');
}

const HASH_SHIFT = 13;
const HASH_SIZE = 1 << HASH_SHIFT;
const HASH_MASK = HASH_SIZE - 1;
/** KPF_HACKERS_BITS (0xffff << 32), as a mask on the high word. */
const HACKERS_BITS_HI = 0xffff;
const BITS_COMPOUND = (1 << KPF_COMPOUND_HEAD) | (1 << KPF_COMPOUND_TAIL);

/** One row of the page-types summary. */
export type PageTypesRow = { lo: number; hi: number; pages: number };

/**
 * @kernel tools/vm/page-types.c add_page
 * The summary page-types gathers with no options: every physical pfn's KPF word through
 * well_known_flags() (kernel-hacker bits hidden, compound bits hidden unless HUGE),
 * counted per distinct value in the tool's open-addressed hash table, rows in slot
 * order (flags 0 in slot 0; others at flags & 8191, probing upwards, wrapping to 1),
 * which is the order the tool prints them in.
 */
export function pageTypesSummary(g: Guest): { rows: PageTypesRow[]; total: number } {
  const slotLo = new Uint32Array(HASH_SIZE);
  const slotHi = new Uint32Array(HASH_SIZE);
  const nrPages = new Float64Array(HASH_SIZE);
  let total = 0;
  let lastLo = 0, lastHi = 0, lastSlot = 0;
  // hash_slot()
  const hashSlot = (lo: number, hi: number): number => {
    if (lo === 0 && hi === 0) return 0;
    let k = lo & HASH_MASK;
    for (let i = 1; i < HASH_SIZE; i++, k++) {
      if (!k || k >= HASH_SIZE) k = 1;
      if (slotLo[k] === 0 && slotHi[k] === 0) {
        slotLo[k] = lo;
        slotHi[k] = hi;
        return k;
      }
      if (slotLo[k] === lo && slotHi[k] === hi) return k;
    }
    throw new RangeError('page-types: hash table full');
  };
  walkKpageflags(g, (_phys, lo, hi) => {
    // well_known_flags()
    hi = (hi & ~HACKERS_BITS_HI) >>> 0;
    if ((lo & BITS_COMPOUND) && !(lo & (1 << KPF_HUGE))) lo = (lo & ~BITS_COMPOUND) >>> 0;
    // NOTE: consecutive pages usually share flags; skip the probe when they do.
    if (lo !== lastLo || hi !== lastHi) {
      lastSlot = hashSlot(lo, hi);
      lastLo = lo;
      lastHi = hi;
    }
    nrPages[lastSlot]!++;
    total++;
  });
  const rows: PageTypesRow[] = [];
  for (let i = 0; i < HASH_SIZE; i++) if (nrPages[i]) rows.push({ lo: slotLo[i]!, hi: slotHi[i]!, pages: nrPages[i]! });
  return { rows, total };
}

/** pages2mb() */
function pages2mb(pages: number): number {
  return Math.floor((pages * (1 << PAGE_SHIFT)) / (1 << 20));
}

/**
 * @kernel tools/vm/page-types.c show_summary
 * The table `page-types` prints with no options.
 */
export function pageTypes(g: Guest): string {
  const { rows, total } = pageTypesSummary(g);
  let s = '             flags\tpage-count       MB  symbolic-flags\t\t\tlong-symbolic-flags\n';
  for (const r of rows) {
    const hex = r.hi.toString(16).padStart(8, '0') + r.lo.toString(16).padStart(8, '0');
    s += `0x${hex}\t${rj(r.pages, 10)} ${rj(pages2mb(r.pages), 8)}  ${pageFlagName(r.lo, r.hi)}\t${pageFlagLongname(r.lo, r.hi, g.pgdat.balloonPageType)}\n`;
  }
  s += `             total\t${rj(total, 10)} ${rj(pages2mb(total), 8)}\n`;
  return s;
}
