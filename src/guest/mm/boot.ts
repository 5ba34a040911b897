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
 * 4. kmem_cache_init creates the slab caches; early boot allocations (a share of every
 *    cache's objects) come from that part; then deferred init frees the rest of the
 *    last zone, and the root file system is mounted (its superblock shrinker).
 * 5. The rest of boot: slab objects (the caches a real guest shows after boot, in
 *    their slabs), kmalloc_large pages, vmalloc'd module and driver memory, kernel
 *    stacks, percpu chunks, page tables, the initramfs in tmpfs (shmem) and a little
 *    anonymous memory, interleaved in seeded random order with short-lived allocations
 *    that are freed before boot ends (many into the per-cpu lists, where MemFree does
 *    not see them, as in the real guest).
 *
 * Proportions come from a real 1 GiB Debian 6.1 cloud-kernel guest (shared reference
 * outputs); they are kept fixed across memory sizes except where the kernel scales
 * them (memmap, hash tables, swiotlb). See docs/boot.md and docs/model-limits.md.
 */
import { type Rng, rngBelow, rngFloat } from '../../sim/rng.js';
import {
  MAX_ORDER, PAGEBLOCK_ORDER, PAGEBLOCK_NR_PAGES, NO_PAGE, MigrateType, Owner, PG, PageType,
  setPageblockMigratetype,
  setPageType, resetPages, pageFlags, setPageFlags,
} from './memmap.js';
import { lruCacheAdd } from './lru.js';
import { type PgData, type Zone, ZoneType, createZone } from './mmzone.js';
import type { ThpEnabled, ThpDefrag } from './sysctl.js';
import { type MemLayout, GuestConfigError, physPfn, BIOS_TOP_RESERVED_PAGES, LOW_RAM_END_PFN, LOW_1MIB_PFN } from './layout.js';
import { allocPages, freePages, freeBootBlock, setupPerZoneWmarks, setupPerZoneLowmemReserve, setupPagesets, defaultMinFreeKbytes } from './page_alloc.js';
import { GFP_KERNEL, GFP_HIGHUSER_MOVABLE, __GFP_COMP } from './gfp.js';
import { type KmemCache, kmemCacheInit, kmemCacheByName, kmemCacheAlloc, kmemCacheAllocPinned, kmemCacheFree, FreeFrom } from './slab.js';
import { vfsInit } from './dcache.js';

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
 * (pgalloc minus pages still in use). The slab figures are what BOOT_SLAB_OBJECTS'
 * slabs and the kmalloc_large pages add up to: nr_slab_unreclaimable 1524 and
 * nr_slab_reclaimable 2254 (SUnreclaim 6096 kB, SReclaimable 9016 kB).
 */
export const BOOT_FOOTPRINT = {
  slabUnreclaimable: 1524,
  slabReclaimable: 2254,
  /** kmallocs above KMALLOC_MAX_CACHE_SIZE (kmalloc_large: compound pages counted as SUnreclaim, not PageSlab). */
  kmallocLarge: 297,
  /** VmallocUsed 7260 kB plus driver pages not counted elsewhere. */
  kernel: 2229,
  kernelStack: 187,
  pageTable: 10,
  percpu: 64,
  shmem: 774,
  anon: 25,
  /** Of the shmem and anonymous pages, those on the active anon LRU (Active(anon) 2260 kB; the rest inactive, 932 kB). */
  anonLruActive: 565,
  transient: 3000,
} as const;

/**
 * The objects in the slab caches after boot: [cache, objects, active objects] as a real
 * 1 GiB Debian 6.1 guest's /proc/slabinfo shows them 5 s after boot
 * (test/fixtures/linux-6.1-slabinfo-boot.txt, num_objs and active_objs), caches with
 * none left out. Boot allocates the active objects (pinned: they stay for good) and
 * the rest of num_objs as objects it frees again at the end, newest first, so every
 * cache ends with the real guest's number of slabs. One change: inode_cache has 60
 * objects (5 slabs) fewer than that guest (6.1.0-57), so that the reclaimable slabs
 * add up to the reference guest's SReclaimable (6.1.0-56, 2254 pages, 10 fewer); the
 * unreclaimable caches hold 1227 pages, the kmalloc_large pages the remaining 297 of
 * its SUnreclaim (the capture's /proc/meminfo has 1520 = 1227 + 293).
 */
export const BOOT_SLAB_OBJECTS: ReadonlyArray<readonly [string, number, number]> = [
  ['RAWv6', 13, 13], ['mqueue_inode_cache', 8, 8], ['RAW', 8, 8], ['hugetlbfs_inode_cache', 12, 12], ['bio-256', 36, 36],
  ['dax_cache', 19, 19], ['bio-192', 16, 16], ['biovec-max', 48, 48], ['biovec-128', 8, 8], ['biovec-64', 8, 8],
  ['sock_inode_cache', 19, 19], ['skbuff_ext_cache', 21, 21], ['skbuff_fclone_cache', 8, 8], ['skbuff_head_cache', 16, 16],
  ['proc_dir_entry', 294, 294], ['proc_inode_cache', 22, 22], ['seq_file', 34, 34], ['sigqueue', 51, 51],
  ['bdev_cache', 10, 10], ['shmem_inode_cache', 400, 400], ['kernfs_iattrs_cache', 46, 46],
  ['kernfs_node_cache', 10048, 10048], ['mnt_cache', 36, 36], ['filp', 32, 32], ['inode_cache', 10164, 10164],
  ['dentry', 10647, 10647], ['names_cache', 8, 8], ['lsm_inode_cache', 10752, 10752], ['lsm_file_cache', 170, 170],
  ['nsproxy', 56, 56], ['vm_area_struct', 78, 78], ['files_cache', 11, 11], ['signal_cache', 56, 56],
  ['sighand_cache', 60, 60], ['task_struct', 55, 55], ['cred_jar', 63, 63], ['anon_vma_chain', 64, 64],
  ['anon_vma', 39, 39], ['pid', 64, 64], ['Acpi-Operand', 728, 535], ['Acpi-State', 153, 153],
  ['shared_policy_node', 510, 510], ['numa_policy', 15, 15], ['perf_event', 13, 13], ['trace_event_file', 1428, 1428],
  ['ftrace_event_field', 3796, 3796], ['maple_node', 64, 64], ['radix_tree_node', 252, 252], ['task_group', 12, 12],
  ['mm_struct', 14, 14], ['vmap_area', 192, 192], ['kmalloc-rcl-64', 64, 64], ['kmalloc-cg-4k', 16, 16],
  ['kmalloc-cg-2k', 16, 16], ['kmalloc-cg-1k', 8, 8], ['kmalloc-cg-512', 24, 24], ['kmalloc-cg-256', 16, 16],
  ['kmalloc-cg-192', 42, 42], ['kmalloc-cg-128', 64, 64], ['kmalloc-cg-96', 42, 42], ['kmalloc-cg-64', 64, 64],
  ['kmalloc-cg-32', 128, 128], ['kmalloc-cg-16', 256, 256], ['kmalloc-cg-8', 512, 512], ['kmalloc-8k', 12, 12],
  ['kmalloc-4k', 32, 32], ['kmalloc-2k', 136, 136], ['kmalloc-1k', 264, 264], ['kmalloc-512', 216, 216],
  ['kmalloc-256', 416, 416], ['kmalloc-192', 273, 273], ['kmalloc-128', 320, 320], ['kmalloc-96', 420, 420],
  ['kmalloc-64', 1664, 1664], ['kmalloc-32', 1408, 764], ['kmalloc-16', 1024, 1024], ['kmalloc-8', 1536, 1536],
  ['kmem_cache_node', 192, 192], ['kmem_cache', 160, 160],
];

/** Memblock "remainder" pages not itemised above (percpu first chunk, early page tables, brk). */
const MEMBLOCK_MISC_PAGES = 540;
/** Share of every cache's boot objects allocated before deferred struct page init finishes. */
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
  for (const z of pgdat.zones) z.kernel = pgdat.kernel;
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

/** Slab objects still to allocate in a boot phase: per cache, how many (pinned). */
type BootSlab = { caches: KmemCache[]; left: number[] };

/** Pages a cache's remaining boot objects will take (whole slabs of the cache's order). */
function bootSlabPages(s: KmemCache, left: number): number {
  return Math.ceil(left / s.objects) << s.order;
}

/**
 * The order of a boot page allocation: kmalloc_large's are orders 2-3 (kmallocs of
 * 8-32 KiB: the next order up from 8 KiB), the rest order 0.
 */
function bootOrder(rng: Rng, it: BootItem): number {
  if (it.owner !== Owner.slabUnreclaimable) return 0;
  return rngFloat(rng) < 0.6 ? 2 : 3;
}

/**
 * Runs the boot-time allocations: draws page categories and the slab caches in
 * proportion to what is left of each (in pages), allocates — a slab's worth of
 * objects at a time for a cache — and frees the transient pages at the end in random
 * order.
 */
function bootAllocations(pgdat: PgData, rng: Rng, items: BootItem[], slab: BootSlab, held: number[], anonActive = { left: 0 }): void {
  const left = items.map((i) => i.pages);
  const slabLeft = slab.caches.map((c, k) => bootSlabPages(c, slab.left[k]!));
  let itemsTotal = left.reduce((a, b) => a + b, 0);
  let slabTotal = slabLeft.reduce((a, b) => a + b, 0);
  const transient: number[] = [];
  while (itemsTotal + slabTotal > 0) {
    let r = rngBelow(rng, itemsTotal + slabTotal);
    if (r >= itemsTotal) {
      // a slab cache: one slab's worth of its objects
      r -= itemsTotal;
      let k = 0;
      while (r >= slabLeft[k]!) { r -= slabLeft[k]!; k++; }
      const c = slab.caches[k]!;
      const n = Math.min(slab.left[k]!, c.objects);
      if (kmemCacheAllocPinned(pgdat, c, n) < n) throw new GuestConfigError('boot: out of memory during boot allocations (guest too small)');
      slab.left[k] = slab.left[k]! - n;
      slabTotal -= slabLeft[k]!;
      slabLeft[k] = bootSlabPages(c, slab.left[k]!);
      slabTotal += slabLeft[k]!;
      continue;
    }
    let k = 0;
    while (r >= left[k]!) { r -= left[k]!; k++; }
    const it = items[k]!;
    let order = bootOrder(rng, it);
    while (order > 0 && (1 << order) > left[k]!) order--;
    const pfn = allocPages(pgdat, it.gfp | (order ? __GFP_COMP : 0), order, it.owner);
    if (pfn === NO_PAGE) throw new GuestConfigError('boot: out of memory during boot allocations (guest too small)');
    if (it.owner === Owner.pageTable) setPageType(pgdat.map, pfn, PageType.table);
    if (it.owner === Owner.shmem || it.owner === Owner.anon) {
      // tmpfs and anonymous pages are swap-backed and on the anon LRU, the first ones
      // made active as the reference guest's Active(anon) says
      const f = pageFlags(pgdat.map, pfn) | PG.swapbacked | PG.uptodate | PG.dirty;
      setPageFlags(pgdat.map, pfn, anonActive.left > 0 ? f | PG.active : f);
      if (anonActive.left > 0) anonActive.left--;
      lruCacheAdd(pgdat, pfn);
    }
    left[k] = left[k]! - (1 << order);
    itemsTotal -= 1 << order;
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
  // kmem_cache_init: the caches; their boot objects, a share before deferred init
  kmemCacheInit(pgdat);
  const caches = BOOT_SLAB_OBJECTS.map(([name]) => kmemCacheByName(pgdat, name));
  const active = BOOT_SLAB_OBJECTS.map(([, , a]) => scaled(a, f));
  const early = active.map((a) => Math.round(a * EARLY_SLAB_SHARE));
  bootAllocations(pgdat, rng, [], { caches, left: early.slice() }, held);

  // deferred_init_memmap
  if (deferred < nr) freeRange(pgdat, resv, deferred, nr);
  setupWatermarks(pgdat, params);
  // the root file system (its superblock shrinker)
  vfsInit(pgdat);

  const late: BootItem[] = [
    { owner: Owner.slabUnreclaimable, gfp: GFP_KERNEL, pages: scaled(fp.kmallocLarge, f), transient: false },
    { owner: Owner.kernel, gfp: GFP_KERNEL, pages: scaled(fp.kernel + fp.percpu, f), transient: false },
    { owner: Owner.kernelStack, gfp: GFP_KERNEL, pages: scaled(fp.kernelStack, f) + 4 * (pgdat.nrCpus - 1), transient: false },
    { owner: Owner.pageTable, gfp: GFP_KERNEL, pages: scaled(fp.pageTable, f), transient: false },
    { owner: Owner.shmem, gfp: GFP_HIGHUSER_MOVABLE, pages: scaled(fp.shmem, f), transient: false },
    { owner: Owner.anon, gfp: GFP_HIGHUSER_MOVABLE, pages: scaled(fp.anon, f), transient: false },
    { owner: Owner.kernel, gfp: GFP_KERNEL, pages: scaled(fp.transient / 2, f), transient: true },
    { owner: Owner.file, gfp: GFP_HIGHUSER_MOVABLE, pages: scaled(fp.transient / 2, f), transient: true },
  ];
  bootAllocations(pgdat, rng, late, { caches, left: active.map((a, k) => a - early[k]!) }, held, { left: scaled(fp.anonLruActive, f) });
  // objects freed again before boot ends: the caches keep their slabs, partly empty
  BOOT_SLAB_OBJECTS.forEach(([, num, act], k) => {
    const extra = scaled(num, f) - scaled(act, f);
    if (extra <= 0) return;
    kmemCacheAlloc(pgdat, caches[k]!, extra);
    kmemCacheFree(pgdat, caches[k]!, extra, FreeFrom.newest);
  });
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
