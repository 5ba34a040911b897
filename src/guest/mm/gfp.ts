/**
 * GFP flags and allocation flags, with the kernel's bit values (include/linux/gfp_types.h,
 * Linux 6.1) so a trace reads like the kernel's, and the two mappings the allocator
 * needs: gfp_zone() and gfp_migratetype().
 */
import { MigrateType } from './memmap.js';
import { ZoneType } from './mmzone.js';

export const __GFP_DMA = 0x01;
export const __GFP_HIGHMEM = 0x02;
export const __GFP_DMA32 = 0x04;
export const __GFP_MOVABLE = 0x08;
export const __GFP_RECLAIMABLE = 0x10;
export const __GFP_HIGH = 0x20;
export const __GFP_IO = 0x40;
export const __GFP_FS = 0x80;
export const __GFP_ZERO = 0x100;
export const __GFP_ATOMIC = 0x200;
export const __GFP_DIRECT_RECLAIM = 0x400;
export const __GFP_KSWAPD_RECLAIM = 0x800;
export const __GFP_WRITE = 0x1000;
export const __GFP_NOWARN = 0x2000;
export const __GFP_RETRY_MAYFAIL = 0x4000;
export const __GFP_NOFAIL = 0x8000;
export const __GFP_NORETRY = 0x10000;
export const __GFP_MEMALLOC = 0x20000;
export const __GFP_COMP = 0x40000;
export const __GFP_NOMEMALLOC = 0x80000;
export const __GFP_HARDWALL = 0x100000;
export const __GFP_THISNODE = 0x200000;
export const __GFP_ACCOUNT = 0x400000;

export const __GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM;
export const GFP_ATOMIC = __GFP_HIGH | __GFP_ATOMIC | __GFP_KSWAPD_RECLAIM;
export const GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS;
export const GFP_KERNEL_ACCOUNT = GFP_KERNEL | __GFP_ACCOUNT;
export const GFP_NOWAIT = __GFP_KSWAPD_RECLAIM;
export const GFP_NOIO = __GFP_RECLAIM;
export const GFP_NOFS = __GFP_RECLAIM | __GFP_IO;
export const GFP_USER = __GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL;
export const GFP_DMA = __GFP_DMA;
export const GFP_DMA32 = __GFP_DMA32;
export const GFP_HIGHUSER = GFP_USER | __GFP_HIGHMEM;
export const GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER | __GFP_MOVABLE;
export const GFP_TRANSHUGE_LIGHT = (GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOMEMALLOC | __GFP_NOWARN) & ~__GFP_RECLAIM;
export const GFP_TRANSHUGE = GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM;

const GFP_MOVABLE_SHIFT = 3;
const GFP_MOVABLE_MASK = __GFP_RECLAIMABLE | __GFP_MOVABLE;

/** gfp_migratetype(): __GFP_MOVABLE -> MOVABLE, __GFP_RECLAIMABLE -> RECLAIMABLE, else UNMOVABLE. */
export function gfpMigratetype(gfp: number): MigrateType {
  return ((gfp & GFP_MOVABLE_MASK) >>> GFP_MOVABLE_SHIFT) as MigrateType;
}

/**
 * gfp_zone(): the highest zone an allocation may use. There is no ZONE_MOVABLE in the
 * model (no movablecore= / kernelcore=), so __GFP_HIGHMEM|__GFP_MOVABLE means Normal.
 */
export function gfpZone(gfp: number): ZoneType {
  if (gfp & __GFP_DMA) return ZoneType.dma;
  if (gfp & __GFP_DMA32) return ZoneType.dma32;
  return ZoneType.normal;
}

/**
 * @kernel include/linux/gfp.h gfp_zone (GFP_ZONE_TABLE)
 * The zone index the kernel's gfp_zone() gives on x86-64, ZONE_MOVABLE (3) included:
 * __GFP_MOVABLE with __GFP_HIGHMEM (GFP_HIGHUSER_MOVABLE) is ZONE_MOVABLE whether or
 * not that zone has pages. Direct reclaim counts its stalls by it (sc->reclaim_idx);
 * allocation itself uses gfpZone, clamped to the zones the node has.
 */
export function gfpZoneIdx(gfp: number): number {
  if (gfp & __GFP_DMA) return 0;
  if (gfp & __GFP_DMA32) return 1;
  if ((gfp & (__GFP_MOVABLE | __GFP_HIGHMEM)) === (__GFP_MOVABLE | __GFP_HIGHMEM)) return 3;
  return 2;
}

/** Allocation flags (mm/internal.h ALLOC_*), 6.1 values. */
export const ALLOC_WMARK_MIN = 0;
export const ALLOC_WMARK_LOW = 1;
export const ALLOC_WMARK_HIGH = 2;
export const ALLOC_NO_WATERMARKS = 0x04;
export const ALLOC_WMARK_MASK = ALLOC_NO_WATERMARKS - 1;
export const ALLOC_OOM = 0x08;
export const ALLOC_HARDER = 0x10;
export const ALLOC_HIGH = 0x20;
export const ALLOC_CPUSET = 0x40;
export const ALLOC_CMA = 0x80;
export const ALLOC_NOFRAGMENT = 0x100;
export const ALLOC_KSWAPD = 0x800;

