/**
 * Booting the guest's memory: what a real Linux 6.1 boot leaves behind.
 *
 * The recipe, in the kernel's order (docs/boot.md has the derivation of every number):
 *
 * 1. memmap_init: every pageblock starts MIGRATE_MOVABLE, except that pageblocks
 *    whose first PFN is not RAM are never set (they stay 0 = MIGRATE_UNMOVABLE; the
 *    real DMA zone shows one such block), and — with DEFERRED_STRUCT_PAGE_INIT, which
 *    Debian enables — pageblocks in the deferred part of the last zone are set to
 *    MOVABLE only when their first page is freed to the buddy, so blocks that begin
 *    with memblock-reserved memory stay UNMOVABLE. This is why a real 1 GiB guest
 *    shows 38 Unmovable pageblocks with only a few thousand unmovable pages in use.
 * 2. memblock reservations (never given to the buddy; PG_reserved): the low 1 MiB,
 *    the kernel image (placed by KASLR at a seeded random 2 MiB-aligned address, or
 *    at 16 MiB with kaslr off), and, allocated top-down as memblock does, the memmap
 *    (64 bytes per page of each 128 MiB section), the dentry and inode hash tables,
 *    swiotlb's 64 MiB bounce buffer (only when RAM reaches above 4 GiB), and a small
 *    remainder (percpu first chunk, early page tables, brk).
 * 3. memblock_free_all: free ranges go to the buddy in naturally aligned blocks, to
 *    the tail of the free lists; the non-deferred part first.
 * 4. Early boot allocations (a share of slab) come from that part; then deferred
 *    init frees the rest of the last zone.
 * 5. The rest of boot: slab (unreclaimable and reclaimable), vmalloc'd module and
 *    driver memory, kernel stacks, percpu chunks, page tables, the initramfs in tmpfs
 *    (shmem) and a little anonymous memory, interleaved in seeded random order with
 *    short-lived allocations that are freed before boot ends (many into the per-cpu
 *    lists, where MemFree does not see them, as in the real guest).
 *
 * Proportions come from a real 1 GiB Debian 6.1 cloud-kernel guest (shared reference
 * outputs); they are kept fixed across memory sizes except where the kernel scales
 * them (memmap, hash tables, swiotlb). See docs/boot.md and docs/model-limits.md.
 */
import { type Rng, rngBelow, rngFloat } from '../../sim/rng.js';
import {
  MAX_ORDER, PAGEBLOCK_ORDER, PAGEBLOCK_NR_PAGES, NO_PAGE, MigrateType, Owner, PG, PageType,
  setPageblockMigratetype,
  setPageType, resetPages,
} from './memmap.js';
import { type PgData, type Zone, ZoneType, createZone } from './mmzone.js';
import type { ThpEnabled, ThpDefrag } from './sysctl.js';
import { type MemLayout, GuestConfigError, physPfn, BIOS_TOP_RESERVED_PAGES, LOW_RAM_END_PFN, LOW_1MIB_PFN } from './layout.js';
import { allocPages, freePages, freeBootBlock, setupPerZoneWmarks, setupPerZoneLowmemReserve, setupPagesets, defaultMinFreeKbytes } from './page_alloc.js';
import { GFP_KERNEL, GFP_HIGHUSER_MOVABLE, __GFP_RECLAIMABLE, __GFP_COMP } from './gfp.js';

const MiB = 1024 * 1024;
/** PAGES_PER_SECTION on x86-64 (128 MiB sections). */
export const PAGES_PER_SECTION = 1 << 15;

/** Boot options that shape memory (kernel command line and config). */
export type BootParams = {
  /** Physical KASLR (Debian: CONFIG_RANDOMIZE_BASE=y). Off: the image sits at 16 MiB. */
  kaslr: boolean;
  /** Size of the kernel image, text to end of bss, in bytes. */
  kernelImageBytes: number;
  /** vm.min_free_kbytes; null = the kernel's default (raised by THP when enabled). */
  minFreeKbytes: number | null;
  /** transparent_hugepage/enabled (anything but never raises min_free_kbytes). */
  thp: ThpEnabled;
  /** transparent_hugepage/defrag. */
  thpDefrag: ThpDefrag;
  /** Scales the boot-time kernel allocations (1 = the reference guest's footprint). */
  footprint: number;
  /** init_on_alloc= (Debian: CONFIG_INIT_ON_ALLOC_DEFAULT_ON=y): zero every allocation. */
  initOnAlloc: boolean;
  /** init_on_free=: zero every freed page. */
  initOnFree: boolean;
  /** page_poison=: fill freed pages with PAGE_POISON (0xaa) and check it on allocation. */
  pagePoison: boolean;
};

