/**
 * The guest's struct page array (mem_map), as parallel typed arrays indexed by PFN.
 *
 * The kernel spends 64 bytes per 4 KiB page on struct page; the model spends 16:
 *
 *   field      type     bytes  kernel counterpart
 *   flags      Uint16   2      page->flags (PG_* bits below; our own bit numbers)
 *   pageType   Uint8    1      page->page_type (PG_buddy, PG_offline, PG_table, PG_guard)
 *   order      Uint8    1      buddy order (page->private) or compound order (head)
 *   owner      Uint8    1      who holds the page (no kernel field: implied by use)
 *   refcount   Uint8    1      page->_refcount, saturating at 255
 *   mapping    Uint16   2      a small id: pcp migratetype, process or file id (page->mapping/index)
 *   next/prev  Int32 x2 8      page->lru (also buddy_list, pcp_list, balloon list)
 *                       --
 *                       16
 *
 * List links are intrusive and shared, as the kernel's page->lru union is: a page is
 * on at most one list at a time (a free list, a per-cpu list, an LRU list, the
 * balloon list). List heads are sentinel entries stored past the last page
 * (index >= nrPages), so insertion and removal never branch on "empty list".
 *
 * Pageblocks (order 9, 2 MiB) carry their migratetype and the compaction skip bit in
 * one byte each.
 *
 * PFN space. The model's page map is indexed by "memmap PFN": the real guest PFN
 * below 4 GiB, and the real PFN minus the PCI hole above it (like SPARSEMEM, which
 * allocates no struct pages for the hole). The hole's start and size are multiples of
 * MAX_ORDER_NR_PAGES, so buddy and pageblock arithmetic is the same in both spaces.
 * Everything that leaves the guest kernel (PFNs on the virtio wire, /proc/kpageflags
 * offsets, zoneinfo start_pfn) is converted with physPfn(); see docs/model-limits.md.
 */

/** Page size, in bytes and as a shift. */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
/** Orders 0..MAX_ORDER-1 (the kernel's MAX_ORDER before 6.4: 11, largest block 4 MiB). */
export const MAX_ORDER = 11;
export const MAX_ORDER_NR_PAGES = 1 << (MAX_ORDER - 1);
/** Pageblock order (HUGETLB_PAGE_ORDER on x86-64). */
export const PAGEBLOCK_ORDER = 9;
export const PAGEBLOCK_NR_PAGES = 1 << PAGEBLOCK_ORDER;
/** Orders above this are "costly" (PAGE_ALLOC_COSTLY_ORDER). */
export const PAGE_ALLOC_COSTLY_ORDER = 3;

/** No page: the "NULL struct page *" of the model. */
export const NO_PAGE = -1;

/**
 * Page flags (page->flags). Bit numbers are the model's own; /proc/kpageflags maps
 * them to the kernel's KPF_* numbers (report/kpageflags.ts).
 */
export const enum PG {
  locked = 1 << 0,
  referenced = 1 << 1,
  uptodate = 1 << 2,
  dirty = 1 << 3,
  lru = 1 << 4,
  active = 1 << 5,
  workingset = 1 << 6,
  writeback = 1 << 7,
  reserved = 1 << 8,
  /** Head of a compound page (__GFP_COMP); its order field holds the compound order. */
  head = 1 << 9,
  /** Tail page of a compound page (the kernel marks this with compound_head bit 0). */
  tail = 1 << 10,
  swapbacked = 1 << 11,
  /** Free block already reported to the host (free page reporting). */
  reported = 1 << 12,
  /** Non-LRU movable page isolated by compaction (PG_isolated). */
  isolated = 1 << 13,
  reclaim = 1 << 14,
  swapcache = 1 << 15,
}

/**
 * Page types (page->page_type). Mutually exclusive; PG_offline is a type, not a flag,
 * exactly as in the kernel.
 */
export const enum PageType {
  none = 0,
  /** Free in the buddy allocator; order holds the block's order (head page only). */
  buddy = 1,
  /** Logically offline: a balloon page, or a page handed to the hypervisor. */
  offline = 2,
  /** A page-table page. */
  table = 3,
  /** Debug guard page (unused unless debug_guardpage_minorder). */
  guard = 4,
}

/** Who holds a page. Every page has exactly one owner; the checker counts them. */
export const enum Owner {
  /** Free: a buddy block's pages (head has PageType.buddy). */
  free = 0,
  /** Free, on a per-cpu list (allocated from the buddy's point of view). */
  pcp = 1,
  /** Never given to the buddy allocator (memblock reserved, kernel image, mem_map, holes). */
  reserved = 2,
  /** Generic kernel allocation (vmalloc backing, percpu chunks, drivers). */
  kernel = 3,
  slabUnreclaimable = 4,
  slabReclaimable = 5,
  kernelStack = 6,
  pageTable = 7,
  /** Anonymous memory of a process (LRU, swap-backed). */
  anon = 8,
  /** Page cache of a file (LRU). */
  file = 9,
  /** tmpfs/shmem (LRU, swap-backed). */
  shmem = 10,
  /** In the balloon (PageOffline). */
  balloon = 11,
  /** Held by the virtio-balloon driver while hinting free pages. */
  freePageHint = 12,
  /** A buffer of the virtio driver or its rings (real bytes in guest-physical memory). */
  virtio = 13,
}
export const NR_OWNERS = 14;

