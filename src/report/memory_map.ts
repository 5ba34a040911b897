/**
 * The memory map: one byte per pageblock (2 MiB) saying what the pageblock is —
 * its migratetype (the pageblock's bits, as pagetypeinfo counts them) and what most of
 * its 512 pages hold (free in blocks of which order, reported, hinted, in the balloon,
 * anonymous, page cache, slab, page tables, other kernel memory, reserved) — for
 * pictures of the guest's physical memory (docs/pictures.md).
 *
 *   bits 0-2  migratetype   MigrateType (Unmovable, Movable, Reclaimable, HighAtomic, Isolate)
 *   bits 3-7  content       MapContent: the class holding the most pages of the pageblock
 *
 * The map is indexed by memmap pageblock: guest RAM in order with the PCI hole left
 * out (memmap.ts), so pageblock i starts i * 2 MiB into guest RAM.
 *
 * A walk of the whole page map (free blocks skipped by their order): a few ms for an
 * 8 GiB guest, taken at snapshots and at the end, never on a hot path.
 */
import type { Guest } from '../guest/guest.js';
import { MAX_ORDER, MIGRATETYPE_NAMES, Owner, PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER, PG, PageType, getPageblockMigratetype, pageFlags, pageOwner, pageTypeOf, buddyOrder } from '../guest/mm/memmap.js';

/** What a pageblock's pages mostly hold (bits 3-7 of a map byte). */
export const enum MapContent {
  /** Free, in blocks of order 10 (4 MiB). */
  free10 = 0,
  /** Free, in order-9 blocks (the pageblock is one free 2 MiB block). */
  free9 = 1,
  /** Free, in blocks of orders 4-8 (64 KiB to 1 MiB). */
  free4to8 = 2,
  /** Free, in blocks of orders 0-3, or on the per-cpu lists. */
  free0to3 = 3,
  /** Free and already reported to the host (PG_reported). */
  reported = 4,
  /** Held by the balloon driver as free page hints. */
  hinted = 5,
  /** In the balloon (PageOffline). */
  balloon = 6,
  /** Anonymous memory and tmpfs (the anon LRU). */
  anon = 7,
  /** Page cache. */
  file = 8,
  /** Slab, reclaimable or not. */
  slab = 9,
  /** Page tables. */
  pageTable = 10,
  /** Other kernel memory: kmalloc/vmalloc, stacks, virtio buffers, compaction and reporting in flight. */
  kernel = 11,
  /** Hugetlb pool pages. */
  hugetlb = 12,
  /** Reserved: never given to the buddy allocator (kernel image, mem_map, firmware). */
  reserved = 13,
}
export const NR_MAP_CONTENTS = 14;
export const MAP_CONTENT_NAMES: readonly string[] = [
  'free (order 10)', 'free (order 9)', 'free (orders 4-8)', 'free (orders 0-3, pcp)', 'free, reported', 'free page hint', 'balloon (offline)',
  'anon', 'file', 'slab', 'page table', 'kernel', 'hugetlb', 'reserved',
];
/** Map byte layout. */
export const MAP_MIGRATETYPE_MASK = 0x7;
export const MAP_CONTENT_SHIFT = 3;

/** Owner → content class (free pages are classed by their block's order instead). */
const OWNER_CONTENT: Uint8Array = (() => {
  const t = new Uint8Array(32).fill(MapContent.kernel);
  t[Owner.free] = MapContent.free0to3;
  t[Owner.pcp] = MapContent.free0to3;
  t[Owner.reserved] = MapContent.reserved;
  t[Owner.slabUnreclaimable] = MapContent.slab;
  t[Owner.slabReclaimable] = MapContent.slab;
  t[Owner.pageTable] = MapContent.pageTable;
  t[Owner.anon] = MapContent.anon;
  t[Owner.shmem] = MapContent.anon;
  t[Owner.file] = MapContent.file;
  t[Owner.balloon] = MapContent.balloon;
  t[Owner.freePageHint] = MapContent.hinted;
  t[Owner.hugetlb] = MapContent.hugetlb;
  return t;
})();

function freeContent(order: number, reported: boolean): MapContent {
  if (reported) return MapContent.reported;
  return order >= 10 ? MapContent.free10 : order === 9 ? MapContent.free9 : order >= 4 ? MapContent.free4to8 : MapContent.free0to3;
}

