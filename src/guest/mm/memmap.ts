/**
 * The guest's struct page array (mem_map): one 16-byte record per page, indexed by PFN,
 * in a single Int32Array under this bit layout (the kernel spends 64 bytes per page):
 *
 *   word 0   bits  0-15  flags      page->flags (PG_* bits below; our own bit numbers)
 *            bits 16-23  pageType   page->page_type (PG_buddy, PG_offline, PG_table, PG_guard, PG_slab)
 *            bits 24-31  order      buddy order (page->private) or compound order (head)
 *   word 1   bits  0-7   owner      who holds the page (no kernel field: implied by use)
 *            bits  8-15  refcount   page->_refcount, saturating at 255
 *            bits 16-31  mapping    a small id: free-list or pcp migratetype, process or file id, slab cache
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
 * page->index sits in an array of its own (4 bytes per page): the virtual page number
 * of an anonymous page in its process's address space (the reverse map's half of the
 * page tables: migration and reclaim find the pte through it), or a page-cache page's
 * offset in its file. It is read and written only on fault, unmap, migration and
 * split, never by the allocator, so it stays out of the hot record.
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
  /**
   * The head page of a slab (PageSlab; page->slab_cache in the mapping field). 6.1 keeps
   * PG_slab in page->flags, whose 16 bits are all taken in the model; it is a page type
   * here, as it became in 6.10. kmalloc_large pages are not PageSlab, as in the kernel.
   */
  slab = 5,
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
  /** A huge page of the hugetlb pool (vm.nr_hugepages): a compound page of HUGETLB_PAGE_ORDER (hugetlb.ts). */
  hugetlb = 16,
}
export const NR_OWNERS = 17;

export const OWNER_NAMES: readonly string[] = [
  'free', 'pcp', 'reserved', 'kernel', 'slab_unreclaimable', 'slab_reclaimable', 'kernel_stack',
  'page_table', 'anon', 'file', 'shmem', 'balloon', 'free_page_hint', 'virtio', 'compact_free', 'page_reporting',
  'hugetlb',
];

/** Migratetypes (enum migratetype), without CMA. */
export const enum MigrateType {
  unmovable = 0,
  movable = 1,
  reclaimable = 2,
  /** MIGRATE_PCPTYPES: the types that have per-cpu lists. */
  pcptypes = 3,
  highatomic = 3,
  /** MIGRATE_RESERVE of Linux before 4.4 (kernel_era.ts reserve: 'migrate-reserve'): the slot HIGHATOMIC took over. */
  reserve = 3,
  isolate = 4,
}
export const MIGRATE_PCPTYPES = 3;
export const MIGRATE_TYPES = 5;
export const MIGRATETYPE_NAMES: readonly string[] = ['Unmovable', 'Movable', 'Reclaimable', 'HighAtomic', 'Isolate'];

/** Pageblock byte layout: low 3 bits migratetype, bit 3 the compaction skip hint. */
export const PB_MIGRATETYPE_MASK = 0x7;
export const PB_MIGRATE_SKIP = 0x8;

/** Bytes of page-map state per page, as documented above (the record and page->index). */
export const MEMMAP_BYTES_PER_PAGE = 20;

/**
 * The page record's bit layout, one constant per field (the diagram at the top of this
 * file). Read a field as `(word & MASK) >>> SHIFT`, write it as
 * `(word & ~MASK) | (value << SHIFT)`; the accessors below are the only code that does.
 */