export const OWNER_NAMES: readonly string[] = [
  'free', 'pcp', 'reserved', 'kernel', 'slab_unreclaimable', 'slab_reclaimable', 'kernel_stack',
  'page_table', 'anon', 'file', 'shmem', 'balloon', 'free_page_hint', 'virtio',
];

/** Migratetypes (enum migratetype), without CMA. */
export const enum MigrateType {
  unmovable = 0,
  movable = 1,
  reclaimable = 2,
  /** MIGRATE_PCPTYPES: the types that have per-cpu lists. */
  pcptypes = 3,
  highatomic = 3,
  isolate = 4,
}
export const MIGRATE_PCPTYPES = 3;
export const MIGRATE_TYPES = 5;
export const MIGRATETYPE_NAMES: readonly string[] = ['Unmovable', 'Movable', 'Reclaimable', 'HighAtomic', 'Isolate'];

/** Pageblock byte layout: low 3 bits migratetype, bit 3 the compaction skip hint. */
export const PB_MIGRATETYPE_MASK = 0x7;
export const PB_MIGRATE_SKIP = 0x8;

/** Bytes of page-map state per page, as documented above. */
export const MEMMAP_BYTES_PER_PAGE = 2 + 1 + 1 + 1 + 1 + 2 + 4 + 4;

/** The page map. */
export type MemMap = {
  /** Number of pages (memmap PFNs 0..nrPages-1). */
  nrPages: number;
  flags: Uint16Array;
  pageType: Uint8Array;
  order: Uint8Array;
  owner: Uint8Array;
  refcount: Uint8Array;
  mapping: Uint16Array;
  /** Intrusive list links; entries >= nrPages are list-head sentinels. */
  next: Int32Array;
  prev: Int32Array;
  /** One byte per pageblock: migratetype | skip bit. */
  pageblock: Uint8Array;
  /** Sentinels handed out so far (list heads live at nrPages + k). */
  nrListHeads: number;
  /** Capacity for sentinels. */
  maxListHeads: number;
};

/** Room for list heads: free lists, per-cpu lists, LRU lists, balloon and hint lists. */
const DEFAULT_LIST_HEADS = 4096;

export function createMemMap(nrPages: number, maxListHeads = DEFAULT_LIST_HEADS): MemMap {
  if (nrPages % PAGEBLOCK_NR_PAGES !== 0) throw new RangeError(`memmap size ${nrPages} is not a whole number of pageblocks`);
  const n = nrPages + maxListHeads;
  return {
    nrPages,
    flags: new Uint16Array(nrPages),
    pageType: new Uint8Array(nrPages),
    order: new Uint8Array(nrPages),
    owner: new Uint8Array(nrPages),
    refcount: new Uint8Array(nrPages),
    mapping: new Uint16Array(nrPages),
    next: new Int32Array(n),
    prev: new Int32Array(n),
    pageblock: new Uint8Array(nrPages >> PAGEBLOCK_ORDER),
    nrListHeads: 0,
    maxListHeads,
  };
}

/** Total bytes of page-map state (per-page arrays plus pageblock bytes and list heads). */
export function memmapBytes(map: MemMap): number {
  return map.flags.byteLength + map.pageType.byteLength + map.order.byteLength + map.owner.byteLength +
    map.refcount.byteLength + map.mapping.byteLength + map.next.byteLength + map.prev.byteLength +
    map.pageblock.byteLength;
}

// ---------------------------------------------------------------------------------
// Intrusive doubly linked lists (include/linux/list.h)

/** Allocates and initialises an empty list head; returns its index. */
export function listHeadAlloc(map: MemMap): number {
  if (map.nrListHeads >= map.maxListHeads) throw new RangeError('out of list heads');
  const h = map.nrPages + map.nrListHeads++;
  map.next[h] = h;
  map.prev[h] = h;
  return h;
}

export function listEmpty(map: MemMap, head: number): boolean {
  return map.next[head] === head;
}

/** Adds entry right after head (list_add). */
export function listAdd(map: MemMap, entry: number, head: number): void {
  const first = map.next[head]!;
  map.next[entry] = first;
  map.prev[entry] = head;
  map.prev[first] = entry;
  map.next[head] = entry;
}

/** Adds entry right before head, i.e. at the tail (list_add_tail). */
export function listAddTail(map: MemMap, entry: number, head: number): void {
  const last = map.prev[head]!;
  map.next[entry] = head;
  map.prev[entry] = last;
  map.next[last] = entry;
  map.prev[head] = entry;
}