/** One byte per pageblock of the guest (layout above). */
export function memoryMapCodes(g: Guest): Uint8Array {
  const map = g.pgdat.map;
  const nBlocks = map.nrPages >>> PAGEBLOCK_ORDER;
  const counts = new Uint32Array(NR_MAP_CONTENTS);
  const out = new Uint8Array(nBlocks);
  let block = 0;
  let pfn = 0;
  const finish = () => {
    let best = 0;
    for (let c = 1; c < NR_MAP_CONTENTS; c++) if (counts[c]! > counts[best]!) best = c;
    out[block] = (getPageblockMigratetype(map, block << PAGEBLOCK_ORDER) & MAP_MIGRATETYPE_MASK) | (best << MAP_CONTENT_SHIFT);
    counts.fill(0);
    block++;
  };
  // pages still to credit to a free block that runs on past a pageblock's end (order 10)
  let carry = 0, carryContent = 0;
  while (block < nBlocks) {
    const blockEnd = (block + 1) * PAGEBLOCK_NR_PAGES;
    if (carry > 0) {
      const n = Math.min(carry, blockEnd - pfn);
      counts[carryContent] = counts[carryContent]! + n;
      carry -= n; pfn += n;
    }
    while (pfn < blockEnd) {
      if (pageTypeOf(map, pfn) === PageType.buddy) {
        const order = Math.min(buddyOrder(map, pfn), MAX_ORDER - 1);
        const c = freeContent(order, (pageFlags(map, pfn) & PG.reported) !== 0);
        const size = 1 << order;
        const n = Math.min(size, blockEnd - pfn);
        counts[c] = counts[c]! + n;
        pfn += n;
        if (n < size) { carry = size - n; carryContent = c; }
      } else {
        const c = pageTypeOf(map, pfn) === PageType.offline ? MapContent.balloon : OWNER_CONTENT[pageOwner(map, pfn)]!;
        counts[c] = counts[c]! + 1;
        pfn++;
      }
    }
    finish();
  }
  return out;
}

/** A memory map as the result document carries it. */
export type MemoryMapRecord = {
  t_ns: number;
  /** The snapshot's label, or "end" for the map at the end of the run. */
  label: string;
  /** Pageblocks (cells), each PAGEBLOCK_BYTES of guest RAM. */
  pageblocks: number;
  /** The bytes of memoryMapCodes, base64. */
  codes: string;
};

/** How to read the codes: the bit layout and the names of both fields. */
export const MEMORY_MAP_LEGEND = {
  pageblock_bytes: PAGEBLOCK_NR_PAGES * 4096,
  layout: 'bits 0-2 migratetype, bits 3-7 content',
  migratetypes: MIGRATETYPE_NAMES,
  contents: MAP_CONTENT_NAMES,
} as const;

export function memoryMapRecord(g: Guest, tNs: number, label: string): MemoryMapRecord {
  const codes = memoryMapCodes(g);
  return { t_ns: tNs, label, pageblocks: codes.length, codes: base64Encode(codes) };
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** RFC 4648 base64 (the core has neither Buffer nor btoa). */
export function base64Encode(b: Uint8Array): string {
  let s = '';
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const v = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
    s += B64[v >>> 18]! + B64[(v >>> 12) & 63]! + B64[(v >>> 6) & 63]! + B64[v & 63]!;
  }
  if (i < b.length) {
    const v = (b[i]! << 16) | ((b[i + 1] ?? 0) << 8);
    s += B64[v >>> 18]! + B64[(v >>> 12) & 63]! + (i + 1 < b.length ? B64[(v >>> 6) & 63]! : '=') + '=';
  }
  return s;
}

export function base64Decode(s: string): Uint8Array {
  const clean = s.replace(/=+$/, '');
  const out = new Uint8Array(Math.floor((clean.length * 3) / 4));
  let o = 0, acc = 0, bits = 0;
  for (let i = 0; i < clean.length; i++) {
    const v = B64.indexOf(clean[i]!);
    if (v < 0) throw new RangeError(`not base64 at ${i}`);
    acc = (acc << 6) | v; bits += 6;
    if (bits >= 8) { bits -= 8; out[o++] = (acc >>> bits) & 0xff; }
  }
  return out;
}

/** Decodes a record: per pageblock its migratetype and content class. */
export function memoryMapDecode(r: MemoryMapRecord): { migratetype: Uint8Array; content: Uint8Array } {
  const codes = base64Decode(r.codes);
  const migratetype = new Uint8Array(codes.length), content = new Uint8Array(codes.length);
  for (let i = 0; i < codes.length; i++) { migratetype[i] = codes[i]! & MAP_MIGRATETYPE_MASK; content[i] = codes[i]! >>> MAP_CONTENT_SHIFT; }
  return { migratetype, content };
}