export const DEFAULT_BOOT: BootParams = {
  kaslr: true,
  kernelImageBytes: 30 * MiB,
  minFreeKbytes: null,
  thp: 'always',
  thpDefrag: 'madvise',
  footprint: 1,
  initOnAlloc: true,
  initOnFree: false,
  pagePoison: false,
};

/**
 * Boot-time page use of the reference 1 GiB guest, in pages (from its /proc/meminfo
 * and /proc/vmstat, 5 s after boot). `transient` is allocated and freed during boot
 * (pgalloc minus pages still in use).
 */
export const BOOT_FOOTPRINT = {
  slabUnreclaimable: 1524,
  slabReclaimable: 2254,
  /** VmallocUsed 7260 kB plus driver pages not counted elsewhere. */
  kernel: 2229,
  kernelStack: 187,
  pageTable: 10,
  percpu: 64,
  shmem: 774,
  anon: 25,
  transient: 3000,
} as const;

/** Memblock "remainder" pages not itemised above (percpu first chunk, early page tables, brk). */
const MEMBLOCK_MISC_PAGES = 540;
/** Share of slab allocated before deferred struct page init finishes. */
const EARLY_SLAB_SHARE = 0.3;

/**
 * memblock_alloc() top-down: the highest range of `pages` pages below `limit`,
 * aligned to `align` pages, that is RAM and not yet reserved; reserves it.
 */
function memblockAllocTopDown(resv: Uint8Array, pages: number, limit: number, align: number): number {
  let end = limit;
  while (end - pages >= 0) {
    const start = (end - pages) - ((end - pages) % align);
    let clash = -1;
    for (let p = start + pages - 1; p >= start; p--) if (resv[p]) { clash = p; break; }
    if (clash < 0) {
      resv.fill(1, start, start + pages);
      return start;
    }
    end = clash;
  }
  throw new GuestConfigError(`boot: no room for a ${pages}-page memblock allocation`);
}

/**
 * __free_pages_memory() over [start, end): every run of unreserved pages goes to the
 * buddy as the largest naturally aligned blocks that fit.
 */
function freeRange(pgdat: PgData, resv: Uint8Array, start: number, end: number): void {
  let p = start;
  while (p < end) {
    if (resv[p]) { p++; continue; }
    let q = p;
    while (q < end && !resv[q]) q++;
    while (p < q) {
      let order = MAX_ORDER - 1;
      while (order > 0 && ((p & ((1 << order) - 1)) !== 0 || p + (1 << order) > q)) order--;
      freeBootBlock(pgdat, p, order);
      p += 1 << order;
    }
  }
}

/** Builds the zones of the layout (empty Normal when all RAM is below 4 GiB). */
function setupZones(pgdat: PgData, layout: MemLayout): void {
  const map = pgdat.map;
  const dma32End = Math.min(layout.lowmemPages, layout.nrPages) - BIOS_TOP_RESERVED_PAGES;
  const dmaPresent = (LOW_RAM_END_PFN - 1) + (4096 - LOW_1MIB_PFN);
  pgdat.zones = [
    createZone(map, ZoneType.dma, 1, 4095, dmaPresent, pgdat.nrCpus),
    createZone(map, ZoneType.dma32, 4096, dma32End - 4096, dma32End - 4096, pgdat.nrCpus),
    createZone(map, ZoneType.normal, layout.lowmemPages, layout.nrPages - layout.lowmemPages,
      layout.nrPages - layout.lowmemPages, pgdat.nrCpus),
  ];
}

/** The memmap PFN where deferred struct page init starts (defer_init), or nrPages. */
export function firstDeferredPfn(pgdat: PgData, layout: MemLayout): number {
  let last: Zone | undefined;
  for (const z of pgdat.zones) if (z.spannedPages > 0) last = z;
  if (!last) return layout.nrPages;
  // 6.1 defer_init(): one section's worth of pages of the last zone is initialised, then
  // deferral starts at the next (physical) section boundary.
  const startPhys = physPfn(layout, last.zoneStartPfn);
  let phys = startPhys + PAGES_PER_SECTION;
  phys = Math.ceil(phys / PAGES_PER_SECTION) * PAGES_PER_SECTION;
  const first = last.zoneStartPfn + (phys - startPhys);
  return Math.min(first, last.zoneStartPfn + last.spannedPages);
}

type BootItem = { owner: Owner; gfp: number; pages: number; transient: boolean };

