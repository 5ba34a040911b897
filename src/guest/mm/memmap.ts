/**
 * The guest's struct page array (mem_map): one 16-byte record per page, indexed by PFN,
 * in a single Int32Array under this bit layout (the kernel spends 64 bytes per page):
 *
 *   word 0   bits  0-15  flags      page->flags (PG_* bits below; our own bit numbers)
 *            bits 16-23  pageType   page->page_type (PG_buddy, PG_offline, PG_table, PG_guard)
 *            bits 24-31  order      buddy order (page->private) or compound order (head)
 *   word 1   bits  0-7   owner      who holds the page (no kernel field: implied by use)
 *            bits  8-15  refcount   page->_refcount, saturating at 255
 *            bits 16-31  mapping    a small id: free-list or pcp migratetype, process or file id
 *   word 2               next       page->lru.next (also buddy_list, pcp_list, balloon list)
 *   word 3               prev       page->lru.prev
 *
 * NOTE: one record per page rather than one array per field. Random frees touch one
 * cache line per page instead of eight; `bench alloc` measured the array-per-field
 * layout at about a third of this one's throughput. Fields are read and written only
 * through the accessors below.
 *
 * List links are intrusive and shared, as the kernel's page->lru union is: a page is
 * on at most one list at a time (a free list, a per-cpu list, an LRU list, the
 * balloon list). List heads are sentinel records stored past the last page
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
  /** A free page isolated by compaction's free scanner as a migration target (cc->freepages). */
  compactFree = 14,
  /** A free block taken off its free list by page reporting while the host is told about it. */
  reporting = 15,
}
export const NR_OWNERS = 16;

