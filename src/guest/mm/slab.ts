/**
 * The SLUB slab allocator (mm/slub.c, mm/slab_common.c, Linux 6.1): kmem caches whose
 * objects live in slabs — compound pages of the cache's order taken from the buddy
 * allocator and owned by Owner.slabReclaimable or Owner.slabUnreclaimable — so that a
 * slab pins its pages until its last object is freed.
 *
 * What follows mm/slub.c:
 * - calculate_order / calc_slab_order: a slab's order and objects from the object
 *   size, slub_min_objects = 4 * (fls(nr_cpus) + 1), slub_max_order =
 *   PAGE_ALLOC_COSTLY_ORDER, the 1/16, 1/8, 1/4 waste fractions; s->min, the order one
 *   object needs, for the fallback; set_min_partial (ilog2(size) / 2, 5..10);
 * - allocate_slab: __GFP_COMP slabs with the cache's allocflags (__GFP_RECLAIMABLE for
 *   SLAB_RECLAIM_ACCOUNT caches, GFP_DMA for dma-kmalloc), the preferred order tried
 *   with __GFP_NOWARN | __GFP_NORETRY | __GFP_NOMEMALLOC and without reclaim, then
 *   s->min with the caller's flags; account_slab's NR_SLAB_* counters (page_alloc.ts
 *   keeps them by owner); PageSlab and page->slab_cache on the head page;
 * - ___slab_alloc: the cpu's active slab first (objects freed back to it are reused
 *   while it is active), then the first slab of the node's partial list
 *   (get_partial_node), then a new slab;
 * - __slab_free: a free into the active slab only counts; a full slab that gets a free
 *   object goes to the tail of the node's partial list; a slab whose last object goes
 *   is discarded (its pages back to the buddy allocator) unless the node has fewer
 *   than min_partial partial slabs, in which case it stays, empty, on the list;
 * - get_slabinfo: /proc/slabinfo's active_objs are num_objs less the free objects of
 *   the node's partial slabs (free objects of cpu slabs count as active).
 *
 * Simplified (docs/model-limits.md): no per-cpu partial lists (CONFIG_SLUB_CPU_PARTIAL:
 * a slab that gets a free object goes straight to the node's list), no freelists or
 * object placement (an object is counted in its slab; which object a free releases is
 * the oldest or newest of an ObjRing, in allocation order), no cache merging (the
 * caches are the distinct ones a real guest lists), no memcg accounting (kmalloc-cg-*
 * are plain caches), no kmalloc from call sites other than the hooks below, one node.
 *
 * State is plain data (slab_types.ts): one record per slab in typed arrays indexed by
 * a slab id, objects only counted. A slab allocation may reclaim, and reclaim runs the
 * shrinkers, which free objects — into the very cache being allocated from; the cache's
 * lists are therefore consistent whenever allocPages is called, and a new slab is
 * linked in only after it returns.
 */
import {
  NO_PAGE, Owner, PAGE_SHIFT, PAGE_SIZE, PAGE_ALLOC_COSTLY_ORDER, MAX_ORDER, PageType, setPageType, setPageMapping,
} from './memmap.js';
import { type PgData, PageWrite } from './mmzone.js';
import { allocPages, freePages } from './page_alloc.js';
import {
  GFP_KERNEL, GFP_DMA, __GFP_COMP, __GFP_RECLAIMABLE, __GFP_NOWARN, __GFP_NORETRY, __GFP_NOFAIL, __GFP_NOMEMALLOC,
  __GFP_RECLAIM, __GFP_DIRECT_RECLAIM,
} from './gfp.js';
import { type KmemCache, type ObjRing, type StdCaches, SlabFlag, SlabState } from './slab_types.js';

export { SlabFlag, SlabState } from './slab_types.js';
export type { KmemCache, ObjRing, SlabCaches, StdCaches } from './slab_types.js';

/** slub_max_order: PAGE_ALLOC_COSTLY_ORDER. */
export const SLUB_MAX_ORDER = PAGE_ALLOC_COSTLY_ORDER;
/** slub_min_order. */
export const SLUB_MIN_ORDER = 0;
/** MAX_OBJS_PER_PAGE: slab->objects is 15 bits. */
export const MAX_OBJS_PER_PAGE = 32767;
/** MIN_PARTIAL, MAX_PARTIAL: the bounds of s->min_partial. */
export const MIN_PARTIAL = 5;
export const MAX_PARTIAL = 10;
/** KMALLOC_MAX_CACHE_SIZE: larger kmallocs go to the page allocator (kmalloc_large). */
export const KMALLOC_MAX_CACHE_SIZE = 8192;

// ---------------------------------------------------------------------------------
// Object rings

/** An empty ring with room for `cap` entries (a power of two). */
export function objRingCreate(cap = 64): ObjRing {
  return { buf: new Int32Array(cap), head: 0, len: 0 };
}

