/**
 * The page-map invariant checker.
 *
 * One walk over the memmap and the free and per-cpu lists verifies:
 * - conservation: every page is exactly one of free (in a buddy block), on a per-cpu
 *   list, allocated, reserved, or ballooned, and the per-owner counters, the zones'
 *   nr_free_pages and the pagesets' counts agree with the walk;
 * - free blocks: heads are PageBuddy with a valid, naturally aligned order inside
 *   their zone, their other pages are plain free pages, and no two free buddies of
 *   the same order are left unmerged (except across isolate/highatomic pageblocks);
 * - free lists: doubly linked both ways, each entry a buddy head of the list's order
 *   and migratetype, counts equal to nr_free per order and type, and every buddy head
 *   on exactly one list;
 * - per-cpu lists: entries are pcp blocks of the list's order, counts match;
 * - pageblocks: valid migratetypes; HIGHATOMIC blocks match nr_reserved_highatomic;
 * - ballooned pages are PageOffline, reserved pages PG_reserved;
 * - processes: every anonymous page is a live process's and its page tables map it at
 *   its page->index; rss, swap entries and page-table pages agree with the tables (THPs
 *   awaiting the deferred split count only their mapped subpages); mappings are sorted,
 *   disjoint, and hold every pte;
 * - the hugetlb pool: its counts against the hugetlb pages, its free list of huge heads;
 * - slab: the PageSlab pages are exactly the caches' slabs (slabs x pages per slab,
 *   head and tails of the cache's owner), every cache's counts agree with its slab
 *   records (in use at most capacity, the partial list linked both ways with nr_partial
 *   entries, full slabs full, one active slab per cpu), every object ring points at live
 *   slabs and no slab has more ring entries than objects in use; the superblock's
 *   dentry LRU, file sets and rings agree with each other.
 *
 * The walk is cheap (typed arrays, no allocation per page); the explanation string is
 * built only when something is wrong. checkPgdat returns null when all is well.
 */
import {
  MAX_ORDER, MIGRATE_TYPES, PAGEBLOCK_ORDER, PAGEBLOCK_NR_PAGES, MigrateType, Owner, PageType, PG, NR_OWNERS,
  OWNER_NAMES, getPageblockMigratetype,
  listNext, listPrev, pageFlags, pageIndex, pageMapping, pageOrder, pageOwner, pageTypeOf,
} from './memmap.js';
import { type PgData, type Zone, freeListHead, NR_PCP_LISTS, NR_LOWORDER_PCP_LISTS } from './mmzone.js';
import { NodeStat, ZoneStat } from './vmstat_items.js';
import { type KmemCache, type ObjRing, SlabState, objRingAt } from './slab.js';
import { vfsRings } from './dcache.js';
import { type Process, HPAGE_PMD_NR, PID_MAX, PTE_NONE, PTE_SWAP } from './process.js';

/**
 * One process's address space against the page map: mappings sorted and disjoint; every
 * PMD's table a page-table page of the process; a huge PMD maps an order-9 THP head of
 * the process at its address, not awaiting the deferred split; every pte maps a page of
 * the process whose page->index is the pte's address (a THP subpage: its head's index
 * plus the offset, the head on the deferred split queue), inside a mapping; present and
 * swap counts per table, rss, MM_SWAPENTS and mm_pgtables_bytes as the walk finds them.
 */
