/**
 * The hugetlb pool (vm.nr_hugepages, mm/hugetlb.c set_max_huge_pages): grown from the
 * buddy allocator one huge page at a time until the first failure, shrunk back to it,
 * and shown as the kernel shows it: /proc/meminfo's HugePages_* lines, Hugetlb: and
 * CommitLimit, MemFree, /proc/vmstat's htlb_buddy_alloc_* counters, KPF_HUGE in
 * /proc/kpageflags; the invariant checker accounts for every pool page.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createGuest, defaultGuestConfig } from '../../src/guest/guest.js';
import { setMaxHugePages, hugetlbSysctlHandler, htlbAllocMask } from '../../src/guest/mm/hugetlb.js';
import { checkPgdat } from '../../src/guest/mm/check.js';
import { MigrateType, Owner, PG, getPageblockMigratetype, pageFlags, pageOrder, pageOwner } from '../../src/guest/mm/memmap.js';
import { GFP_HIGHUSER_MOVABLE } from '../../src/guest/mm/gfp.js';
import { VmEvent, ZoneStat } from '../../src/guest/mm/vmstat_items.js';
import { globalZonePageState } from '../../src/guest/mm/vmstat.js';
import { zonePcpCount } from '../../src/guest/mm/page_alloc.js';
import { procMeminfo, procVmstat } from '../../src/report/proc.js';
import { pageKpf, KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL, KPF_HUGE, KPF_THP } from '../../src/report/kpageflags.js';
import { parseMeminfo } from '../../src/report/proc_parse.js';

const MiB = 1024 * 1024;

/** Free memory as the allocator holds it: the buddy's free pages and the per-cpu lists'. */
function freeWithPcp(g: ReturnType<typeof createGuest>): number {
  return globalZonePageState(g.pgdat, ZoneStat.nr_free_pages) + g.pgdat.zones.reduce((n, z) => n + zonePcpCount(z), 0);
}

test('growing the pool takes huge pages from the buddy allocator, movable, counted as htlb_buddy_alloc_success', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 512 * MiB }));
  const pg = g.pgdat, h = pg.hugetlb;
  assert.equal(htlbAllocMask(), GFP_HIGHUSER_MOVABLE, 'hugepage_movable_supported for 2 MiB pages on x86-64');
  const free0 = freeWithPcp(g);
  setMaxHugePages(pg, 100);
  assert.deepEqual([h.nrHugePages, h.freeHugePages, h.maxHugePages, h.resvHugePages, h.surplusHugePages], [100, 100, 100, 0, 0]);
  assert.equal(pg.events[VmEvent.htlb_buddy_alloc_success], 100);
  assert.equal(pg.events[VmEvent.htlb_buddy_alloc_fail], 0);
  assert.equal(pg.ownerPages[Owner.hugetlb], 100 * 512);
  assert.equal(free0 - freeWithPcp(g), 100 * 512, 'the pool\'s pages are no longer free');
  for (const head of h.freelist) {
    assert.equal(pageOwner(pg.map, head), Owner.hugetlb);
    assert.ok(pageFlags(pg.map, head) & PG.head);
    assert.equal(pageOrder(pg.map, head), 9);
    assert.ok(pageFlags(pg.map, head + 511) & PG.tail);
    assert.equal(getPageblockMigratetype(pg.map, head), MigrateType.movable, 'GFP_HIGHUSER_MOVABLE: from movable pageblocks');
  }
  assert.equal(checkPgdat(pg), null);
  assert.match(procVmstat(g), /\nhtlb_buddy_alloc_success 100\nhtlb_buddy_alloc_fail 0\n/);
});