function objRingGrow(r: ObjRing): void {
  const old = r.buf, cap = old.length, mask = cap - 1;
  const buf = new Int32Array(cap * 2);
  for (let i = 0; i < r.len; i++) buf[i] = old[(r.head + i) & mask]!;
  r.buf = buf;
  r.head = 0;
}

/** Adds the newest entry. */
export function objRingPush(r: ObjRing, v: number): void {
  if (r.len === r.buf.length) objRingGrow(r);
  r.buf[(r.head + r.len) & (r.buf.length - 1)] = v;
  r.len++;
}

/** Takes the oldest entry (the ring must not be empty). */
export function objRingShift(r: ObjRing): number {
  const v = r.buf[r.head]!;
  r.head = (r.head + 1) & (r.buf.length - 1);
  r.len--;
  return v;
}

/** Takes the newest entry (the ring must not be empty). */
export function objRingPop(r: ObjRing): number {
  r.len--;
  return r.buf[(r.head + r.len) & (r.buf.length - 1)]!;
}

/** The i-th oldest entry. */
export function objRingAt(r: ObjRing, i: number): number {
  return r.buf[(r.head + i) & (r.buf.length - 1)]!;
}

// ---------------------------------------------------------------------------------
// Sizing (mm/slub.c calculate_sizes, calculate_order)

/** fls(): the position of the highest set bit, 1-based; 0 for 0. */
export function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

/** get_order(): the smallest order whose block holds `size` bytes. */
export function getOrder(size: number): number {
  let order = 0;
  while ((PAGE_SIZE << order) < size) order++;
  return order;
}

/** order_objects(): objects of `size` in a block of `order`. */
export function orderObjects(order: number, size: number): number {
  return Math.floor((PAGE_SIZE << order) / size);
}

/** slub_min_objects when not given on the command line: 4 * (fls(nr_cpus) + 1) (num_present_cpus, or nr_cpu_ids if that is 1). */
export function slubMinObjects(nrCpus: number): number {
  return 4 * (fls(nrCpus) + 1);
}

/**
 * @kernel mm/slub.c calc_slab_order
 * The lowest order from the one min_objects need up to maxOrder whose leftover is at
 * most 1/fractLeftover of the slab; maxOrder + 1 when there is none.
 */
export function calcSlabOrder(size: number, minObjects: number, maxOrder: number, fractLeftover: number): number {
  if (orderObjects(SLUB_MIN_ORDER, size) > MAX_OBJS_PER_PAGE) return getOrder(size * MAX_OBJS_PER_PAGE) - 1;
  let order = Math.max(SLUB_MIN_ORDER, getOrder(minObjects * size));
  for (; order <= maxOrder; order++) {
    const slabSize = PAGE_SIZE << order;
    const rem = slabSize % size;
    if (rem <= Math.floor(slabSize / fractLeftover)) break;
  }
  return order;
}

/**
 * @kernel mm/slub.c calculate_order
 * A slab's order for objects of `size` bytes on a guest of nrCpus: the best layout
 * first (at least slub_min_objects objects, at most 1/16 waste), then more waste (1/8,
 * 1/4), then fewer objects, then a single object.
 */
export function calculateOrder(size: number, nrCpus: number): number {
  let minObjects = slubMinObjects(nrCpus);
  const maxObjects = orderObjects(SLUB_MAX_ORDER, size);
  minObjects = Math.min(minObjects, maxObjects);
  while (minObjects > 1) {
    for (let fraction = 16; fraction >= 4; fraction /= 2) {
      const order = calcSlabOrder(size, minObjects, SLUB_MAX_ORDER, fraction);
      if (order <= SLUB_MAX_ORDER) return order;
    }
    minObjects--;
  }
  let order = calcSlabOrder(size, 1, SLUB_MAX_ORDER, 1);
  if (order <= SLUB_MAX_ORDER) return order;
  order = calcSlabOrder(size, 1, MAX_ORDER, 1);
  if (order < MAX_ORDER) return order;
  throw new RangeError(`slab: no order holds an object of ${size} bytes`);
}

/** set_min_partial(s, ilog2(s->size) / 2). */
export function minPartialFor(size: number): number {
  return Math.min(MAX_PARTIAL, Math.max(MIN_PARTIAL, Math.floor((fls(size) - 1) / 2)));
}

// ---------------------------------------------------------------------------------
// Caches

const INITIAL_SLABS = 8;

/**
 * @kernel mm/slab_common.c kmem_cache_create (SLUB's kmem_cache_open, calculate_sizes)
 * A cache of objects of `size` bytes (s->size: object, metadata and alignment included,
 * as /proc/slabinfo prints it) with SLAB_* `flags`.
 */