export const enum PageRecord {
  /**
   * Int32 words per page (and per list-head sentinel); a record starts at pfn * WORDS.
   * NOTE: a multiply, not pfn << 2: a 2 TiB guest has 2^29 pages, and a shift would
   * wrap the index of every record past 2^29 into negative int32 range.
   */
  WORDS = 4,
  /** Word 0: flags, page type, order. */
  FLAGS_WORD = 0,
  /** Word 1: owner, refcount, mapping. */
  OWNER_WORD = 1,
  /** Words 2 and 3: the list links (page->lru.next, page->lru.prev). */
  NEXT_WORD = 2,
  PREV_WORD = 3,

  /** Word 0 bits 0-15: page->flags (PG). */
  FLAGS_MASK = 0xffff,
  /** Word 0 bits 16-23: page->page_type (PageType). */
  TYPE_SHIFT = 16,
  TYPE_MASK = 0xff << 16,
  /** Word 0 bits 24-31: buddy or compound order. Read with `>>> ORDER_SHIFT` alone (nothing above it). */
  ORDER_SHIFT = 24,
  ORDER_MASK = 0xff000000 | 0,
  /** The page-type and order bits together: one compare tells "buddy head of order o". */
  TYPE_ORDER_MASK = 0xffff0000 | 0,

  /** Word 1 bits 0-7: owner (Owner). */
  OWNER_MASK = 0xff,
  /** Word 1 bits 8-15: page->_refcount, saturating at REFCOUNT_MAX. */
  REFCOUNT_SHIFT = 8,
  REFCOUNT_MASK = 0xff << 8,
  REFCOUNT_MAX = 255,
  /** Word 1 bits 16-31: mapping id. Read with `>>> MAPPING_SHIFT` alone; ids fit in 16 bits. */
  MAPPING_SHIFT = 16,
  MAPPING_MASK = 0xffff0000 | 0,
}

/** The page map. */
export type MemMap = {
  /** Number of pages (memmap PFNs 0..nrPages-1). */
  nrPages: number;
  /** Four int32 words per page, then per list-head sentinel (layout above). */
  w: Int32Array;
  /** One byte per pageblock: migratetype | skip bit. */
  pageblock: Uint8Array;
  /**
   * Free pages (in free-list blocks, PageBuddy) per pageblock, kept by the free lists'
   * add and delete: a scan of a block without any (a free scanner's) need not look at
   * its pages to know it finds none.
   */
  blockFree: Int32Array;
  /** page->index per page: an anonymous page's virtual page number, a file page's offset. */
  index: Uint32Array;
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
    blockFree: new Int32Array(nrPages >> PAGEBLOCK_ORDER),
    index: new Uint32Array(nrPages),
    nrListHeads: 0,
    maxListHeads,
  };
}

/** Total bytes of page-map state (page records, list-head records, pageblock bytes and free counts). */
export function memmapBytes(map: MemMap): number {
  return map.w.byteLength + map.pageblock.byteLength + map.blockFree.byteLength + map.index.byteLength;
}

// ---------------------------------------------------------------------------------
// Intrusive doubly linked lists (include/linux/list.h)

/** Allocates and initialises an empty list head; returns its index. */
export function listHeadAlloc(map: MemMap): number {
  if (map.nrListHeads >= map.maxListHeads) throw new RangeError('out of list heads');
  const h = map.nrPages + map.nrListHeads++;
  map.w[(h * PageRecord.WORDS) + PageRecord.NEXT_WORD] = h;
  map.w[(h * PageRecord.WORDS) + PageRecord.PREV_WORD] = h;
  return h;
}

/** The entry after `entry` (list head or page). */
export function listNext(map: MemMap, entry: number): number {
  return map.w[(entry * PageRecord.WORDS) + PageRecord.NEXT_WORD]!;
}

/** The entry before `entry`. */
export function listPrev(map: MemMap, entry: number): number {
  return map.w[(entry * PageRecord.WORDS) + PageRecord.PREV_WORD]!;
}

export function listEmpty(map: MemMap, head: number): boolean {
  return map.w[(head * PageRecord.WORDS) + PageRecord.NEXT_WORD] === head;
}

/** Adds entry right after head (list_add). */
export function listAdd(map: MemMap, entry: number, head: number): void {
  const w = map.w;
  const first = w[(head * PageRecord.WORDS) + PageRecord.NEXT_WORD]!;
  w[(entry * PageRecord.WORDS) + PageRecord.NEXT_WORD] = first;
  w[(entry * PageRecord.WORDS) + PageRecord.PREV_WORD] = head;
  w[(first * PageRecord.WORDS) + PageRecord.PREV_WORD] = entry;
  w[(head * PageRecord.WORDS) + PageRecord.NEXT_WORD] = entry;
}