test('growing stops at the first failed allocation (no OOM kill); the pool is what it got, and reads back so', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 256 * MiB }));
  const pg = g.pgdat, h = pg.hugetlb;
  hugetlbSysctlHandler(pg, 100000);
  assert.equal(pg.events[VmEvent.htlb_buddy_alloc_fail], 1, 'one failure ends the loop');
  assert.equal(pg.events[VmEvent.htlb_buddy_alloc_success], h.nrHugePages);
  assert.ok(h.nrHugePages > 60 && h.nrHugePages < 128, `most of 256 MiB became huge pages (${h.nrHugePages})`);
  assert.equal(h.maxHugePages, h.nrHugePages, 'nr_hugepages reads the pool, not the request');
  assert.equal(pg.events[VmEvent.oom_kill], 0, '__GFP_RETRY_MAYFAIL never calls the OOM killer');
  assert.equal(checkPgdat(pg), null);
  // asking again for the same: the pool stays, one more failure
  const n = h.nrHugePages;
  hugetlbSysctlHandler(pg, 100000);
  assert.equal(h.nrHugePages, n);
  assert.equal(pg.events[VmEvent.htlb_buddy_alloc_fail], 2);
  assert.throws(() => hugetlbSysctlHandler(pg, -1), RangeError);
});

test('shrinking returns the most recently pooled pages to the buddy allocator first', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 512 * MiB }));
  const pg = g.pgdat, h = pg.hugetlb;
  setMaxHugePages(pg, 10);
  const order = [...h.freelist];
  const free0 = freeWithPcp(g);
  setMaxHugePages(pg, 7);
  assert.deepEqual([h.nrHugePages, h.freeHugePages, h.maxHugePages], [7, 7, 7]);
  assert.deepEqual(h.freelist, order.slice(0, 7), 'the three at the head of the free list went');
  for (const head of order.slice(7)) assert.notEqual(pageOwner(pg.map, head), Owner.hugetlb);
  assert.equal(freeWithPcp(g) - free0, 3 * 512);
  assert.equal(pg.events[VmEvent.htlb_buddy_alloc_success], 10, 'shrinking allocates nothing');
  setMaxHugePages(pg, 0);
  assert.equal(pg.ownerPages[Owner.hugetlb], 0);
  assert.equal(checkPgdat(pg), null);
});

test('/proc/meminfo shows the pool as the kernel does: HugePages_*, Hugetlb:, MemFree and MemAvailable down, CommitLimit without it', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 1024 * MiB }));
  const before = parseMeminfo(procMeminfo(g));
  setMaxHugePages(g.pgdat, 200);
  const text = procMeminfo(g);
  const after = parseMeminfo(text);
  assert.match(text, /\nHugePages_Total:     200\nHugePages_Free:      200\nHugePages_Rsvd:        0\nHugePages_Surp:        0\nHugepagesize:       2048 kB\nHugetlb:          409600 kB\n/);
  assert.equal(after.MemTotal, before.MemTotal, 'the pool is still managed memory');
  assert.ok(before.MemFree! - after.MemFree! >= 409600 - 4096, `MemFree fell by the pool (${before.MemFree! - after.MemFree!} kB)`);
  assert.ok(before.MemAvailable! - after.MemAvailable! >= 409600 - 4096, 'MemAvailable too');
  assert.equal(after.CommitLimit, Math.floor((before.MemTotal! / 4 - 200 * 512) / 2) * 4, 'vm_commit_limit leaves hugetlb pages out');
});

test('/proc/kpageflags marks every page of a pool page HUGE with its compound bits, not THP', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 256 * MiB }));
  setMaxHugePages(g.pgdat, 1);
  const head = g.pgdat.hugetlb.freelist[0]!;
  const bit = (n: number) => 1n << BigInt(n);
  const kh = pageKpf(g, head), kt = pageKpf(g, head + 300);
  assert.equal(kh, bit(KPF_COMPOUND_HEAD) | bit(KPF_HUGE));
  assert.equal(kt, bit(KPF_COMPOUND_TAIL) | bit(KPF_HUGE));
  assert.equal(kh & bit(KPF_THP), 0n);
});

test('the checker accounts for the pool', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 256 * MiB }));
  setMaxHugePages(g.pgdat, 4);
  g.pgdat.hugetlb.nrHugePages++;
  assert.match(checkPgdat(g.pgdat) ?? '', /hugetlb: nr_huge_pages 5 x 512 pages, the page map has 2048 hugetlb pages/);
  g.pgdat.hugetlb.nrHugePages--;
  g.pgdat.hugetlb.freelist.push(g.pgdat.hugetlb.freelist[0]!);
  assert.match(checkPgdat(g.pgdat) ?? '', /hugetlb: free_huge_pages 4, free list 5/);
});