export function kmemCacheCreate(pgdat: PgData, name: string, size: number, flags = 0): KmemCache {
  const sc = pgdat.slab;
  if (sc.byName.has(name)) throw new RangeError(`kmem_cache_create: a cache named ${name} exists`);
  if (!Number.isInteger(size) || size < 8) throw new RangeError(`kmem_cache_create ${name}: size ${size} (at least 8 bytes)`);
  const order = calculateOrder(size, pgdat.nrCpus);
  const minOrder = getOrder(size);
  let allocflags = 0;
  if (order) allocflags |= __GFP_COMP;
  if (flags & SlabFlag.cacheDma) allocflags |= GFP_DMA;
  if (flags & SlabFlag.reclaimAccount) allocflags |= __GFP_RECLAIMABLE;
  const s: KmemCache = {
    id: sc.caches.length, name, size, flags,
    order, objects: orderObjects(order, size), minOrder, minObjects: orderObjects(minOrder, size),
    minPartial: minPartialFor(size), allocflags,
    owner: flags & SlabFlag.reclaimAccount ? Owner.slabReclaimable : Owner.slabUnreclaimable,
    slabPfn: new Int32Array(INITIAL_SLABS), slabInuse: new Uint16Array(INITIAL_SLABS), slabObjects: new Uint16Array(INITIAL_SLABS),
    slabOrder: new Uint8Array(INITIAL_SLABS), slabState: new Uint8Array(INITIAL_SLABS),
    slabNext: new Int32Array(INITIAL_SLABS), slabPrev: new Int32Array(INITIAL_SLABS),
    nrIds: 0, freeIds: new Int32Array(INITIAL_SLABS), nrFreeIds: 0,
    partialHead: -1, partialTail: -1, nrPartial: 0, nrSlabs: 0, totalObjects: 0, inuse: 0, pages: 0,
    cpuSlab: new Int32Array(pgdat.nrCpus).fill(-1),
    lru: objRingCreate(16), pinned: 0, external: 0,
  };
  if (s.id > 0xffff) throw new RangeError('kmem_cache_create: too many caches for page->slab_cache');
  sc.caches.push(s);
  sc.byName.set(name, s);
  return s;
}

/** The cache called `name`. */
export function kmemCacheByName(pgdat: PgData, name: string): KmemCache {
  const s = pgdat.slab.byName.get(name);
  if (!s) throw new RangeError(`no slab cache ${name}`);
  return s;
}

/** R: SLAB_RECLAIM_ACCOUNT; D: SLAB_CACHE_DMA (dma-kmalloc-*). */
const R = SlabFlag.reclaimAccount;
const D = SlabFlag.cacheDma;

/**
 * The caches of a Debian 6.1 cloud-kernel guest, as its /proc/slabinfo lists them
 * (newest first; test/fixtures/linux-6.1-slabinfo-boot.txt) with their s->size, and
 * SLAB_RECLAIM_ACCOUNT where 6.1's kmem_cache_create calls set it (SLAB_TEMPORARY for
 * jbd2, which is the same bit): the reclaimable caches' slabs add up to the guest's
 * SReclaimable. kmemCacheInit creates them oldest first, so slabinfo prints this order.
 */
