/**
 * /proc/kpageflags and the page-types summary built on the same per-page word.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Guest, createGuest, defaultGuestConfig } from '../../src/guest/guest.js';
import { MAX_ORDER, NO_PAGE, Owner, PageType, PG, pageFlags, pageOwner, pageTypeOf, setPageFlags, setPageType } from '../../src/guest/mm/memmap.js';
import { physPfn, memmapPfn } from '../../src/guest/mm/layout.js';
import { allocPages } from '../../src/guest/mm/page_alloc.js';
import { GFP_KERNEL, GFP_HIGHUSER_MOVABLE, __GFP_COMP } from '../../src/guest/mm/gfp.js';
import {
  kpageflags, pageKpf, physPageKpf, KPF_BYTES, KPF_LOCKED, KPF_REFERENCED, KPF_UPTODATE, KPF_DIRTY, KPF_LRU, KPF_ACTIVE,
  KPF_SLAB, KPF_WRITEBACK, KPF_RECLAIM, KPF_BUDDY, KPF_MMAP, KPF_ANON, KPF_SWAPCACHE, KPF_SWAPBACKED,
  KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL, KPF_HUGE, KPF_UNEVICTABLE, KPF_HWPOISON, KPF_NOPAGE, KPF_KSM, KPF_THP,
  KPF_OFFLINE, KPF_ZERO_PAGE, KPF_IDLE, KPF_PGTABLE, KPF_RESERVED, KPF_MLOCKED, KPF_MAPPEDTODISK, KPF_PRIVATE,
} from '../../src/report/kpageflags.js';
import { pageTypes, pageTypesSummary, pageFlagName, pageFlagLongname } from '../../src/report/proc.js';
import { kmemCacheByName, kmemCacheAlloc } from '../../src/guest/mm/slab.js';

const bit = (b: number): bigint => 1n << BigInt(b);

/** The u64 entries of a kpageflags image. */
function entries(buf: Uint8Array): BigUint64Array {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out = new BigUint64Array(buf.byteLength / 8);
  for (let i = 0; i < out.length; i++) out[i] = dv.getBigUint64(i * 8, true);
  return out;
}

let booted: Guest | undefined;
function guest(): Guest {
  booted ??= createGuest(defaultGuestConfig());
  return booted;
}

test('KPF_* constants carry the kernel\'s uapi bit numbers', () => {
  assert.deepEqual(
    [KPF_LOCKED, KPF_REFERENCED, KPF_UPTODATE, KPF_DIRTY, KPF_LRU, KPF_ACTIVE, KPF_SLAB, KPF_WRITEBACK, KPF_RECLAIM,
      KPF_BUDDY, KPF_MMAP, KPF_ANON, KPF_SWAPCACHE, KPF_SWAPBACKED, KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL, KPF_HUGE,
      KPF_UNEVICTABLE, KPF_HWPOISON, KPF_NOPAGE, KPF_KSM, KPF_THP, KPF_OFFLINE, KPF_ZERO_PAGE, KPF_IDLE, KPF_PGTABLE],
    [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26]);
  assert.deepEqual([KPF_RESERVED, KPF_MLOCKED, KPF_MAPPEDTODISK, KPF_PRIVATE], [32, 33, 34, 35]);
  assert.equal(KPF_BYTES, 8);
});

test('kpageflags: 8 bytes per physical pfn', () => {
  const g = guest();
  assert.equal(kpageflags(g).byteLength, 8 * g.layout.maxPhysPfn);
});