/** Adds entry right before head, i.e. at the tail (list_add_tail). */
export function listAddTail(map: MemMap, entry: number, head: number): void {
  const w = map.w;
  const last = w[(head * PageRecord.WORDS) + PageRecord.PREV_WORD]!;
  w[(entry * PageRecord.WORDS) + PageRecord.NEXT_WORD] = head;
  w[(entry * PageRecord.WORDS) + PageRecord.PREV_WORD] = last;
  w[(last * PageRecord.WORDS) + PageRecord.NEXT_WORD] = entry;
  w[(head * PageRecord.WORDS) + PageRecord.PREV_WORD] = entry;
}

/** Removes entry from whatever list it is on (list_del); its links are poisoned. */
export function listDel(map: MemMap, entry: number): void {
  const w = map.w;
  const n = w[(entry * PageRecord.WORDS) + PageRecord.NEXT_WORD]!, p = w[(entry * PageRecord.WORDS) + PageRecord.PREV_WORD]!;
  w[(p * PageRecord.WORDS) + PageRecord.NEXT_WORD] = n;
  w[(n * PageRecord.WORDS) + PageRecord.PREV_WORD] = p;
  w[(entry * PageRecord.WORDS) + PageRecord.NEXT_WORD] = NO_PAGE;
  w[(entry * PageRecord.WORDS) + PageRecord.PREV_WORD] = NO_PAGE;
}

/** First entry of a list, or NO_PAGE when empty (list_first_entry_or_null). */
export function listFirst(map: MemMap, head: number): number {
  const f = map.w[(head * PageRecord.WORDS) + PageRecord.NEXT_WORD]!;
  return f === head ? NO_PAGE : f;
}

/** Last entry of a list, or NO_PAGE when empty. */
export function listLast(map: MemMap, head: number): number {
  const l = map.w[(head * PageRecord.WORDS) + PageRecord.PREV_WORD]!;
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
  return map.w[pfn * PageRecord.WORDS]! & PageRecord.FLAGS_MASK;
}

export function setPageFlags(map: MemMap, pfn: number, flags: number): void {
  const i = pfn * PageRecord.WORDS;
  map.w[i] = (map.w[i]! & ~PageRecord.FLAGS_MASK) | (flags & PageRecord.FLAGS_MASK);
}

export function setPageFlag(map: MemMap, pfn: number, flag: PG): void {
  const i = pfn * PageRecord.WORDS;
  map.w[i] = map.w[i]! | flag;
}

export function clearPageFlag(map: MemMap, pfn: number, flag: PG): void {
  const i = pfn * PageRecord.WORDS;
  map.w[i] = map.w[i]! & ~flag;
}

/** page_type (PageType). */
export function pageTypeOf(map: MemMap, pfn: number): PageType {
  return ((map.w[pfn * PageRecord.WORDS]! & PageRecord.TYPE_MASK) >>> PageRecord.TYPE_SHIFT) as PageType;
}

export function setPageType(map: MemMap, pfn: number, type: PageType): void {
  const i = pfn * PageRecord.WORDS;
  map.w[i] = (map.w[i]! & ~PageRecord.TYPE_MASK) | (type << PageRecord.TYPE_SHIFT);
}

/** Buddy or compound order stored in the page. */
export function pageOrder(map: MemMap, pfn: number): number {
  return map.w[pfn * PageRecord.WORDS]! >>> PageRecord.ORDER_SHIFT;
}

export function setPageOrder(map: MemMap, pfn: number, order: number): void {
  const i = pfn * PageRecord.WORDS;
  map.w[i] = (map.w[i]! & ~PageRecord.ORDER_MASK) | (order << PageRecord.ORDER_SHIFT);
}

/** Who holds the page (Owner). */
export function pageOwner(map: MemMap, pfn: number): Owner {
  return (map.w[(pfn * PageRecord.WORDS) + PageRecord.OWNER_WORD]! & PageRecord.OWNER_MASK) as Owner;
}

export function setPageOwner(map: MemMap, pfn: number, owner: Owner): void {
  const i = (pfn * PageRecord.WORDS) + PageRecord.OWNER_WORD;
  map.w[i] = (map.w[i]! & ~PageRecord.OWNER_MASK) | owner;
}

/**
 * @kernel include/linux/page_ref.h page_ref_count
 * The page's reference count; a count above one pins the page against migration.
 */