/** Names of the GFP flags, for error messages and traces (gfpFlagNames(GFP_KERNEL)). */
const GFP_NAMES: ReadonlyArray<readonly [number, string]> = [
  [__GFP_DMA, '__GFP_DMA'], [__GFP_HIGHMEM, '__GFP_HIGHMEM'], [__GFP_DMA32, '__GFP_DMA32'],
  [__GFP_MOVABLE, '__GFP_MOVABLE'], [__GFP_RECLAIMABLE, '__GFP_RECLAIMABLE'], [__GFP_HIGH, '__GFP_HIGH'],
  [__GFP_IO, '__GFP_IO'], [__GFP_FS, '__GFP_FS'], [__GFP_ZERO, '__GFP_ZERO'], [__GFP_ATOMIC, '__GFP_ATOMIC'],
  [__GFP_DIRECT_RECLAIM, '__GFP_DIRECT_RECLAIM'], [__GFP_KSWAPD_RECLAIM, '__GFP_KSWAPD_RECLAIM'],
  [__GFP_WRITE, '__GFP_WRITE'], [__GFP_NOWARN, '__GFP_NOWARN'], [__GFP_RETRY_MAYFAIL, '__GFP_RETRY_MAYFAIL'],
  [__GFP_NOFAIL, '__GFP_NOFAIL'], [__GFP_NORETRY, '__GFP_NORETRY'], [__GFP_MEMALLOC, '__GFP_MEMALLOC'],
  [__GFP_COMP, '__GFP_COMP'], [__GFP_NOMEMALLOC, '__GFP_NOMEMALLOC'], [__GFP_HARDWALL, '__GFP_HARDWALL'],
  [__GFP_THISNODE, '__GFP_THISNODE'], [__GFP_ACCOUNT, '__GFP_ACCOUNT'],
];

/** The flags set in gfp, as kernel names joined by '|' (like the page_alloc tracepoint). */
export function gfpFlagNames(gfp: number): string {
  const parts: string[] = [];
  for (const [bit, name] of GFP_NAMES) if (gfp & bit) parts.push(name);
  return parts.length ? parts.join('|') : '0';
}

/**
 * @kernel include/trace/events/mmflags.h __def_gfpflag_names, kernel/trace/trace_output.c trace_print_flags_seq
 * A mask as the tracepoints print it: the composite masks first (the first whose bits
 * are all set takes them), then the flags left, joined by '|'.
 */
const GFP_TRACE_COMPOSITES: ReadonlyArray<readonly [number, string]> = [
  [GFP_TRANSHUGE, 'GFP_TRANSHUGE'], [GFP_TRANSHUGE_LIGHT, 'GFP_TRANSHUGE_LIGHT'], [GFP_HIGHUSER_MOVABLE, 'GFP_HIGHUSER_MOVABLE'],
  [GFP_HIGHUSER, 'GFP_HIGHUSER'], [GFP_USER, 'GFP_USER'], [GFP_KERNEL, 'GFP_KERNEL'], [GFP_NOFS, 'GFP_NOFS'], [GFP_ATOMIC, 'GFP_ATOMIC'],
  [GFP_NOIO, 'GFP_NOIO'], [GFP_NOWAIT, 'GFP_NOWAIT'], [GFP_DMA, 'GFP_DMA'], [__GFP_HIGHMEM, '__GFP_HIGHMEM'], [GFP_DMA32, 'GFP_DMA32'],
];

export function gfpTraceNames(gfp: number): string {
  const parts: string[] = [];
  let left = gfp;
  for (const [mask, name] of GFP_TRACE_COMPOSITES) if (mask !== 0 && (left & mask) === mask) { parts.push(name); left &= ~mask; }
  for (const [bit, name] of GFP_NAMES) if (left & bit) { parts.push(name); left &= ~bit; }
  return parts.length ? parts.join('|') : '0';
}

/** Named GFP masks a scenario may use. */
export const GFP_BY_NAME: Readonly<Record<string, number>> = {
  GFP_KERNEL, GFP_ATOMIC, GFP_NOWAIT, GFP_NOIO, GFP_NOFS, GFP_USER, GFP_HIGHUSER, GFP_HIGHUSER_MOVABLE,
  GFP_TRANSHUGE, GFP_TRANSHUGE_LIGHT, GFP_DMA, GFP_DMA32, __GFP_MOVABLE, __GFP_RECLAIMABLE, __GFP_NORETRY,
  __GFP_RETRY_MAYFAIL, __GFP_NOWARN, __GFP_NOMEMALLOC, __GFP_COMP, __GFP_NOFAIL, __GFP_HIGH, __GFP_ZERO,
};

/** A mask as a scenario would write it: the named mask it equals (GFP_KERNEL), else its flags. */
export function gfpName(gfp: number): string {
  for (const [name, mask] of Object.entries(GFP_BY_NAME)) if (mask === gfp && name.startsWith('GFP_')) return name;
  return gfpFlagNames(gfp);
}