export const OWNER_NAMES: readonly string[] = [
  'free', 'pcp', 'reserved', 'kernel', 'slab_unreclaimable', 'slab_reclaimable', 'kernel_stack',
  'page_table', 'anon', 'file', 'shmem', 'balloon', 'free_page_hint', 'virtio', 'compact_free', 'page_reporting',
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
export const MEMMAP_BYTES_PER_PAGE = 16;

/** Word offsets inside a page record. */
const W_NEXT = 2;
const W_PREV = 3;

/** The page map. */
export type MemMap = {
  /** Number of pages (memmap PFNs 0..nrPages-1). */
  nrPages: number;
  /** Four int32 words per page, then per list-head sentinel (layout above). */
  w: Int32Array;
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
  return {
    nrPages,
    w: new Int32Array((nrPages + maxListHeads) * 4),
    pageblock: new Uint8Array(nrPages >> PAGEBLOCK_ORDER),
    nrListHeads: 0,
    maxListHeads,
  };
}

/** Total bytes of page-map state (page records, list-head records, pageblock bytes). */
export function memmapBytes(map: MemMap): number {
  return map.w.byteLength + map.pageblock.byteLength;
}

// ---------------------------------------------------------------------------------
// Intrusive doubly linked lists (include/linux/list.h)

/** Allocates and initialises an empty list head; returns its index. */
export function listHeadAlloc(map: MemMap): number {
  if (map.nrListHeads >= map.maxListHeads) throw new RangeError('out of list heads');
  const h = map.nrPages + map.nrListHeads++;
  map.w[(h << 2) + W_NEXT] = h;
  map.w[(h << 2) + W_PREV] = h;
  return h;
}

/** The entry after `entry` (list head or page). */
export function listNext(map: MemMap, entry: number): number {
  return map.w[(entry << 2) + W_NEXT]!;
}

/** The entry before `entry`. */
export function listPrev(map: MemMap, entry: number): number {
  return map.w[(entry << 2) + W_PREV]!;
}

export function listEmpty(map: MemMap, head: number): boolean {
  return map.w[(head << 2) + W_NEXT] === head;
}

/** Adds entry right after head (list_add). */
export function listAdd(map: MemMap, entry: number, head: number): void {
  const w = map.w;
  const first = w[(head << 2) + W_NEXT]!;
  w[(entry << 2) + W_NEXT] = first;
  w[(entry << 2) + W_PREV] = head;
  w[(first << 2) + W_PREV] = entry;
  w[(head << 2) + W_NEXT] = entry;
}

/** Adds entry right before head, i.e. at the tail (list_add_tail). */
export function listAddTail(map: MemMap, entry: number, head: number): void {
  const w = map.w;
  const last = w[(head << 2) + W_PREV]!;
  w[(entry << 2) + W_NEXT] = head;
  w[(entry << 2) + W_PREV] = last;
  w[(last << 2) + W_NEXT] = entry;
  w[(head << 2) + W_PREV] = entry;
}

/** Removes entry from whatever list it is on (list_del); its links are poisoned. */
export function listDel(map: MemMap, entry: number): void {
  const w = map.w;
  const e = entry << 2;
  const n = w[e + W_NEXT]!, p = w[e + W_PREV]!;
  w[(p << 2) + W_NEXT] = n;
  w[(n << 2) + W_PREV] = p;
  w[e + W_NEXT] = NO_PAGE;
  w[e + W_PREV] = NO_PAGE;
}

/** First entry of a list, or NO_PAGE when empty (list_first_entry_or_null). */
export function listFirst(map: MemMap, head: number): number {
  const f = map.w[(head << 2) + W_NEXT]!;
  return f === head ? NO_PAGE : f;
}

/** Last entry of a list, or NO_PAGE when empty. */
export function listLast(map: MemMap, head: number): number {
  const l = map.w[(head << 2) + W_PREV]!;
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
  for (let e = listNext(map, head); e !== head; e = listNext(map, e)) n++;
  return n;
}

// ---------------------------------------------------------------------------------
// Page accessors (include/linux/page-flags.h)

/** page->flags (PG_* bits). */
export function pageFlags(map: MemMap, pfn: number): number {
  return map.w[pfn << 2]! & 0xffff;
}

export function setPageFlags(map: MemMap, pfn: number, flags: number): void {
  const i = pfn << 2;
  map.w[i] = (map.w[i]! & ~0xffff) | (flags & 0xffff);
}

/** page_type (PageType). */
export function pageTypeOf(map: MemMap, pfn: number): PageType {
  return ((map.w[pfn << 2]! >>> 16) & 0xff) as PageType;
}

export function setPageType(map: MemMap, pfn: number, type: PageType): void {
  const i = pfn << 2;
  map.w[i] = (map.w[i]! & ~0xff0000) | (type << 16);
}

/** Buddy or compound order stored in the page. */
export function pageOrder(map: MemMap, pfn: number): number {
  return map.w[pfn << 2]! >>> 24;
}

export function setPageOrder(map: MemMap, pfn: number, order: number): void {
  const i = pfn << 2;
  map.w[i] = (map.w[i]! & 0xffffff) | (order << 24);
}

/** Who holds the page (Owner). */
export function pageOwner(map: MemMap, pfn: number): Owner {
  return (map.w[(pfn << 2) + 1]! & 0xff) as Owner;
}

export function setPageOwner(map: MemMap, pfn: number, owner: Owner): void {
  const i = (pfn << 2) + 1;
  map.w[i] = (map.w[i]! & ~0xff) | owner;
}

/**
 * @kernel include/linux/page_ref.h page_ref_count
 * The page's reference count; a count above one pins the page against migration.
 */
export function pageRefcount(map: MemMap, pfn: number): number {
  return (map.w[(pfn << 2) + 1]! >>> 8) & 0xff;
}

export function setPageRefcount(map: MemMap, pfn: number, count: number): void {
  const i = (pfn << 2) + 1;
  map.w[i] = (map.w[i]! & ~0xff00) | (Math.min(count, 255) << 8);
}

/** The small id in page->mapping/index (free-list or pcp migratetype, process or file id). */
export function pageMapping(map: MemMap, pfn: number): number {
  return map.w[(pfn << 2) + 1]! >>> 16;
}

export function setPageMapping(map: MemMap, pfn: number, id: number): void {
  const i = (pfn << 2) + 1;
  map.w[i] = (map.w[i]! & 0xffff) | (id << 16);
}

/**
 * Sets every field but the list links of pages [start, end) at once: flags, type and
 * order to zero except `flags`, owner, refcount and mapping to zero except `owner`.
 * The bulk reset used by allocation, freeing and boot.
 */
export function resetPages(map: MemMap, start: number, end: number, owner: Owner, flags: number): void {
  const w = map.w;
  for (let i = start << 2, e = end << 2; i < e; i += 4) {
    w[i] = flags;
    w[i + 1] = owner;
  }
}

/** Sets the owner of pages [start, end), keeping their other fields. */
export function setOwnerRange(map: MemMap, start: number, end: number, owner: Owner): void {
  const w = map.w;
  for (let i = (start << 2) + 1, e = (end << 2) + 1; i < e; i += 4) w[i] = (w[i]! & ~0xff) | owner;
}

export function PageBuddy(map: MemMap, pfn: number): boolean {
  return ((map.w[pfn << 2]! >>> 16) & 0xff) === PageType.buddy;
}

export function PageOffline(map: MemMap, pfn: number): boolean {
  return ((map.w[pfn << 2]! >>> 16) & 0xff) === PageType.offline;
}

export function PageReserved(map: MemMap, pfn: number): boolean {
  return (map.w[pfn << 2]! & PG.reserved) !== 0;
}

export function PageLRU(map: MemMap, pfn: number): boolean {
  return (map.w[pfn << 2]! & PG.lru) !== 0;
}

export function PageHead(map: MemMap, pfn: number): boolean {
  return (map.w[pfn << 2]! & PG.head) !== 0;
}

export function PageReported(map: MemMap, pfn: number): boolean {
  return (map.w[pfn << 2]! & PG.reported) !== 0;
}

/**
 * @kernel mm/internal.h buddy_order
 * buddy_order(): order of a free buddy block (valid when PageBuddy).
 */
export function buddyOrder(map: MemMap, pfn: number): number {
  return map.w[pfn << 2]! >>> 24;
}

/** Whether the page is the head of a free block of exactly this order (page_is_buddy's test on the page). */
export function isBuddyOfOrder(map: MemMap, pfn: number, order: number): boolean {
  return (map.w[pfn << 2]! & 0xffff0000) === ((order << 24) | (PageType.buddy << 16));
}

export function setPageFlag(map: MemMap, pfn: number, flag: PG): void {
  map.w[pfn << 2] = map.w[pfn << 2]! | flag;
}

export function clearPageFlag(map: MemMap, pfn: number, flag: PG): void {
  map.w[pfn << 2] = map.w[pfn << 2]! & ~flag;
}

// ---------------------------------------------------------------------------------
// Pageblocks (include/linux/pageblock-flags.h)

export function pfnToPageblock(pfn: number): number {
  return pfn >>> PAGEBLOCK_ORDER;
}

/** @kernel include/linux/mmzone.h get_pageblock_migratetype */
export function getPageblockMigratetype(map: MemMap, pfn: number): MigrateType {
  return (map.pageblock[pfn >>> PAGEBLOCK_ORDER]! & PB_MIGRATETYPE_MASK) as MigrateType;
}

/** @kernel mm/page_alloc.c set_pageblock_migratetype */
export function setPageblockMigratetype(map: MemMap, pfn: number, mt: MigrateType): void {
  const b = pfn >>> PAGEBLOCK_ORDER;
  map.pageblock[b] = (map.pageblock[b]! & ~PB_MIGRATETYPE_MASK) | mt;
}

/** @kernel include/linux/pageblock-flags.h get_pageblock_skip */
export function getPageblockSkip(map: MemMap, pfn: number): boolean {
  return (map.pageblock[pfn >>> PAGEBLOCK_ORDER]! & PB_MIGRATE_SKIP) !== 0;
}

export function setPageblockSkip(map: MemMap, pfn: number, skip: boolean): void {
  const b = pfn >>> PAGEBLOCK_ORDER;
  map.pageblock[b] = skip ? map.pageblock[b]! | PB_MIGRATE_SKIP : map.pageblock[b]! & ~PB_MIGRATE_SKIP;
}
