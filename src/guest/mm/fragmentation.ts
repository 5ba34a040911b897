/**
 * External fragmentation measures of a zone (mm/vmstat.c, Linux 6.1).
 *
 * Both indices look only at the free lists' counts (free_area[order].nr_free, i.e.
 * zone.nrFree[order]) and answer "why would an allocation of this order fail?":
 *
 * - the fragmentation index (__fragmentation_index), which compaction uses to decide
 *   whether a failure is due to fragmentation (towards 1000) or to a lack of memory
 *   (towards 0), and which is -1000 when the allocation would succeed because a
 *   large enough free block exists;
 * - the unusable free space index (unusable_free_index): the share of free memory, in
 *   thousandths, that sits in blocks too small for the order.
 *
 * Both are the kernel's integers (thousandths, integer division as in div_u64); the
 * debugfs files /sys/kernel/debug/extfrag/{extfrag_index,unusable_index} print them
 * as "%d.%03d" (report/proc.ts).
 */
import { MAX_ORDER } from './memmap.js';
import type { Zone } from './mmzone.js';

/** struct contig_page_info: free memory of a zone as seen from one order. */
export type ContigPageInfo = {
  /** Free base pages (sum of nr_free << order). */
  freePages: number;
  /** Free blocks of any order. */
  freeBlocksTotal: number;
  /** Free blocks of the suitable order, counting each larger block as 2^(order - suitable) of them. */
  freeBlocksSuitable: number;
};

export function createContigPageInfo(): ContigPageInfo {
  return { freePages: 0, freeBlocksTotal: 0, freeBlocksSuitable: 0 };
}

/**
 * @kernel mm/vmstat.c fill_contig_page_info
 * Counts the zone's free blocks (from nr_free) as seen by an allocation of
 * suitableOrder; fills info (caller-owned, so a walk over orders allocates nothing).
 */
export function fillContigPageInfo(zone: Zone, suitableOrder: number, info: ContigPageInfo): void {
  info.freePages = 0;
  info.freeBlocksTotal = 0;
  info.freeBlocksSuitable = 0;
  const nrFree = zone.nrFree;
  for (let order = 0; order < MAX_ORDER; order++) {
    const blocks = nrFree[order]!;
    info.freeBlocksTotal += blocks;
    info.freePages += blocks * 2 ** order;
    if (order >= suitableOrder) info.freeBlocksSuitable += blocks * 2 ** (order - suitableOrder);
  }
}

/**
 * @kernel mm/vmstat.c __fragmentation_index
 * -1000 when a suitable block exists (the allocation would not fail); 0 for a zone
 * with no free blocks or an order out of range; otherwise
 * 1000 - (1000 + free_pages * 1000 / 2^order) / free_blocks_total, with the kernel's
 * integer divisions. The result can be negative when there are fewer free pages than
 * the request (e.g. -500 for one free page and order 1), exactly as in the kernel.
 */
export function __fragmentationIndex(order: number, info: ContigPageInfo): number {
  if (order >= MAX_ORDER) return 0; // WARN_ON_ONCE in the kernel
  if (!info.freeBlocksTotal) return 0;
  if (info.freeBlocksSuitable) return -1000;
  const requested = 2 ** order;
  return 1000 - Math.floor((1000 + Math.floor((info.freePages * 1000) / requested)) / info.freeBlocksTotal);
}

/** Scratch for the zone-level wrappers (they never allocate). */
const scratch: ContigPageInfo = createContigPageInfo();

/**
 * @kernel mm/vmstat.c fragmentation_index
 * The zone's fragmentation index for an order, in thousandths (-1000..1000).
 */
export function fragmentationIndex(zone: Zone, order: number): number {
  fillContigPageInfo(zone, order, scratch);
  return __fragmentationIndex(order, scratch);
}

/**
 * The fragmentation index as the fraction the debugfs file shows (-1.000 .. 1.000):
 * the kernel's integer divided by 1000.
 */
export function fragmentationIndexFloat(zone: Zone, order: number): number {
  return fragmentationIndex(zone, order) / 1000;
}

/**
 * @kernel mm/vmstat.c unusable_free_index
 * Thousandths of free memory that cannot serve an allocation of this order; 1000
 * when nothing is free (all free memory counts as unusable).
 */
export function __unusableFreeIndex(order: number, info: ContigPageInfo): number {
  if (info.freePages === 0) return 1000;
  return Math.floor(((info.freePages - info.freeBlocksSuitable * 2 ** order) * 1000) / info.freePages);
}

/** unusable_free_index() for a zone (fill_contig_page_info + unusable_free_index). */
export function unusableFreeIndex(zone: Zone, order: number): number {
  fillContigPageInfo(zone, order, scratch);
  return __unusableFreeIndex(order, scratch);
}

/** The unusable free space index as the fraction the debugfs file shows (0.000 .. 1.000). */
export function unusableFreeIndexFloat(zone: Zone, order: number): number {
  return unusableFreeIndex(zone, order) / 1000;
}