export const STANDARD_CACHES: ReadonlyArray<readonly [string, number, number]> = [
  ['fsverity_info', 256, R], ['fscrypt_info', 128, R], ['MPTCPv6', 2176, 0], ['request_sock_subflow_v6', 384, 0],
  ['ip6-frags', 184, 0], ['PINGv6', 1216, 0], ['RAWv6', 1216, 0], ['UDPv6', 1344, 0], ['tw_sock_TCPv6', 272, 0],
  ['request_sock_TCPv6', 312, 0], ['TCPv6', 2496, 0], ['mqueue_inode_cache', 960, 0], ['jbd2_journal_head', 120, R],
  ['jbd2_revoke_table_s', 16, R], ['ext4_fc_dentry_update', 96, R], ['ext4_inode_cache', 1192, R],
  ['ext4_allocation_context', 136, R], ['ext4_system_zone', 40, 0], ['ext4_io_end', 64, 0],
  ['ext4_pending_reservation', 32, R], ['ext4_extent_status', 40, R], ['mbcache', 56, R], ['kioctx', 576, 0],
  ['userfaultfd_ctx_cache', 192, 0], ['dnotify_struct', 32, 0], ['pid_namespace', 136, 0], ['ip4-frags', 200, 0],
  ['MPTCP', 1984, 0], ['request_sock_subflow_v4', 384, 0], ['xfrm_dst_cache', 320, 0], ['xfrm_state', 768, 0],
  ['ip_fib_trie', 48, 0], ['ip_fib_alias', 56, 0], ['PING', 1024, 0], ['RAW', 1024, 0], ['tw_sock_TCP', 272, 0],
  ['request_sock_TCP', 312, 0], ['TCP', 2304, 0], ['hugetlbfs_inode_cache', 664, 0], ['dquot', 256, R],
  ['bio-256', 320, 0], ['ep_head', 16, 0], ['dax_cache', 832, R], ['request_queue_srcu', 1360, 0],
  ['request_queue', 968, 0], ['bio-192', 256, 0], ['biovec-max', 4096, 0], ['biovec-128', 2048, 0],
  ['biovec-64', 1024, 0], ['khugepaged_mm_slot', 112, 0], ['user_namespace', 624, 0], ['sock_inode_cache', 832, R],
  ['skbuff_ext_cache', 192, 0], ['skbuff_fclone_cache', 512, 0], ['skbuff_head_cache', 256, 0],
  ['file_lock_cache', 216, 0], ['buffer_head', 104, R], ['taskstats', 416, 0], ['proc_dir_entry', 192, 0],
  ['pde_opener', 40, 0], ['proc_inode_cache', 712, R], ['seq_file', 120, 0], ['sigqueue', 80, 0],
  ['bdev_cache', 1600, R], ['shmem_inode_cache', 784, 0], ['kernfs_iattrs_cache', 88, 0],
  ['kernfs_node_cache', 128, 0], ['mnt_cache', 320, 0], ['filp', 256, 0], ['inode_cache', 640, R],
  ['dentry', 192, R], ['names_cache', 4096, 0], ['net_namespace', 4288, 0], ['iint_cache', 128, 0],
  ['lsm_inode_cache', 32, 0], ['lsm_file_cache', 24, 0], ['uts_namespace', 432, 0], ['nsproxy', 72, 0],
  ['vm_area_struct', 152, 0], ['files_cache', 704, 0], ['signal_cache', 1152, 0], ['sighand_cache', 2112, 0],
  ['task_struct', 6144, 0], ['cred_jar', 192, 0], ['anon_vma_chain', 64, 0], ['anon_vma', 104, 0], ['pid', 128, 0],
  ['Acpi-Operand', 72, 0], ['Acpi-State', 80, 0], ['shared_policy_node', 48, 0], ['numa_policy', 272, 0],
  ['perf_event', 1232, 0], ['trace_event_file', 96, 0], ['ftrace_event_field', 56, 0], ['maple_node', 256, 0],
  ['radix_tree_node', 584, R], ['task_group', 640, 0], ['mm_struct', 1152, 0], ['vmap_area', 64, 0],
  ['dma-kmalloc-8k', 8192, D], ['dma-kmalloc-4k', 4096, D], ['dma-kmalloc-2k', 2048, D], ['dma-kmalloc-1k', 1024, D],
  ['dma-kmalloc-512', 512, D], ['dma-kmalloc-256', 256, D], ['dma-kmalloc-192', 192, D], ['dma-kmalloc-128', 128, D],
  ['dma-kmalloc-96', 96, D], ['dma-kmalloc-64', 64, D], ['dma-kmalloc-32', 32, D], ['dma-kmalloc-16', 16, D],
  ['dma-kmalloc-8', 8, D],
  ['kmalloc-rcl-8k', 8192, R], ['kmalloc-rcl-4k', 4096, R], ['kmalloc-rcl-2k', 2048, R], ['kmalloc-rcl-1k', 1024, R],
  ['kmalloc-rcl-512', 512, R], ['kmalloc-rcl-256', 256, R], ['kmalloc-rcl-192', 192, R], ['kmalloc-rcl-128', 128, R],
  ['kmalloc-rcl-96', 96, R], ['kmalloc-rcl-64', 64, R], ['kmalloc-rcl-32', 32, R], ['kmalloc-rcl-16', 16, R],
  ['kmalloc-rcl-8', 8, R],
  ['kmalloc-cg-8k', 8192, 0], ['kmalloc-cg-4k', 4096, 0], ['kmalloc-cg-2k', 2048, 0], ['kmalloc-cg-1k', 1024, 0],
  ['kmalloc-cg-512', 512, 0], ['kmalloc-cg-256', 256, 0], ['kmalloc-cg-192', 192, 0], ['kmalloc-cg-128', 128, 0],
  ['kmalloc-cg-96', 96, 0], ['kmalloc-cg-64', 64, 0], ['kmalloc-cg-32', 32, 0], ['kmalloc-cg-16', 16, 0],
  ['kmalloc-cg-8', 8, 0],
  ['kmalloc-8k', 8192, 0], ['kmalloc-4k', 4096, 0], ['kmalloc-2k', 2048, 0], ['kmalloc-1k', 1024, 0],
  ['kmalloc-512', 512, 0], ['kmalloc-256', 256, 0], ['kmalloc-192', 192, 0], ['kmalloc-128', 128, 0],
  ['kmalloc-96', 96, 0], ['kmalloc-64', 64, 0], ['kmalloc-32', 32, 0], ['kmalloc-16', 16, 0], ['kmalloc-8', 8, 0],
  ['kmem_cache_node', 64, 0], ['kmem_cache', 256, 0],
];