export function pageRefcount(map: MemMap, pfn: number): number {
  return (map.w[(pfn * PageRecord.WORDS) + PageRecord.OWNER_WORD]! & PageRecord.REFCOUNT_MASK) >>> PageRecord.REFCOUNT_SHIFT;
}

export function setPageRefcount(map: MemMap, pfn: number, count: number): void {
  const i = (pfn * PageRecord.WORDS) + PageRecord.OWNER_WORD;
  map.w[i] = (map.w[i]! & ~PageRecord.REFCOUNT_MASK) | (Math.min(count, PageRecord.REFCOUNT_MAX) << PageRecord.REFCOUNT_SHIFT);
}

/** The small id in page->mapping/index (free-list or pcp migratetype, process or file id). */
export function pageMapping(map: MemMap, pfn: number): number {
  return map.w[(pfn * PageRecord.WORDS) + PageRecord.OWNER_WORD]! >>> PageRecord.MAPPING_SHIFT;
}

/** page->index: an anonymous page's virtual page number in its process (see the header). */
export function pageIndex(map: MemMap, pfn: number): number {
  return map.index[pfn]!;
}

export function setPageIndex(map: MemMap, pfn: number, index: number): void {
  map.index[pfn] = index;
}

export function setPageMapping(map: MemMap, pfn: number, id: number): void {
  const i = (pfn * PageRecord.WORDS) + PageRecord.OWNER_WORD;
  map.w[i] = (map.w[i]! & ~PageRecord.MAPPING_MASK) | (id << PageRecord.MAPPING_SHIFT);
}

/**
 * Sets every field but the list links of pages [start, end) at once: flags to
 * `flags`, type and order to zero; owner to `owner`, refcount to `refcount`, mapping
 * to zero. The bulk reset used by allocation, freeing, isolation and boot.
 */
export function resetPages(map: MemMap, start: number, end: number, owner: Owner, flags: number, refcount = 0): void {
  const w = map.w;
  const ownerWord = owner | (refcount << PageRecord.REFCOUNT_SHIFT);
  for (let i = start * PageRecord.WORDS, e = end * PageRecord.WORDS; i < e; i += PageRecord.WORDS) {
    w[i] = flags;
    w[i + PageRecord.OWNER_WORD] = ownerWord;
  }
}

/** Sets the owner of pages [start, end), keeping their other fields. */
export function setOwnerRange(map: MemMap, start: number, end: number, owner: Owner): void {
  const w = map.w;
  for (let i = (start * PageRecord.WORDS) + PageRecord.OWNER_WORD, e = (end * PageRecord.WORDS) + PageRecord.OWNER_WORD; i < e; i += PageRecord.WORDS) {
    w[i] = (w[i]! & ~PageRecord.OWNER_MASK) | owner;
  }
}

/**
 * @kernel mm/page_alloc.c set_buddy_order (with __SetPageBuddy)
 * The page heads a free block of `order` on migratetype mt's free list: PageBuddy,
 * the order, owner free, mapping = the list's migratetype, no references. Its flags
 * (PG_reported) are kept.
 */
export function setPageBuddy(map: MemMap, pfn: number, order: number, mt: number): void {
  const i = pfn * PageRecord.WORDS;
  map.w[i] = (map.w[i]! & PageRecord.FLAGS_MASK) | (PageType.buddy << PageRecord.TYPE_SHIFT) | (order << PageRecord.ORDER_SHIFT);
  map.w[i + PageRecord.OWNER_WORD] = (mt << PageRecord.MAPPING_SHIFT) | Owner.free;
}

/**
 * @kernel mm/page_alloc.c del_page_from_free_list (__ClearPageBuddy, set_page_private 0, __ClearPageReported)
 * The page no longer heads a free block: type, order and PG_reported cleared in one store.
 */
export function clearPageBuddy(map: MemMap, pfn: number): void {
  const i = pfn * PageRecord.WORDS;
  map.w[i] = map.w[i]! & (PageRecord.FLAGS_MASK & ~PG.reported);
}

/**
 * The head of a block waiting on a per-cpu list: no flags or type, the block's order,
 * owner pcp, mapping = the migratetype it was freed as (get_pcppage_migratetype).
 */