test('kpageflags: every page of every free block reads KPF_BUDDY (is_free_buddy_page), and nothing else does', () => {
  const g = guest();
  const e = entries(kpageflags(g));
  let buddyPages = 0, heads = 0, freeBlocks = 0, freeInBlocks = 0;
  for (let i = 0; i < e.length; i++) if (e[i]! & bit(KPF_BUDDY)) buddyPages++;
  for (let p = 0; p < g.pgdat.map.nrPages; p++) if (pageTypeOf(g.pgdat.map, p) === PageType.buddy) heads++;
  for (const z of g.pgdat.zones) {
    for (let o = 0; o < MAX_ORDER; o++) {
      freeBlocks += z.nrFree[o]!;
      freeInBlocks += z.nrFree[o]! * 2 ** o;
    }
  }
  assert.equal(heads, freeBlocks);
  assert.equal(buddyPages, freeInBlocks);
  // pages on the per-cpu lists are allocated as far as the buddy is concerned: they read 0
  let pcp = -1;
  for (let p = 0; p < g.pgdat.map.nrPages && pcp < 0; p++) if (pageOwner(g.pgdat.map, p) === Owner.pcp) pcp = p;
  assert.ok(pcp >= 0, 'the booted guest has pages on pcp lists');
  assert.equal(e[physPfn(g.layout, pcp)], 0n);
});

test('kpageflags: the PCI hole of a 4 GiB guest reads KPF_NOPAGE, RAM does not', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 4 * 1024 ** 3 }));
  const lay = g.layout;
  assert.equal(lay.maxPhysPfn, 0x140000);
  const e = entries(kpageflags(g));
  assert.equal(e.length, lay.maxPhysPfn);
  let nopage = 0;
  for (let phys = 0; phys < e.length; phys++) {
    const hole = phys >= lay.lowmemPages && phys < 0x100000;
    if (hole) assert.equal(e[phys], bit(KPF_NOPAGE));
    if (e[phys]! & bit(KPF_NOPAGE)) nopage++;
  }
  assert.equal(nopage, 0x100000 - lay.lowmemPages);
  assert.equal(memmapPfn(lay, 0x100000), lay.lowmemPages);
  assert.equal(physPageKpf(g, 0xc0000), bit(KPF_NOPAGE));
  // the first page above 4 GiB is RAM of zone Normal, mapped from memmap pfn lowmemPages
  assert.equal(e[0x100000], pageKpf(g, lay.lowmemPages));
});

test('pageKpf agrees with the kpageflags image page by page', () => {
  const g = guest();
  const e = entries(kpageflags(g));
  for (let pfn = 0; pfn < g.pgdat.map.nrPages; pfn += 61) assert.equal(pageKpf(g, pfn), e[physPfn(g.layout, pfn)], `pfn ${pfn}`);
});

test('memblock-reserved pages read KPF_RESERVED (bit 32)', () => {
  const g = guest();
  assert.equal(pageKpf(g, 0), bit(KPF_RESERVED));
  assert.ok(pageFlags(g.pgdat.map, 0) & PG.reserved);
});

/** A booted guest with one of each interesting kind of page added. */
function guestWithPages(): { g: Guest; thp: number; slab: number; large: number; balloon: number; table: number } {
  const g = createGuest(defaultGuestConfig());
  const pgdat = g.pgdat;
  const thp = allocPages(pgdat, GFP_HIGHUSER_MOVABLE | __GFP_COMP, 9, Owner.anon);
  // a fresh order-2 slab: the cache's active slab fills, then a new one is taken
  const cache = kmemCacheByName(pgdat, 'ext4_inode_cache');
  kmemCacheAlloc(pgdat, cache, cache.objects + 1);
  const slab = cache.slabPfn[cache.cpuSlab[0]!]!;
  // a kmalloc_large allocation: counted as slab, but not PageSlab
  const large = allocPages(pgdat, GFP_KERNEL | __GFP_COMP, 2, Owner.slabUnreclaimable);
  const balloon = allocPages(pgdat, GFP_HIGHUSER_MOVABLE, 0, Owner.balloon);
  const table = allocPages(pgdat, GFP_KERNEL, 0, Owner.pageTable);
  assert.ok(thp !== NO_PAGE && slab !== NO_PAGE && large !== NO_PAGE && balloon !== NO_PAGE && table !== NO_PAGE);
  setPageType(pgdat.map, balloon, PageType.offline); // what balloon_page_insert does
  setPageType(pgdat.map, table, PageType.table);
  return { g, thp, slab, large, balloon, table };
}