/** kmalloc-<n> sizes by kmalloc_index order (8 .. 8k; 96 and 192 are the two odd ones). */
export const KMALLOC_SIZES: readonly number[] = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192];

function kmallocName(size: number): string {
  return size >= 1024 ? `kmalloc-${size / 1024}k` : `kmalloc-${size}`;
}

/**
 * @kernel mm/slub.c kmem_cache_init (with mm/slab_common.c create_kmalloc_caches)
 * Creates the standard caches (oldest first) and names the ones the hooks use.
 */
export function kmemCacheInit(pgdat: PgData): StdCaches {
  for (let i = STANDARD_CACHES.length - 1; i >= 0; i--) {
    const [name, size, flags] = STANDARD_CACHES[i]!;
    kmemCacheCreate(pgdat, name, size, flags);
  }
  const c = (n: string) => kmemCacheByName(pgdat, n);
  const std: StdCaches = {
    dentry: c('dentry'), inode: c('ext4_inode_cache'), lsmInode: c('lsm_inode_cache'), extentStatus: c('ext4_extent_status'),
    bufferHead: c('buffer_head'), radixTreeNode: c('radix_tree_node'), procInode: c('proc_inode_cache'),
    vmAreaStruct: c('vm_area_struct'), anonVma: c('anon_vma'), anonVmaChain: c('anon_vma_chain'),
    taskStruct: c('task_struct'), mmStruct: c('mm_struct'), signalCache: c('signal_cache'), sighandCache: c('sighand_cache'),
    filesCache: c('files_cache'), credJar: c('cred_jar'), pid: c('pid'),
    kmalloc: KMALLOC_SIZES.map((s) => c(kmallocName(s))),
  };
  pgdat.slab.std = std;
  return std;
}

// ---------------------------------------------------------------------------------
// Slabs

function growSlabs(s: KmemCache): void {
  const cap = s.slabPfn.length * 2;
  const i32 = (a: Int32Array) => { const b = new Int32Array(cap); b.set(a); return b; };
  s.slabPfn = i32(s.slabPfn);
  s.slabNext = i32(s.slabNext);
  s.slabPrev = i32(s.slabPrev);
  s.freeIds = i32(s.freeIds);
  const u16 = new Uint16Array(cap); u16.set(s.slabInuse); s.slabInuse = u16;
  const o16 = new Uint16Array(cap); o16.set(s.slabObjects); s.slabObjects = o16;
  const u8 = new Uint8Array(cap); u8.set(s.slabOrder); s.slabOrder = u8;
  const st = new Uint8Array(cap); st.set(s.slabState); s.slabState = st;
}

/** add_partial(): at the tail (DEACTIVATE_TO_TAIL) or the head. */
function addPartial(s: KmemCache, id: number, tail: boolean): void {
  s.slabState[id] = SlabState.partial;
  s.nrPartial++;
  if (s.partialHead < 0) {
    s.slabNext[id] = -1; s.slabPrev[id] = -1;
    s.partialHead = s.partialTail = id;
  } else if (tail) {
    s.slabPrev[id] = s.partialTail; s.slabNext[id] = -1;
    s.slabNext[s.partialTail] = id;
    s.partialTail = id;
  } else {
    s.slabNext[id] = s.partialHead; s.slabPrev[id] = -1;
    s.slabPrev[s.partialHead] = id;
    s.partialHead = id;
  }
}

/** remove_partial(). */
function removePartial(s: KmemCache, id: number): void {
  const n = s.slabNext[id]!, p = s.slabPrev[id]!;
  if (p >= 0) s.slabNext[p] = n; else s.partialHead = n;
  if (n >= 0) s.slabPrev[n] = p; else s.partialTail = p;
  s.slabNext[id] = -1; s.slabPrev[id] = -1;
  s.nrPartial--;
}

/**
 * @kernel mm/slub.c allocate_slab
 * A new slab from the buddy allocator, or -1. The preferred order is tried with
 * __GFP_NORETRY | __GFP_NOWARN, and without reclaim at all (__GFP_NOMEMALLOC, no
 * __GFP_RECLAIM) when a smaller order could do; then s->min with the caller's flags.
 * The returned slab is on no list (the caller makes it a cpu slab or adds it).
 */