function checkAddressSpace(pgdat: PgData, proc: Process, bad: (m: string) => void): void {
  const map = pgdat.map, mm = proc.mm, pid = proc.pid;
  const q = pgdat.deferredSplitQueue.thps;
  for (let i = 0; i < mm.vmas.length; i++) {
    const v = mm.vmas[i]!;
    if (!(v.start < v.end || (v.kind === 'brk' && v.start === v.end)) || (i > 0 && mm.vmas[i - 1]!.end > v.start)) { bad(`process ${pid}: mapping ${i} [${v.start}, ${v.end}) out of order or overlapping`); return; }
  }
  const inVma = (vpn: number) => mm.vmas.some((v) => v.start <= vpn && vpn < v.end);
  const table = (pfn: number, what: string) => {
    if (pageOwner(map, pfn) !== Owner.pageTable || pageTypeOf(map, pfn) !== PageType.table || pageMapping(map, pfn) !== pid) bad(`process ${pid}: ${what} at pfn ${pfn} is not one of its page-table pages`);
  };
  let rss = 0, swap = 0, tables = (mm.pgd >= 0 ? 1 : 0) + mm.pmdTables.size + mm.pudTables.size + mm.pmds.size;
  if (mm.pgd >= 0) table(mm.pgd, 'the PGD');
  for (const t of mm.pmdTables.values()) table(t, 'a PMD table');
  for (const t of mm.pudTables.values()) table(t, 'a PUD table');
  for (const [idx, pmd] of mm.pmds) {
    table(pmd.table, `the table of PMD ${idx}`);
    const base = idx * HPAGE_PMD_NR;
    if (pmd.pte === null) {
      const h = pmd.huge;
      if (pageOwner(map, h) !== Owner.anon || pageMapping(map, h) !== pid || !(pageFlags(map, h) & PG.head) || pageOrder(map, h) !== PAGEBLOCK_ORDER || pageIndex(map, h) !== base || q.has(h)) bad(`process ${pid}: PMD ${idx} maps pfn ${h}, not its THP at that address`);
      if (!inVma(base) || !inVma(base + HPAGE_PMD_NR - 1)) bad(`process ${pid}: huge PMD ${idx} outside its mappings`);
      rss += HPAGE_PMD_NR;
      continue;
    }
    let present = 0, swapped = 0;
    for (let i = 0; i < HPAGE_PMD_NR; i++) {
      const e = pmd.pte[i]!;
      if (e === PTE_NONE) continue;
      if (!inVma(base + i)) { bad(`process ${pid}: a pte at ${base + i} outside its mappings`); return; }
      if (e === PTE_SWAP) { swapped++; continue; }
      present++;
      const f = pageFlags(map, e);
      const head = (f & PG.tail) !== 0 ? e & ~(HPAGE_PMD_NR - 1) : e;
      const want = (f & (PG.tail | PG.head)) !== 0 ? pageIndex(map, head) + (e - head) : pageIndex(map, e);
      if (pageOwner(map, e) !== Owner.anon || pageMapping(map, e) !== pid || want !== base + i) { bad(`process ${pid}: the pte at ${base + i} maps pfn ${e}, whose page says pid ${pageMapping(map, e)} index ${want}`); return; }
      if ((f & (PG.tail | PG.head)) !== 0 && !q.has(head)) { bad(`process ${pid}: the pte at ${base + i} maps a subpage of THP ${head}, which is not awaiting the deferred split`); return; }
    }
    if (present !== pmd.present || swapped !== pmd.swapped) bad(`process ${pid}: PMD ${idx} says ${pmd.present} present / ${pmd.swapped} swapped, its ptes ${present} / ${swapped}`);
    rss += present;
    swap += swapped;
  }
  if (rss !== proc.rssAnon) bad(`process ${pid}: rss ${proc.rssAnon}, its page tables map ${rss} pages`);
  if (swap !== proc.swapPages) bad(`process ${pid}: ${proc.swapPages} swap entries counted, its page tables hold ${swap}`);
  if (tables !== mm.nrPgtables) bad(`process ${pid}: ${mm.nrPgtables} page-table pages counted, it has ${tables}`);
}

/** A broken invariant: the model is corrupt and must not continue. */
export class InvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvariantError';
  }
}

/** Page-state census produced by a check (also useful to reports and tests). */
export type PageCensus = {
  total: number;
  free: number;
  pcp: number;
  allocated: number;
  reserved: number;
  ballooned: number;
  byOwner: Float64Array;
};

function zoneOf(pgdat: PgData, pfn: number): Zone | null {
  for (const z of pgdat.zones) if (z.spannedPages > 0 && pfn >= z.zoneStartPfn && pfn < z.zoneStartPfn + z.spannedPages) return z;
  return null;
}