/** Removes entry from whatever list it is on (list_del); its links are poisoned. */
export function listDel(map: MemMap, entry: number): void {
  const n = map.next[entry]!, p = map.prev[entry]!;
  map.next[p] = n;
  map.prev[n] = p;
  map.next[entry] = NO_PAGE;
  map.prev[entry] = NO_PAGE;
}

/** First entry of a list, or NO_PAGE when empty (list_first_entry_or_null). */
export function listFirst(map: MemMap, head: number): number {
  const f = map.next[head]!;
  return f === head ? NO_PAGE : f;
}

/** Last entry of a list, or NO_PAGE when empty. */
export function listLast(map: MemMap, head: number): number {
  const l = map.prev[head]!;
  return l === head ? NO_PAGE : l;
}

/** Moves entry to the head (list_move) or tail (list_move_tail) of another list. */
export function listMove(map: MemMap, entry: number, head: number, tail: boolean): void {
  listDel(map, entry);
  if (tail) listAddTail(map, entry, head);
  else listAdd(map, entry, head);
}

/** Number of entries on a list (walks it: not for hot paths). */
export function listCount(map: MemMap, head: number): number {
  let n = 0;
  for (let e = map.next[head]!; e !== head; e = map.next[e]!) n++;
  return n;
}

// ---------------------------------------------------------------------------------
// Page accessors (include/linux/page-flags.h)

/** page->flags (PG_* bits). */
export function pageFlags(map: MemMap, pfn: number): number {
  return map.flags[pfn]!;
}

/** page_type (PageType). */
export function pageTypeOf(map: MemMap, pfn: number): PageType {
  return map.pageType[pfn]! as PageType;
}

/** Buddy or compound order stored in the page. */
export function pageOrder(map: MemMap, pfn: number): number {
  return map.order[pfn]!;
}

/** Who holds the page (Owner). */
export function pageOwner(map: MemMap, pfn: number): Owner {
  return map.owner[pfn]! as Owner;
}

/** page_ref_count(). */
export function pageRefcount(map: MemMap, pfn: number): number {
  return map.refcount[pfn]!;
}

/** The small id in page->mapping/index (free-list or pcp migratetype, process or file id). */
export function pageMapping(map: MemMap, pfn: number): number {
  return map.mapping[pfn]!;
}

export function PageBuddy(map: MemMap, pfn: number): boolean {
  return map.pageType[pfn] === PageType.buddy;
}

export function PageOffline(map: MemMap, pfn: number): boolean {
  return map.pageType[pfn] === PageType.offline;
}

export function PageReserved(map: MemMap, pfn: number): boolean {
  return (map.flags[pfn]! & PG.reserved) !== 0;
}

export function PageLRU(map: MemMap, pfn: number): boolean {
  return (map.flags[pfn]! & PG.lru) !== 0;
}

export function PageHead(map: MemMap, pfn: number): boolean {
  return (map.flags[pfn]! & PG.head) !== 0;
}

export function PageReported(map: MemMap, pfn: number): boolean {
  return (map.flags[pfn]! & PG.reported) !== 0;
}

/** buddy_order(): order of a free buddy block (valid when PageBuddy). */
export function buddyOrder(map: MemMap, pfn: number): number {
  return map.order[pfn]!;
}

export function setPageFlag(map: MemMap, pfn: number, flag: PG): void {
  map.flags[pfn] = map.flags[pfn]! | flag;
}

export function clearPageFlag(map: MemMap, pfn: number, flag: PG): void {
  map.flags[pfn] = map.flags[pfn]! & ~flag;
}

// ---------------------------------------------------------------------------------
// Pageblocks (include/linux/pageblock-flags.h)

export function pfnToPageblock(pfn: number): number {
  return pfn >>> PAGEBLOCK_ORDER;
}

/** get_pageblock_migratetype() */
export function getPageblockMigratetype(map: MemMap, pfn: number): MigrateType {
  return (map.pageblock[pfn >>> PAGEBLOCK_ORDER]! & PB_MIGRATETYPE_MASK) as MigrateType;
}

/** set_pageblock_migratetype() */
export function setPageblockMigratetype(map: MemMap, pfn: number, mt: MigrateType): void {
  const b = pfn >>> PAGEBLOCK_ORDER;
  map.pageblock[b] = (map.pageblock[b]! & ~PB_MIGRATETYPE_MASK) | mt;
}

/** get_pageblock_skip() */
export function getPageblockSkip(map: MemMap, pfn: number): boolean {
  return (map.pageblock[pfn >>> PAGEBLOCK_ORDER]! & PB_MIGRATE_SKIP) !== 0;
}

export function setPageblockSkip(map: MemMap, pfn: number, skip: boolean): void {
  const b = pfn >>> PAGEBLOCK_ORDER;
  map.pageblock[b] = skip ? map.pageblock[b]! | PB_MIGRATE_SKIP : map.pageblock[b]! & ~PB_MIGRATE_SKIP;
}