function allocateSlab(pgdat: PgData, s: KmemCache, gfp: number): number {
  const flags = gfp | s.allocflags;
  let order = s.order, objects = s.objects;
  let allocGfp = (flags | __GFP_NOWARN | __GFP_NORETRY) & ~__GFP_NOFAIL;
  if ((allocGfp & __GFP_DIRECT_RECLAIM) && order > s.minOrder) allocGfp = (allocGfp | __GFP_NOMEMALLOC) & ~__GFP_RECLAIM;
  // allocPages may reclaim and run the shrinkers, which free into this cache: nothing of
  // the new slab is recorded until it returns.
  let pfn = allocPages(pgdat, allocGfp, order, s.owner);
  if (pfn === NO_PAGE) {
    // s->min with the caller's own flags (the same order when that is the minimum, now
    // without __GFP_NORETRY: the full slow path)
    order = s.minOrder;
    objects = s.minObjects;
    pfn = allocPages(pgdat, flags, order, s.owner);
  }
  if (pfn === NO_PAGE) return -1;
  // __folio_set_slab, slab->slab_cache (the head page's type and mapping)
  setPageType(pgdat.map, pfn, PageType.slab);
  setPageMapping(pgdat.map, pfn, s.id);
  let id: number;
  if (s.nrFreeIds > 0) id = s.freeIds[--s.nrFreeIds]!;
  else {
    if (s.nrIds === s.slabPfn.length) growSlabs(s);
    id = s.nrIds++;
  }
  s.slabPfn[id] = pfn;
  s.slabInuse[id] = 0;
  s.slabObjects[id] = objects;
  s.slabOrder[id] = order;
  s.slabState[id] = SlabState.full;
  s.slabNext[id] = -1; s.slabPrev[id] = -1;
  s.nrSlabs++;
  s.totalObjects += objects;
  s.pages += 1 << order;
  return id;
}

/**
 * @kernel mm/slub.c discard_slab (__free_slab)
 * The slab's pages go back to the buddy allocator; the slab must be on no list.
 */
function discardSlab(pgdat: PgData, s: KmemCache, id: number): void {
  const pfn = s.slabPfn[id]!, order = s.slabOrder[id]!;
  s.slabState[id] = SlabState.none;
  s.nrSlabs--;
  s.totalObjects -= s.slabObjects[id]!;
  s.pages -= 1 << order;
  s.freeIds[s.nrFreeIds++] = id;
  pgdat.slab.freedPages += 1 << order; // current->reclaim_state->reclaimed_slab when reclaim runs
  // __folio_clear_slab, page->mapping = NULL
  setPageType(pgdat.map, pfn, PageType.none);
  setPageMapping(pgdat.map, pfn, 0);
  freePages(pgdat, pfn, order);
}

/**
 * @kernel mm/slub.c ___slab_alloc, slab_alloc_node, kmem_cache_alloc_bulk
 * Allocates up to n objects on the current cpu and pushes each one's slab id to `ring`
 * (null: the objects are pinned, counted only). Returns how many it got: fewer than n
 * only when a new slab could not be allocated.
 */
export function slabAlloc(pgdat: PgData, s: KmemCache, n: number, gfp: number, ring: ObjRing | null): number {
  const cpu = pgdat.tasks.cpu;
  const write = pgdat.hooks.pageWrite;
  let got = 0;
  while (got < n) {
    let id = s.cpuSlab[cpu]!;
    if (id < 0 || s.slabInuse[id] === s.slabObjects[id]) {
      // the active slab is exhausted: deactivate it (it is full: on no list)
      if (id >= 0) { s.slabState[id] = SlabState.full; s.cpuSlab[cpu] = -1; }
      id = s.partialHead;
      if (id >= 0) removePartial(s, id); // get_partial_node
      else {
        id = allocateSlab(pgdat, s, gfp);
        if (id < 0) break;
        if (s.cpuSlab[cpu]! >= 0) {
          // reclaim inside the allocation installed another active slab: keep this one for later
          addPartial(s, id, false);
          continue;
        }
      }
      s.slabState[id] = SlabState.cpu;
      s.cpuSlab[cpu] = id;
    }
    const inuse = s.slabInuse[id]!;
    const take = Math.min(n - got, s.slabObjects[id]! - inuse);
    if (write !== null) {
      // slab_post_alloc_hook: init_on_alloc zeroes each object (any allocation initialises
      // it): the pages the objects fill are written
      const pfn = s.slabPfn[id]!;
      const first = (inuse * s.size) >>> PAGE_SHIFT, last = ((inuse + take) * s.size - 1) >>> PAGE_SHIFT;
      write(pfn + first, last - first + 1, PageWrite.data);
    }
    if (ring !== null) for (let i = 0; i < take; i++) objRingPush(ring, id);
    s.slabInuse[id] = inuse + take;
    s.inuse += take;
    got += take;
  }
  return got;
}

/**
 * @kernel mm/slub.c __slab_free
 * Frees one object of slab `id`.
 */
export function slabFree(pgdat: PgData, s: KmemCache, id: number): void {
  const state = s.slabState[id]!;
  const objects = s.slabObjects[id]!;
  const wasFull = s.slabInuse[id] === objects;
  const inuse = s.slabInuse[id]! - 1;
  s.slabInuse[id] = inuse;
  s.inuse--;
  if (state === SlabState.cpu) return; // frozen: back on its freelist
  if (inuse === 0 && s.nrPartial >= s.minPartial) {
    // slab_empty
    if (state === SlabState.partial) removePartial(s, id);
    discardSlab(pgdat, s, id);
    return;
  }
  // !kmem_cache_has_cpu_partial: remove_full, add_partial(DEACTIVATE_TO_TAIL)
  if (wasFull) addPartial(s, id, true);
}