test('stable_page_flags: THP, slab, offline and page-table pages', () => {
  const { g, thp, slab, large, balloon, table } = guestWithPages();
  const anon = bit(KPF_ANON) | bit(KPF_MMAP) | bit(KPF_THP);
  assert.equal(pageKpf(g, thp), anon | bit(KPF_COMPOUND_HEAD) | bit(KPF_SWAPBACKED));
  assert.equal(pageKpf(g, thp + 1), anon | bit(KPF_COMPOUND_TAIL));
  assert.equal(pageKpf(g, thp + 511), anon | bit(KPF_COMPOUND_TAIL));
  assert.equal(pageKpf(g, slab), bit(KPF_SLAB) | bit(KPF_COMPOUND_HEAD));
  assert.equal(pageKpf(g, slab + 3), bit(KPF_SLAB) | bit(KPF_COMPOUND_TAIL));
  assert.equal(pageKpf(g, large), bit(KPF_COMPOUND_HEAD), 'kmalloc_large pages are not PageSlab');
  assert.equal(pageKpf(g, large + 3), bit(KPF_COMPOUND_TAIL));
  assert.equal(pageKpf(g, balloon), bit(KPF_OFFLINE));
  assert.equal(pageKpf(g, table), bit(KPF_PGTABLE));
  // the image agrees, tails included (the walk tracks compound heads)
  const e = entries(kpageflags(g));
  for (let p = thp; p < thp + 512; p++) assert.equal(e[physPfn(g.layout, p)], pageKpf(g, p));
});

test('stable_page_flags: PG_reported reads as uptodate, PG_isolated as reclaim (kernel aliases)', () => {
  const g = createGuest(defaultGuestConfig());
  const map = g.pgdat.map;
  let head = -1;
  for (let p = 0; p < map.nrPages && head < 0; p++) if (pageTypeOf(map, p) === PageType.buddy) head = p;
  setPageFlags(map, head, pageFlags(map, head) | PG.reported);
  assert.equal(pageKpf(g, head), bit(KPF_BUDDY) | bit(KPF_UPTODATE));
  const p = allocPages(g.pgdat, GFP_HIGHUSER_MOVABLE, 0, Owner.balloon);
  setPageType(map, p, PageType.offline);
  setPageFlags(map, p, pageFlags(map, p) | PG.isolated);
  assert.equal(pageKpf(g, p), bit(KPF_OFFLINE) | bit(KPF_RECLAIM));
});

test('page-types: the tool\'s header, row format, slot order and total', () => {
  const g = guest();
  const text = pageTypes(g);
  const ls = text.replace(/\n$/, '').split('\n');
  assert.equal(ls[0], '             flags\tpage-count       MB  symbolic-flags\t\t\tlong-symbolic-flags');
  const rows = ls.slice(1, -1);
  for (const r of rows) assert.match(r, /^0x[0-9a-f]{16}\t[ \d]{10} [ \d]{8}  [A-Za-z1_]{45}\t[a-z_,0-9]*$/);
  // flags 0 lives in slot 0 and prints first
  assert.ok(rows[0]!.startsWith('0x0000000000000000\t'));
  assert.match(ls.at(-1)!, /^ {13}total\t[ \d]{10} [ \d]{8}$/);
  const total = Number(ls.at(-1)!.split('\t')[1]!.trim().split(/ +/)[0]);
  assert.equal(total, g.layout.maxPhysPfn);
  assert.equal(rows.reduce((a, r) => a + Number(r.split('\t')[1]!.trim().split(/ +/)[0]), 0), total);
  // the free pages form the buddy row (no other flags on them at boot)
  const buddyRow = rows.find((r) => r.startsWith('0x0000000000000400\t'))!;
  assert.match(buddyRow, /\t *\d+ +\d+  __________B_{34}\tbuddy$/);
  let free = 0;
  for (const z of g.pgdat.zones) for (let o = 0; o < MAX_ORDER; o++) free += z.nrFree[o]! * 2 ** o;
  assert.equal(Number(buddyRow.split('\t')[1]!.trim().split(/ +/)[0]), free);
  assert.equal(Number(buddyRow.split('\t')[1]!.trim().split(/ +/)[1]), Math.floor(free / 256));
});