/** The order of a boot allocation: slab uses orders 0-3 (slub_max_order), the rest order 0. */
function bootOrder(rng: Rng, owner: Owner): number {
  if (owner !== Owner.slabReclaimable && owner !== Owner.slabUnreclaimable) return 0;
  const r = rngFloat(rng);
  return r < 0.7 ? 0 : r < 0.82 ? 1 : r < 0.88 ? 2 : 3;
}

/**
 * Runs the boot-time allocations: draws categories in proportion to what is left of
 * each, allocates, and frees the transient ones at the end in random order.
 */
function bootAllocations(pgdat: PgData, rng: Rng, items: BootItem[], held: number[]): void {
  const left = items.map((i) => i.pages);
  let total = left.reduce((a, b) => a + b, 0);
  const transient: number[] = [];
  while (total > 0) {
    let r = rngBelow(rng, total);
    let k = 0;
    while (r >= left[k]!) { r -= left[k]!; k++; }
    const it = items[k]!;
    let order = bootOrder(rng, it.owner);
    while (order > 0 && (1 << order) > left[k]!) order--;
    const pfn = allocPages(pgdat, it.gfp | (order ? __GFP_COMP : 0), order, it.owner);
    if (pfn === NO_PAGE) throw new GuestConfigError('boot: out of memory during boot allocations (guest too small)');
    if (it.owner === Owner.pageTable) setPageType(pgdat.map, pfn, PageType.table);
    left[k] = left[k]! - (1 << order);
    total -= 1 << order;
    (it.transient ? transient : held).push(pfn, order);
  }
  // free transients in a random order (Fisher-Yates over pairs)
  const n = transient.length >> 1;
  for (let i = n - 1; i > 0; i--) {
    const j = rngBelow(rng, i + 1);
    const a0 = transient[2 * i]!, a1 = transient[2 * i + 1]!;
    transient[2 * i] = transient[2 * j]!; transient[2 * i + 1] = transient[2 * j + 1]!;
    transient[2 * j] = a0; transient[2 * j + 1] = a1;
  }
  for (let i = 0; i < n; i++) freePages(pgdat, transient[2 * i]!, transient[2 * i + 1]!);
}

function scaled(n: number, f: number): number {
  return Math.max(0, Math.round(n * f));
}

/** Pages of the dentry and inode hash tables (alloc_large_system_hash, scales 13 and 14). */
export function hashTablePages(nrPages: number): number {
  const pow2 = (x: number) => 2 ** Math.ceil(Math.log2(Math.max(1, x)));
  const dentry = pow2(nrPages >> 1) * 8;
  const inode = pow2(nrPages >> 2) * 8;
  return Math.ceil((dentry + inode) / 4096);
}

/**
 * Boots the guest's memory. `held` receives (pfn, order) pairs of the long-lived boot
 * allocations, in case a caller wants to release them (tests do).
 */