/** Objects allocated with kmemCacheAlloc, freed with kmemCacheFree. */
export const enum FreeFrom {
  /** The oldest first (an LRU's order). */
  oldest = 0,
  /** The newest first (short-lived objects). */
  newest = 1,
}

/**
 * @kernel mm/slub.c kmem_cache_alloc (n times)
 * Allocates up to n objects of the cache, remembered in allocation order for
 * kmemCacheFree. Returns the objects got.
 */
export function kmemCacheAlloc(pgdat: PgData, s: KmemCache, n: number, gfp = GFP_KERNEL): number {
  return slabAlloc(pgdat, s, n, gfp, s.lru);
}

/**
 * Allocates n objects that are never freed (the boot's long-lived objects): counted in
 * their slabs, in no ring. Returns the objects got.
 */
export function kmemCacheAllocPinned(pgdat: PgData, s: KmemCache, n: number, gfp = GFP_KERNEL): number {
  const got = slabAlloc(pgdat, s, n, gfp, null);
  s.pinned += got;
  return got;
}

/**
 * @kernel mm/slub.c kmem_cache_free (n times)
 * Frees up to n of the objects kmemCacheAlloc allocated, the oldest or the newest
 * first. Returns the objects freed.
 */
export function kmemCacheFree(pgdat: PgData, s: KmemCache, n: number, from: FreeFrom = FreeFrom.oldest): number {
  const ring = s.lru;
  const k = Math.min(n, ring.len);
  for (let i = 0; i < k; i++) slabFree(pgdat, s, from === FreeFrom.oldest ? objRingShift(ring) : objRingPop(ring));
  return k;
}

/**
 * Allocates up to n objects whose slab ids go to a ring the caller keeps (the
 * superblock's LRU, a file set's inodes); free them with slabFreeFrom.
 */
export function slabAllocTo(pgdat: PgData, s: KmemCache, n: number, ring: ObjRing, gfp = GFP_KERNEL): number {
  const got = slabAlloc(pgdat, s, n, gfp, ring);
  s.external += got;
  return got;
}

/** Frees up to n objects of a caller's ring (from slabAllocTo), oldest or newest first. Returns the objects freed. */
export function slabFreeFrom(pgdat: PgData, s: KmemCache, ring: ObjRing, n: number, from: FreeFrom = FreeFrom.oldest): number {
  const k = Math.min(n, ring.len);
  for (let i = 0; i < k; i++) slabFree(pgdat, s, from === FreeFrom.oldest ? objRingShift(ring) : objRingPop(ring));
  s.external -= k;
  return k;
}

// ---------------------------------------------------------------------------------
// Counters (mm/slub.c get_slabinfo)

/** One line of /proc/slabinfo (struct slabinfo). */
export type SlabInfo = {
  name: string;
  activeObjs: number;
  numObjs: number;
  objsize: number;
  objperslab: number;
  pagesperslab: number;
  activeSlabs: number;
  numSlabs: number;
};

/**
 * @kernel mm/slub.c get_slabinfo (count_partial, count_free)
 * The cache's /proc/slabinfo figures: active objects are all objects less the free
 * ones on the node's partial list; active slabs are all slabs.
 */
export function getSlabinfo(s: KmemCache): SlabInfo {
  let free = 0;
  for (let id = s.partialHead; id >= 0; id = s.slabNext[id]!) free += s.slabObjects[id]! - s.slabInuse[id]!;
  return {
    name: s.name, activeObjs: s.totalObjects - free, numObjs: s.totalObjects, objsize: s.size,
    objperslab: s.objects, pagesperslab: 1 << s.order, activeSlabs: s.nrSlabs, numSlabs: s.nrSlabs,
  };
}

/** Pages held by the slabs of every cache, reclaimable (SLAB_RECLAIM_ACCOUNT) and not: [reclaimable, unreclaimable]. */
export function slabCachePages(pgdat: PgData): [number, number] {
  let r = 0, u = 0;
  for (const s of pgdat.slab.caches) {
    if (s.flags & SlabFlag.reclaimAccount) r += s.pages; else u += s.pages;
  }
  return [r, u];
}

// ---------------------------------------------------------------------------------
// kmalloc and the hooks other subsystems call

/**
 * @kernel include/linux/slab.h kmalloc_index
 * The kmalloc cache for a request of `size` bytes (1 .. KMALLOC_MAX_CACHE_SIZE).
 */