test('page-types: hacker bits and non-hugetlb compound bits hidden; offline shows as o:offline', () => {
  const { g } = guestWithPages();
  const { rows } = pageTypesSummary(g);
  for (const r of rows) {
    assert.equal(r.hi, 0, 'KPF_RESERVED and the other kernel-hacker bits are hidden');
    assert.equal(r.lo & ((1 << KPF_COMPOUND_HEAD) | (1 << KPF_COMPOUND_TAIL)), 0);
  }
  const text = pageTypes(g);
  assert.match(text, /\n0x0000000000800000\t {9}1 {8}0  _{23}o_{21}\toffline\n/);
  // THP head and tails: the compound bits are hidden, so head (swapbacked) and tails differ only there
  assert.match(text, /\n0x0000000000405800\t {9}1 +0  ___________Ma_b_______t_{22}\tmmap,anonymous,swapbacked,thp\n/);
  assert.match(text, /\n0x0000000000401800\t {7}511 {8}1  ___________Ma_________t_{22}\tmmap,anonymous,thp\n/);
  assert.match(text, /\n0x0000000004000000\t.*\tpgtable\n/);
});

test('page-types: rows appear in the tool\'s hash-slot order', () => {
  const { g } = guestWithPages();
  const { rows } = pageTypesSummary(g);
  // hash_slot(): flags 0 in slot 0; others start at flags & 8191 (0 is bumped to 1) and
  // probe upwards. No flag value here has low 13 bits 1..3, so the values whose low bits
  // are 0 (pgtable, offline; boot's tmpfs pages are on the LRU, so not among them) fill
  // slots 1.. right after flags 0, and the
  // rest follow in increasing key order (equal keys, e.g. the THP values
  // 0x405800/0x401800, probe into the next slots and stay together).
  const key = (lo: number) => lo & 8191;
  assert.equal(rows[0]!.lo, 0);
  const zeroKey = rows.filter((r) => r.lo !== 0 && key(r.lo) === 0);
  assert.ok(zeroKey.length >= 2);
  assert.deepEqual(rows.slice(1, 1 + zeroKey.length), zeroKey);
  const rest = rows.slice(1 + zeroKey.length).map((r) => key(r.lo));
  assert.deepEqual(rest, [...rest].sort((a, b) => a - b));
  assert.deepEqual(rows.filter((r) => key(r.lo) === 0x1800).map((r) => r.lo).sort(), [0x401800, 0x405800].sort());
});

test('page_flag_name / page_flag_longname use the 6.1 tool\'s letter table', () => {
  assert.equal(pageFlagName(0, 0), '_'.repeat(45));
  assert.equal(pageFlagName(1 << KPF_BUDDY, 0), '__________B' + '_'.repeat(34));
  assert.equal(pageFlagName(0, 1), '_'.repeat(27) + 'r' + '_'.repeat(17));
  assert.equal(pageFlagLongname((1 << KPF_ANON) | (1 << KPF_MMAP), 1), 'mmap,anonymous,reserved');
  assert.equal(pageFlagLongname(1 << KPF_NOPAGE, 0), 'nopage');
});

test('kpageflags and page-types of an 8 GiB guest take well under a second each', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 8 * 1024 ** 3 }));
  let t = performance.now();
  const img = kpageflags(g);
  const tk = performance.now() - t;
  t = performance.now();
  const { total } = pageTypesSummary(g);
  const tp = performance.now() - t;
  assert.equal(img.byteLength, 8 * g.layout.maxPhysPfn);
  assert.equal(total, g.layout.maxPhysPfn);
  assert.ok(tk < 1000 && tp < 1000, `kpageflags ${tk.toFixed(0)} ms, page-types ${tp.toFixed(0)} ms`);
});