export function bootMemory(pgdat: PgData, layout: MemLayout, params: BootParams, rng: Rng, held: number[] = []): void {
  const map = pgdat.map;
  setupZones(pgdat, layout);
  const nr = layout.nrPages;

  // resv: 1 where the page is a hole or memblock-reserved (never freed to the buddy).
  const resv = new Uint8Array(nr).fill(1);
  const dma32End = Math.min(layout.lowmemPages, nr) - BIOS_TOP_RESERVED_PAGES;
  resv.fill(0, 1, LOW_RAM_END_PFN);
  resv.fill(0, LOW_1MIB_PFN, dma32End);
  resv.fill(0, layout.lowmemPages, nr);
  const isRam = (pfn: number) => (pfn >= 1 && pfn < LOW_RAM_END_PFN) || (pfn >= LOW_1MIB_PFN && pfn < dma32End) || pfn >= layout.lowmemPages;

  // Until freed, every page is reserved; holes and memblock reservations stay so.
  resetPages(map, 0, map.nrPages, Owner.reserved, PG.reserved);
  pgdat.ownerPages[Owner.reserved] = nr;

  // memblock reservations: the low 1 MiB, the kernel image, then top-down allocations.
  resv.fill(1, 0, LOW_1MIB_PFN);
  const imagePages = Math.ceil(params.kernelImageBytes / 4096 / PAGEBLOCK_NR_PAGES) * PAGEBLOCK_NR_PAGES;
  const kaslrMin = 4096; // 16 MiB, CONFIG_PHYSICAL_START
  const kaslrSlots = Math.max(1, Math.floor((dma32End - imagePages - kaslrMin) / PAGEBLOCK_NR_PAGES));
  const imageStart = params.kaslr ? kaslrMin + rngBelow(rng, kaslrSlots) * PAGEBLOCK_NR_PAGES : kaslrMin;
  resv.fill(1, imageStart, imageStart + imagePages);
  const sections = Math.ceil(nr / PAGES_PER_SECTION);
  memblockAllocTopDown(resv, (sections * PAGES_PER_SECTION * 64) / 4096, nr, PAGEBLOCK_NR_PAGES); // memmap (vmemmap, 2 MiB pages)
  memblockAllocTopDown(resv, hashTablePages(nr), nr, 1);
  if (layout.holePages > 0) memblockAllocTopDown(resv, (64 * MiB) / 4096, dma32End, PAGEBLOCK_NR_PAGES); // swiotlb, below 4 GiB
  memblockAllocTopDown(resv, MEMBLOCK_MISC_PAGES, nr, 1);

  // memmap_init: pageblock types, deferred init rule
  const deferred = firstDeferredPfn(pgdat, layout);
  for (let b = 0; b < nr >> PAGEBLOCK_ORDER; b++) {
    const first = b << PAGEBLOCK_ORDER;
    let mt: MigrateType = MigrateType.movable;
    if (!isRam(first)) mt = MigrateType.unmovable;
    else if (first >= deferred && resv[first]) mt = MigrateType.unmovable;
    setPageblockMigratetype(map, first, mt);
  }

  // Watermarks follow managed pages; the kernel sets them up after memblock_free_all
  // and again when deferred init has finished.
  freeRange(pgdat, resv, 0, Math.min(deferred, nr));
  setupWatermarks(pgdat, params);

  const f = params.footprint;
  const fp = BOOT_FOOTPRINT;
  const early: BootItem[] = [
    { owner: Owner.slabUnreclaimable, gfp: GFP_KERNEL, pages: scaled(fp.slabUnreclaimable * EARLY_SLAB_SHARE, f), transient: false },
    { owner: Owner.slabReclaimable, gfp: GFP_KERNEL | __GFP_RECLAIMABLE, pages: scaled(fp.slabReclaimable * EARLY_SLAB_SHARE, f), transient: false },
  ];
  bootAllocations(pgdat, rng, early, held);

  // deferred_init_memmap
  if (deferred < nr) freeRange(pgdat, resv, deferred, nr);
  setupWatermarks(pgdat, params);

  const late: BootItem[] = [
    { owner: Owner.slabUnreclaimable, gfp: GFP_KERNEL, pages: scaled(fp.slabUnreclaimable * (1 - EARLY_SLAB_SHARE), f), transient: false },
    { owner: Owner.slabReclaimable, gfp: GFP_KERNEL | __GFP_RECLAIMABLE, pages: scaled(fp.slabReclaimable * (1 - EARLY_SLAB_SHARE), f), transient: false },
    { owner: Owner.kernel, gfp: GFP_KERNEL, pages: scaled(fp.kernel + fp.percpu, f), transient: false },
    { owner: Owner.kernelStack, gfp: GFP_KERNEL, pages: scaled(fp.kernelStack, f) + 4 * (pgdat.nrCpus - 1), transient: false },
    { owner: Owner.pageTable, gfp: GFP_KERNEL, pages: scaled(fp.pageTable, f), transient: false },
    { owner: Owner.shmem, gfp: GFP_HIGHUSER_MOVABLE, pages: scaled(fp.shmem, f), transient: false },
    { owner: Owner.anon, gfp: GFP_HIGHUSER_MOVABLE, pages: scaled(fp.anon, f), transient: false },
    { owner: Owner.kernel, gfp: GFP_KERNEL, pages: scaled(fp.transient / 2, f), transient: true },
    { owner: Owner.file, gfp: GFP_HIGHUSER_MOVABLE, pages: scaled(fp.transient / 2, f), transient: true },
  ];
  bootAllocations(pgdat, rng, late, held);
}

/** init_per_zone_wmark_min(): min_free_kbytes, watermarks, lowmem reserves, pagesets. */
export function setupWatermarks(pgdat: PgData, params: BootParams): void {
  pgdat.sysctl.minFreeKbytes = params.minFreeKbytes ?? defaultMinFreeKbytes(pgdat, params.thp !== 'never');
  // a value given for the guest stands for one written to /proc/sys/vm/min_free_kbytes
  pgdat.sysctl.userMinFreeKbytes = params.minFreeKbytes ?? -1;
  pgdat.sysctl.thp = { enabled: params.thp, defrag: params.thpDefrag };
  pgdat.boot.initOnAlloc = params.initOnAlloc;
  pgdat.boot.initOnFree = params.initOnFree || params.pagePoison;
  pgdat.boot.pagePoisoning = params.pagePoison && !params.initOnFree;
  setupPerZoneWmarks(pgdat);
  setupPerZoneLowmemReserve(pgdat);
  setupPagesets(pgdat);
}