/**
 * Walks the page map and returns a census, or a string saying what is wrong (the
 * first few problems).
 */
export function censusPgdat(pgdat: PgData): PageCensus | string {
  const map = pgdat.map;
  const problems: string[] = [];
  const bad = (msg: string) => { if (problems.length < 10) problems.push(msg); };
  const byOwner = new Float64Array(NR_OWNERS);
  const anonByPid = new Int32Array(PID_MAX + 1);
  const tablesByPid = new Int32Array(PID_MAX + 1);
  let dirtyFile = 0;
  const nz = pgdat.zones.length;
  const freeInZone = new Float64Array(nz);
  const headsByZone = pgdat.zones.map(() => new Int32Array(MAX_ORDER * MIGRATE_TYPES));
  const freeByBlock = new Int32Array(map.blockFree.length);
  let free = 0, pcp = 0, allocated = 0, reserved = 0, ballooned = 0;
  /** Pages of PageSlab compound pages (heads with their tails), by owner. */
  let slabPagesR = 0, slabPagesU = 0;
  const n = map.nrPages;

  for (let pfn = 0; pfn < n;) {
    const owner = pageOwner(map, pfn);
    const type = pageTypeOf(map, pfn);
    if (type === PageType.buddy) {
      const o = pageOrder(map, pfn);
      const mt = pageMapping(map, pfn);
      const z = zoneOf(pgdat, pfn);
      if (o >= MAX_ORDER || (pfn & ((1 << o) - 1)) !== 0) { bad(`pfn ${pfn}: buddy head with bad order ${o}`); pfn++; continue; }
      if (!z || pfn + (1 << o) > z.zoneStartPfn + z.spannedPages) { bad(`pfn ${pfn}: free block of order ${o} outside its zone`); pfn++; continue; }
      if (mt >= MIGRATE_TYPES) bad(`pfn ${pfn}: free block on unknown migratetype list ${mt}`);
      else headsByZone[z.idx]![o * MIGRATE_TYPES + mt]!++;
      for (let p = pfn; p < pfn + (1 << o); p++) {
        if (pageOwner(map, p) !== Owner.free) { bad(`pfn ${p}: inside free block at ${pfn} (order ${o}) but owned by ${OWNER_NAMES[pageOwner(map, p)]}`); break; }
        if (p !== pfn && pageTypeOf(map, p) !== PageType.none) { bad(`pfn ${p}: inside free block at ${pfn} but has page type ${pageTypeOf(map, p)}`); break; }
      }
      if (o < MAX_ORDER - 1) {
        const buddy = pfn ^ (1 << o);
        if (buddy >= z.zoneStartPfn && buddy < z.zoneStartPfn + z.spannedPages &&
          pageTypeOf(map, buddy) === PageType.buddy && pageOrder(map, buddy) === o) {
          const a = getPageblockMigratetype(map, pfn), b = getPageblockMigratetype(map, buddy);
          const blocked = o >= PAGEBLOCK_ORDER && a !== b && (a === MigrateType.isolate || b === MigrateType.isolate || a === MigrateType.highatomic || b === MigrateType.highatomic);
          if (!blocked) bad(`pfn ${pfn}: free block of order ${o} not merged with its free buddy ${buddy}`);
        }
      }
      freeInZone[z.idx] = freeInZone[z.idx]! + (1 << o);
      for (let b = pfn >> PAGEBLOCK_ORDER, nb = o < PAGEBLOCK_ORDER ? 1 : 1 << (o - PAGEBLOCK_ORDER); nb > 0; b++, nb--) freeByBlock[b]! += o < PAGEBLOCK_ORDER ? 1 << o : 1 << PAGEBLOCK_ORDER;
      free += 1 << o;
      pfn += 1 << o;
      continue;
    }
    switch (owner) {
      case Owner.free: bad(`pfn ${pfn}: marked free but not inside any free block`); break;
      case Owner.pcp: pcp++; break;
      case Owner.reserved:
        reserved++;
        if (!(pageFlags(map, pfn) & PG.reserved)) bad(`pfn ${pfn}: reserved page without PG_reserved`);
        break;
      case Owner.balloon:
        ballooned++;
        if (type !== PageType.offline) bad(`pfn ${pfn}: balloon page not PageOffline`);
        break;
      default:
        if (owner >= NR_OWNERS) bad(`pfn ${pfn}: unknown owner ${owner}`);
        allocated++;
        break;
    }
    if (owner < NR_OWNERS) byOwner[owner] = byOwner[owner]! + 1;
    if (owner === Owner.anon) anonByPid[pageMapping(map, pfn)]!++;
    else if (owner === Owner.file && (pageFlags(map, pfn) & PG.dirty) !== 0) dirtyFile++;
    else if (owner === Owner.pageTable) tablesByPid[pageMapping(map, pfn)]!++;
    if (type === PageType.slab) {
      const f = pageFlags(map, pfn);
      const np = f & PG.head ? 1 << pageOrder(map, pfn) : 1;
      if (owner === Owner.slabReclaimable) slabPagesR += np;
      else if (owner === Owner.slabUnreclaimable) slabPagesU += np;
      else bad(`pfn ${pfn}: PageSlab but owned by ${OWNER_NAMES[owner]}`);
      for (let p = pfn + 1; p < pfn + np && p < n; p++) {
        if (pageOwner(map, p) !== owner || !(pageFlags(map, p) & PG.tail)) { bad(`pfn ${p}: inside the slab at ${pfn} but not one of its tails`); break; }
      }
    }
    pfn++;
  }
  byOwner[Owner.free] = free;

  // THPs on the deferred split queue: anonymous compound heads, partly unmapped; the
  // subpages already unmapped are still the process's pages in the page map, not in its rss
  const unmappedByPid = new Int32Array(PID_MAX + 1);
  for (const [head, d] of pgdat.deferredSplitQueue.thps) {
    const f = pageFlags(map, head);
    if (pageOwner(map, head) !== Owner.anon || !(f & PG.head)) { bad(`pfn ${head}: on the deferred split queue but not an anonymous THP head`); continue; }
    let nr = 0;
    for (let i = 0; i < d.unmapped.length; i++) nr += d.unmapped[i]!;
    if (nr !== d.nr || nr === 0 || nr >= 1 << pageOrder(map, head) || d.unmapped.length !== 1 << pageOrder(map, head)) bad(`pfn ${head}: deferred split entry says ${d.nr} unmapped subpages, its mask ${nr} of ${d.unmapped.length}`);
    unmappedByPid[pageMapping(map, head)]! += d.nr;
  }

  // every anonymous page belongs to a live process, whose page tables map it and whose rss counts it
  for (const [pid, proc] of pgdat.tasks.procs) {
    const walked = anonByPid[pid]!;
    anonByPid[pid] = 0;
    if (walked - unmappedByPid[pid]! !== proc.rssAnon) bad(`process ${pid}: rss ${proc.rssAnon} pages, the page map has ${walked} of its anonymous pages (${unmappedByPid[pid]} of them unmapped subpages of THPs awaiting the deferred split)`);
    checkAddressSpace(pgdat, proc, bad);
    tablesByPid[pid] = 0;
  }
  for (let pid = 1; pid < tablesByPid.length; pid++) if (tablesByPid[pid]) bad(`${tablesByPid[pid]} page-table pages belong to pid ${pid}, which is not running`);
  // NR_FILE_DIRTY: the dirty page-cache pages
  if (pgdat.nodeStat[NodeStat.nr_dirty] !== dirtyFile) bad(`nr_dirty says ${pgdat.nodeStat[NodeStat.nr_dirty]} pages, the page map has ${dirtyFile} dirty page-cache pages`);
  // pid 0: anonymous memory of no modelled process (the boot footprint, alloc_pages owner anon)
  for (let pid = 1; pid < anonByPid.length; pid++) if (anonByPid[pid]) bad(`${anonByPid[pid]} anonymous pages belong to pid ${pid}, which is not running`);

  // counters against the walk
  for (const o of [Owner.reserved, Owner.kernel, Owner.slabUnreclaimable, Owner.slabReclaimable, Owner.kernelStack,
    Owner.pageTable, Owner.anon, Owner.file, Owner.shmem, Owner.balloon, Owner.freePageHint, Owner.virtio, Owner.compactFree, Owner.reporting,
    Owner.hugetlb]) {
    if (pgdat.ownerPages[o] !== byOwner[o]) bad(`owner ${OWNER_NAMES[o]}: counter says ${pgdat.ownerPages[o]} pages, page map has ${byOwner[o]}`);
  }

  // the hugetlb pool: its count covers the hugetlb pages, its free list holds distinct pool heads
  const h = pgdat.hugetlb;
  const hpage = 1 << h.order;
  if (h.nrHugePages * hpage !== byOwner[Owner.hugetlb]) bad(`hugetlb: nr_huge_pages ${h.nrHugePages} x ${hpage} pages, the page map has ${byOwner[Owner.hugetlb]} hugetlb pages`);
  if (h.freelist.length !== h.freeHugePages || h.freeHugePages > h.nrHugePages) bad(`hugetlb: free_huge_pages ${h.freeHugePages}, free list ${h.freelist.length}, nr_huge_pages ${h.nrHugePages}`);
  if (h.maxHugePages !== h.nrHugePages - h.surplusHugePages) bad(`hugetlb: max_huge_pages ${h.maxHugePages} is not the pool's ${h.nrHugePages} less ${h.surplusHugePages} surplus`);
  const onList = new Set<number>();
  for (const head of h.freelist) {
    if (onList.has(head)) { bad(`hugetlb: pfn ${head} twice on the free list`); continue; }
    onList.add(head);
    if ((head & (hpage - 1)) !== 0 || pageOwner(map, head) !== Owner.hugetlb || !(pageFlags(map, head) & PG.head) || pageOrder(map, head) !== h.order) { bad(`hugetlb: pfn ${head} on the free list is not a huge page head of order ${h.order}`); continue; }
    for (let p = head + 1; p < head + hpage; p++) {
      if (pageOwner(map, p) !== Owner.hugetlb || !(pageFlags(map, p) & PG.tail)) { bad(`hugetlb: pfn ${p} inside the huge page at ${head} is not one of its tails`); break; }
    }
  }

  checkSlabCaches(pgdat, slabPagesR, slabPagesU, byOwner, bad);

  for (let b = 0; b < freeByBlock.length; b++) {
    if (freeByBlock[b] !== map.blockFree[b]) { bad(`pageblock ${b}: ${freeByBlock[b]} pages in free blocks, the free count says ${map.blockFree[b]}`); break; }
  }
  let pcpCounted = 0;
  for (const z of pgdat.zones) {
    if (z.vmStat[ZoneStat.nr_free_pages] !== freeInZone[z.idx]) {
      bad(`zone ${z.name}: nr_free_pages ${z.vmStat[ZoneStat.nr_free_pages]} but ${freeInZone[z.idx]} pages are in free blocks`);
    }
    // free lists
    for (let o = 0; o < MAX_ORDER; o++) {
      let sum = 0;
      for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
        const head = freeListHead(z, o, mt);
        let count = 0;
        let prev = head;
        for (let e = listNext(map, head); e !== head; e = listNext(map, e)) {
          if (e < 0 || e >= map.nrPages) { bad(`zone ${z.name} order ${o} ${mt}: list link to ${e}`); break; }
          if (listPrev(map, e) !== prev) { bad(`zone ${z.name} order ${o}: broken prev link at pfn ${e}`); break; }
          if (pageTypeOf(map, e) !== PageType.buddy || pageOrder(map, e) !== o || pageMapping(map, e) !== mt) {
            bad(`zone ${z.name}: pfn ${e} on free list (order ${o}, type ${mt}) is not a free block of that order and type`);
            break;
          }
          prev = e;
          if (++count > map.nrPages) { bad(`zone ${z.name}: free list loops`); break; }
        }
        if (count !== z.nrFreeMt[o * MIGRATE_TYPES + mt]) bad(`zone ${z.name} order ${o} type ${mt}: ${count} blocks listed, nr_free says ${z.nrFreeMt[o * MIGRATE_TYPES + mt]}`);
        if (count !== headsByZone[z.idx]![o * MIGRATE_TYPES + mt]) bad(`zone ${z.name} order ${o} type ${mt}: ${count} blocks listed, ${headsByZone[z.idx]![o * MIGRATE_TYPES + mt]} buddy heads in the page map`);
        sum += count;
      }
      if (sum !== z.nrFree[o]) bad(`zone ${z.name} order ${o}: free_area nr_free ${z.nrFree[o]} but ${sum} blocks listed`);
    }
    // pcp lists
    for (let c = 0; c < z.pcp.length; c++) {
      const p = z.pcp[c]!;
      let pages = 0;
      for (let i = 0; i < NR_PCP_LISTS; i++) {
        const head = p.listBase + i;
        const order = i >= NR_LOWORDER_PCP_LISTS ? PAGEBLOCK_ORDER : Math.floor(i / 3);
        let guard = 0;
        for (let e = listNext(map, head); e !== head; e = listNext(map, e)) {
          if (e < 0 || e >= map.nrPages || pageOwner(map, e) !== Owner.pcp || pageOrder(map, e) !== order) {
            bad(`zone ${z.name} cpu ${c}: pcp list ${i} holds pfn ${e} which is not a pcp block of order ${order}`);
            break;
          }
          pages += 1 << order;
          if (++guard > map.nrPages) { bad('pcp list loops'); break; }
        }
      }
      if (pages !== p.count) bad(`zone ${z.name} cpu ${c}: pcp count ${p.count} but lists hold ${pages} pages`);
      pcpCounted += pages;
    }
    // pageblocks
    let highatomic = 0;
    const first = z.zoneStartPfn & ~(PAGEBLOCK_NR_PAGES - 1);
    for (let pfn = first; pfn < z.zoneStartPfn + z.spannedPages; pfn += PAGEBLOCK_NR_PAGES) {
      const mt = getPageblockMigratetype(map, pfn);
      if (mt >= MIGRATE_TYPES) bad(`pageblock at pfn ${pfn}: bad migratetype ${mt}`);
      if (mt === MigrateType.highatomic) highatomic += PAGEBLOCK_NR_PAGES;
    }
    if (pgdat.kernel.reserve === 'highatomic') {
      if (highatomic !== z.nrReservedHighatomic) bad(`zone ${z.name}: ${highatomic / PAGEBLOCK_NR_PAGES} HighAtomic pageblocks but nr_reserved_highatomic ${z.nrReservedHighatomic}`);
    } else if (highatomic > 2 * PAGEBLOCK_NR_PAGES) {
      // 3.6 setup_zone_migrate_reserve keeps at most two MIGRATE_RESERVE blocks per zone
      bad(`zone ${z.name}: ${highatomic / PAGEBLOCK_NR_PAGES} MIGRATE_RESERVE pageblocks (at most 2)`);
    }
  }
  if (pcpCounted !== pcp) bad(`${pcp} pages owned by pcp lists but the lists hold ${pcpCounted}`);
  const total = free + pcp + allocated + reserved + ballooned;
  if (total !== n) bad(`conservation: free ${free} + pcp ${pcp} + allocated ${allocated} + reserved ${reserved} + ballooned ${ballooned} = ${total}, not ${n}`);
  if (nz === 0) bad('no zones');

  if (problems.length) return problems.join('\n');
  return { total: n, free, pcp, allocated, reserved, ballooned, byOwner };
}