export function kmallocCache(pgdat: PgData, size: number): KmemCache {
  const std = pgdat.slab.std;
  if (!std) throw new RangeError('kmalloc before kmem_cache_init');
  if (!(size >= 1 && size <= KMALLOC_MAX_CACHE_SIZE)) throw new RangeError(`kmalloc of ${size} bytes: the model's kmalloc caches hold 1 to ${KMALLOC_MAX_CACHE_SIZE}`);
  if (size > 64 && size <= 96) return std.kmalloc[4]!;
  if (size > 128 && size <= 192) return std.kmalloc[6]!;
  const i = Math.max(3, fls(size - 1)); // 2^i >= size, at least 8
  // 8, 16, 32, 64 are KMALLOC_SIZES[0..3], 128 is [5], 256 and up follow from [7]
  return std.kmalloc[i <= 6 ? i - 3 : i === 7 ? 5 : i - 1]!;
}

/** kmalloc(size) n times; returns the objects got (freed with kfree). */
export function kmalloc(pgdat: PgData, size: number, n = 1, gfp = GFP_KERNEL): number {
  return kmemCacheAlloc(pgdat, kmallocCache(pgdat, size), n, gfp);
}

/** kfree() of n objects kmalloc(size) gave, the newest first unless told otherwise. */
export function kfree(pgdat: PgData, size: number, n = 1, from: FreeFrom = FreeFrom.newest): number {
  return kmemCacheFree(pgdat, kmallocCache(pgdat, size), n, from);
}

/**
 * @kernel kernel/fork.c vm_area_alloc, mm/rmap.c anon_vma_prepare
 * For process.ts: a new VMA's slab objects — a vm_area_struct and, for an anonymous
 * mapping once it is faulted (anon_vma_prepare), an anon_vma and its anon_vma_chain.
 * Call once per VMA created (mmap, a split in two by a partial munmap or mprotect).
 * Returns false, with none of them kept, when they could not all be had (out of memory).
 */
export function slabVmaAlloc(pgdat: PgData, anon = true): boolean {
  const std = pgdat.slab.std;
  if (!std) return true;
  if (kmemCacheAlloc(pgdat, std.vmAreaStruct, 1) < 1) return false;
  if (!anon) return true;
  if (kmemCacheAlloc(pgdat, std.anonVma, 1) === 1) {
    if (kmemCacheAlloc(pgdat, std.anonVmaChain, 1) === 1) return true;
    kmemCacheFree(pgdat, std.anonVma, 1, FreeFrom.newest);
  }
  // what was had goes back: the mmap or the fault fails with nothing allocated
  kmemCacheFree(pgdat, std.vmAreaStruct, 1, FreeFrom.newest);
  return false;
}

/**
 * @kernel kernel/fork.c vm_area_free, mm/rmap.c unlink_anon_vmas
 * For process.ts: a VMA goes (munmap, exit_mmap): its vm_area_struct and, for an
 * anonymous one, its anon_vma_chain and anon_vma. Which objects of the caches are
 * freed is the newest unless `from` says otherwise (the model keeps no object per VMA).
 */
export function slabVmaFree(pgdat: PgData, anon = true, from: FreeFrom = FreeFrom.newest): void {
  const std = pgdat.slab.std;
  if (!std) return;
  kmemCacheFree(pgdat, std.vmAreaStruct, 1, from);
  if (!anon) return;
  kmemCacheFree(pgdat, std.anonVmaChain, 1, from);
  kmemCacheFree(pgdat, std.anonVma, 1, from);
}

/** The caches fork() takes one object of each from (copy_process: task, mm, signal, sighand, files, cred, pid). */
function taskCaches(std: StdCaches): KmemCache[] {
  return [std.taskStruct, std.mmStruct, std.signalCache, std.sighandCache, std.filesCache, std.credJar, std.pid];
}

/**
 * @kernel kernel/fork.c copy_process (dup_task_struct, mm_alloc, copy_signal, copy_sighand, dup_fd, prepare_creds, alloc_pid)
 * For process.ts: a new process's slab objects (its kernel stack is Owner.kernelStack
 * pages, not slab). Returns false, with none of them kept, when they could not all be had.
 */
export function slabTaskAlloc(pgdat: PgData): boolean {
  const std = pgdat.slab.std;
  if (!std) return true;
  const caches = taskCaches(std);
  for (let i = 0; i < caches.length; i++) {
    if (kmemCacheAlloc(pgdat, caches[i]!, 1) === 1) continue;
    // fork fails (-ENOMEM): what it had is freed
    for (let j = 0; j < i; j++) kmemCacheFree(pgdat, caches[j]!, 1, FreeFrom.newest);
    return false;
  }
  return true;
}

/** For process.ts: a process's slab objects go when it is reaped (the newest of each cache unless told otherwise). */
export function slabTaskFree(pgdat: PgData, from: FreeFrom = FreeFrom.newest): void {
  const std = pgdat.slab.std;
  if (!std) return;
  for (const s of taskCaches(std)) kmemCacheFree(pgdat, s, 1, from);
}