export function setPcpPage(map: MemMap, pfn: number, order: number, mt: number): void {
  const i = pfn * PageRecord.WORDS;
  map.w[i] = order << PageRecord.ORDER_SHIFT;
  map.w[i + PageRecord.OWNER_WORD] = (mt << PageRecord.MAPPING_SHIFT) | Owner.pcp;
}

/**
 * @kernel mm/page_alloc.c prep_new_page (set_page_refcounted, prep_compound_page's head)
 * The head of a freshly allocated block: `flags` (PG_head for a compound page), the
 * block's order, the new owner and one reference.
 */
export function setNewPage(map: MemMap, pfn: number, order: number, flags: number, owner: Owner): void {
  const i = pfn * PageRecord.WORDS;
  map.w[i] = (order << PageRecord.ORDER_SHIFT) | flags;
  map.w[i + PageRecord.OWNER_WORD] = (1 << PageRecord.REFCOUNT_SHIFT) | owner;
}

export function PageBuddy(map: MemMap, pfn: number): boolean {
  return (map.w[pfn * PageRecord.WORDS]! & PageRecord.TYPE_MASK) === PageType.buddy << PageRecord.TYPE_SHIFT;
}

export function PageOffline(map: MemMap, pfn: number): boolean {
  return (map.w[pfn * PageRecord.WORDS]! & PageRecord.TYPE_MASK) === PageType.offline << PageRecord.TYPE_SHIFT;
}

/** PageSlab(): the head page of a slab (its tails are found through compound_head). */
export function PageSlab(map: MemMap, pfn: number): boolean {
  return (map.w[pfn * PageRecord.WORDS]! & PageRecord.TYPE_MASK) === PageType.slab << PageRecord.TYPE_SHIFT;
}

export function PageReserved(map: MemMap, pfn: number): boolean {
  return (map.w[pfn * PageRecord.WORDS]! & PG.reserved) !== 0;
}

export function PageLRU(map: MemMap, pfn: number): boolean {
  return (map.w[pfn * PageRecord.WORDS]! & PG.lru) !== 0;
}

export function PageHead(map: MemMap, pfn: number): boolean {
  return (map.w[pfn * PageRecord.WORDS]! & PG.head) !== 0;
}

export function PageReported(map: MemMap, pfn: number): boolean {
  return (map.w[pfn * PageRecord.WORDS]! & PG.reported) !== 0;
}

/**
 * The end of the run of pages from pfn (exclusive, at most `end`) that a scanner would
 * treat as pfn: each one owned by `owner`, not on the LRU, not a compound head, not the
 * head of a free block. Two loads a page, for scanners that would otherwise test every
 * page of a long run the same way (compaction's migrate scanner over a kernel
 * allocation of 512 pages, say).
 */
export function sameOwnerRunEnd(map: MemMap, pfn: number, end: number, owner: Owner): number {
  const w = map.w;
  const stop = PG.lru | PG.head;
  for (let i = pfn * PageRecord.WORDS; pfn < end; pfn++, i += PageRecord.WORDS) {
    const w0 = w[i]!;
    if ((w[i + PageRecord.OWNER_WORD]! & PageRecord.OWNER_MASK) !== owner || (w0 & stop) !== 0 ||
      (w0 & PageRecord.TYPE_MASK) === PageType.buddy << PageRecord.TYPE_SHIFT) break;
  }
  return pfn;
}

/**
 * @kernel mm/internal.h buddy_order
 * The order of a free buddy block (valid when PageBuddy).
 */
export function buddyOrder(map: MemMap, pfn: number): number {
  return map.w[pfn * PageRecord.WORDS]! >>> PageRecord.ORDER_SHIFT;
}

/** Whether the page is the head of a free block of exactly this order (page_is_buddy's test on the page). */
export function isBuddyOfOrder(map: MemMap, pfn: number, order: number): boolean {
  return (map.w[pfn * PageRecord.WORDS]! & PageRecord.TYPE_ORDER_MASK) === ((order << PageRecord.ORDER_SHIFT) | (PageType.buddy << PageRecord.TYPE_SHIFT));
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