/**
 * The slab caches against their slab records and the page map's PageSlab pages, and
 * the object rings (the caches' own and the superblock's) against the slabs.
 */
function checkSlabCaches(pgdat: PgData, walkedR: number, walkedU: number, byOwner: Float64Array, bad: (msg: string) => void): void {
  const map = pgdat.map;
  let cacheR = 0, cacheU = 0;
  const rings = new Map<KmemCache, ObjRing[]>();
  for (const [c, r] of vfsRings(pgdat)) {
    const l = rings.get(c);
    if (l) l.push(r); else rings.set(c, [r]);
  }
  for (const s of pgdat.slab.caches) {
    const where = `slab cache ${s.name}`;
    let slabs = 0, objects = 0, inuse = 0, pages = 0, cpus = 0, partial = 0;
    for (let id = 0; id < s.nrIds; id++) {
      const st = s.slabState[id]!;
      if (st === SlabState.none) continue;
      slabs++;
      const pfn = s.slabPfn[id]!, order = s.slabOrder[id]!, objs = s.slabObjects[id]!, use = s.slabInuse[id]!;
      objects += objs; inuse += use; pages += 1 << order;
      if (use > objs) bad(`${where}: slab ${id} has ${use} objects in use of ${objs}`);
      if (objs !== s.objects && !(order === s.minOrder && objs === s.minObjects)) bad(`${where}: slab ${id} holds ${objs} objects at order ${order}`);
      if (st === SlabState.full && use !== objs) bad(`${where}: slab ${id} is on no list with ${objs - use} free objects`);
      if (st === SlabState.partial) partial++;
      if (st === SlabState.cpu) cpus++;
      if (pfn < 0 || pfn >= map.nrPages || pageTypeOf(map, pfn) !== PageType.slab || pageMapping(map, pfn) !== s.id || pageOwner(map, pfn) !== s.owner ||
        (order > 0 && (!(pageFlags(map, pfn) & PG.head) || pageOrder(map, pfn) !== order))) {
        bad(`${where}: slab ${id} at pfn ${pfn} (order ${order}) is not a PageSlab head of this cache`);
      }
    }
    if (slabs !== s.nrSlabs || objects !== s.totalObjects || inuse !== s.inuse || pages !== s.pages) {
      bad(`${where}: counters say ${s.nrSlabs} slabs, ${s.totalObjects} objects, ${s.inuse} in use, ${s.pages} pages; its slabs have ${slabs}, ${objects}, ${inuse}, ${pages}`);
    }
    if (s.nrIds - s.nrFreeIds !== slabs) bad(`${where}: ${s.nrIds} ids, ${s.nrFreeIds} free, but ${slabs} slabs`);
    // the node's partial list
    let listed = 0, prev = -1;
    for (let id = s.partialHead; id >= 0; id = s.slabNext[id]!) {
      if (s.slabState[id] !== SlabState.partial || s.slabPrev[id] !== prev) { bad(`${where}: partial list broken at slab ${id}`); break; }
      if (++listed > slabs) { bad(`${where}: partial list loops`); break; }
      prev = id;
    }
    if (prev !== s.partialTail || listed !== s.nrPartial || listed !== partial) bad(`${where}: nr_partial ${s.nrPartial}, ${listed} listed, ${partial} slabs partial`);
    let active = 0;
    for (let c = 0; c < s.cpuSlab.length; c++) {
      const id = s.cpuSlab[c]!;
      if (id < 0) continue;
      active++;
      if (id >= s.nrIds || s.slabState[id] !== SlabState.cpu) bad(`${where}: cpu ${c}'s active slab ${id} is not a cpu slab`);
    }
    if (active !== cpus) bad(`${where}: ${cpus} slabs marked active, ${active} cpus have one`);
    // objects: pinned, in the cache's own ring, in the superblock's rings
    const own = [s.lru, ...(rings.get(s) ?? [])];
    let external = 0;
    for (let i = 1; i < own.length; i++) external += own[i]!.len;
    if (external !== s.external) bad(`${where}: ${s.external} objects held outside the cache, its rings have ${external}`);
    if (s.pinned + s.lru.len + s.external !== s.inuse) bad(`${where}: ${s.inuse} objects in use, but ${s.pinned} pinned + ${s.lru.len} in its ring + ${s.external} outside`);
    const perSlab = new Int32Array(s.nrIds);
    for (const r of own) {
      for (let i = 0; i < r.len; i++) {
        const id = objRingAt(r, i);
        if (id < 0 || id >= s.nrIds || s.slabState[id] === SlabState.none) { bad(`${where}: an object ring points at slab ${id}, which is not live`); break; }
        perSlab[id]!++;
      }
    }
    for (let id = 0; id < s.nrIds; id++) if (perSlab[id]! > s.slabInuse[id]!) { bad(`${where}: slab ${id} has ${perSlab[id]} objects in rings but ${s.slabInuse[id]} in use`); break; }
    if (s.owner === Owner.slabReclaimable) cacheR += s.pages; else cacheU += s.pages;
  }
  if (cacheR !== walkedR || cacheU !== walkedU) bad(`slab: the caches hold ${cacheR} reclaimable and ${cacheU} unreclaimable slab pages, the page map has ${walkedR} and ${walkedU} PageSlab pages`);
  if (byOwner[Owner.slabReclaimable]! < cacheR || byOwner[Owner.slabUnreclaimable]! < cacheU) bad(`slab: fewer slab-owned pages (${byOwner[Owner.slabReclaimable]}, ${byOwner[Owner.slabUnreclaimable]}) than the caches' slabs (${cacheR}, ${cacheU})`);
  // the superblock
  const sb = pgdat.slab.sb;
  if (sb === null) return;
  let runs = 0;
  const positive = new Map<number, number>();
  let negative = 0;
  for (let i = sb.runHead; i < sb.runPid.length; i++) {
    const c = sb.runCount[i]!;
    if (c <= 0) bad(`superblock: dentry LRU run ${i} has ${c} dentries`);
    runs += c;
    const set = sb.sets.get(sb.runPid[i]!);
    if (set !== undefined && set.gen === sb.runGen[i]) positive.set(set.pid, (positive.get(set.pid) ?? 0) + c);
    else negative += c;
  }
  if (runs !== sb.dentryLru.len) bad(`superblock: ${sb.dentryLru.len} dentries on the LRU, its runs count ${runs}`);
  if (negative !== sb.negDentries) bad(`superblock: ${sb.negDentries} negative dentries, the runs of deleted files count ${negative}`);
  for (const set of sb.sets.values()) {
    const where = `file set ${set.pid}`;
    if ((positive.get(set.pid) ?? 0) !== set.dentries) bad(`${where}: ${set.dentries} dentries, the LRU has ${positive.get(set.pid) ?? 0}`);
    if (set.dentries > set.files || set.files < 0) bad(`${where}: ${set.dentries} dentries for ${set.files} files`);
    if (set.inodes.len !== set.files || set.lsm.len !== set.files || set.es.len !== set.files) bad(`${where}: ${set.files} files, ${set.inodes.len} inodes, ${set.lsm.len} LSM blobs, ${set.es.len} extents`);
    if (set.bh.len > set.cachedPages || set.cachedPages < 0) bad(`${where}: ${set.bh.len} buffer_heads for ${set.cachedPages} cached pages`);
    if (set.cachedPages === 0 && set.xa.len > 0) bad(`${where}: ${set.xa.len} xarray nodes without page cache`);
  }
}

/** Returns null when every invariant holds, else an explanation. */
export function checkPgdat(pgdat: PgData): string | null {
  const r = censusPgdat(pgdat);
  return typeof r === 'string' ? r : null;
}

/** Throws InvariantError (model corrupt) when an invariant is broken. */
export function assertPgdat(pgdat: PgData, where = ''): void {
  const r = checkPgdat(pgdat);
  if (r !== null) throw new InvariantError(`page map invariant broken${where ? ` ${where}` : ''}:\n${r}`);
}
