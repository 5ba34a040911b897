/** Reclaim, swap, the OOM killer and the slow path's retry policy. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createGuest, defaultGuestConfig } from '../../src/guest/guest.js';
import { simRunUntil } from '../../src/sim/clock.js';
import { allocPages } from '../../src/guest/mm/page_alloc.js';
import { GFP_KERNEL, GFP_HIGHUSER_MOVABLE, GFP_TRANSHUGE_LIGHT, __GFP_NORETRY, __GFP_RETRY_MAYFAIL, __GFP_NOWARN, __GFP_DMA32, __GFP_MOVABLE, gfpZoneIdx } from '../../src/guest/mm/gfp.js';
import { tryToFreePages } from '../../src/guest/mm/vmscan.js';
import { NO_PAGE, Owner } from '../../src/guest/mm/memmap.js';
import { getProcess, faultAnonPages, readFilePages } from '../../src/guest/mm/process.js';
import { checkPgdat } from '../../src/guest/mm/check.js';
import { DEFAULT_BOOT } from '../../src/guest/mm/boot.js';
import { createVm } from '../../src/machine/machine.js';
import { VmEvent, NodeStat } from '../../src/guest/mm/vmstat_items.js';

const MiB = 1024 * 1024;

function ev(g: ReturnType<typeof createGuest>, e: VmEvent): number {
  return g.pgdat.events[e]!;
}

test('memory pressure: kswapd, then direct reclaim and swap-out, then the OOM killer once swap is full', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 256 * MiB, swapBytes: 64 * MiB }));
  g.pgdat.sysctl.thp.enabled = 'never'; // huge pages are not reclaimed by the model
  const a = getProcess(g.procs, 10);
  const b = getProcess(g.procs, 11);
  // a fills most of memory in chunks; kswapd gets to run between chunks
  for (let i = 0; i < 12; i++) {
    faultAnonPages(g.pgdat, a, 4096);
    simRunUntil(g.sim, g.sim.now);
    assert.equal(checkPgdat(g.pgdat), null);
  }
  assert.ok(ev(g, VmEvent.pageoutrun) > 0, 'kswapd was woken');
  assert.ok(ev(g, VmEvent.pgscan_kswapd) > 0 && ev(g, VmEvent.pgsteal_kswapd) > 0);
  // b keeps faulting without giving kswapd a chance: direct reclaim, swap, OOM
  for (let i = 0; i < 8; i++) faultAnonPages(g.pgdat, b, 4096);
  assert.ok(ev(g, VmEvent.allocstall_movable) > 0, 'direct reclaim stalled the anonymous faults (allocstall_movable: gfp_zone of GFP_HIGHUSER_MOVABLE)');
  assert.ok(ev(g, VmEvent.pgscan_direct) > 0);
  assert.ok(ev(g, VmEvent.pswpout) > 0, 'anonymous pages went to swap');
  assert.equal(g.pgdat.swap.usedPages <= g.pgdat.swap.totalPages, true);
  assert.ok(ev(g, VmEvent.oom_kill) >= 1, 'the OOM killer ran when swap was full');
  assert.ok(!g.procs.has(10) || !g.procs.has(11), 'a process was killed');
  assert.ok(g.pgdat.tasks.stallNs > 0, 'direct reclaim cost virtual time');
  assert.equal(checkPgdat(g.pgdat), null);
});

test('page cache: clean pages are dropped, dirty ones written back first', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 256 * MiB }));
  g.pgdat.sysctl.thp.enabled = 'never';
  // no dirty throttling here (page_writeback.test.ts has it): the dirty pages stay for reclaim
  g.pgdat.sysctl.dirtyRatio = 100;
  g.pgdat.sysctl.dirtyBackgroundRatio = 100;
  const p = getProcess(g.procs, 3);
  readFilePages(g.pgdat, p, 20000, false);
  readFilePages(g.pgdat, p, 20000, true);
  const anon = getProcess(g.procs, 4);
  faultAnonPages(g.pgdat, anon, 30000);
  assert.ok(ev(g, VmEvent.pgsteal_file) > 0, 'page cache was reclaimed');
  assert.equal(ev(g, VmEvent.pswpout), 0, 'no swap device: anonymous memory stays');
  assert.equal(anon.rssAnon, 30000, 'the anonymous faults all succeeded by reclaiming page cache');
  assert.ok(g.pgdat.nodeStat[NodeStat.nr_vmscan_write]! > 0, 'dirty pages were written back by reclaim');
  assert.equal(checkPgdat(g.pgdat), null);
});

test('retry policy: __GFP_NORETRY and costly orders fail without OOM; GFP_KERNEL order 0 invokes it', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 128 * MiB }));
  g.pgdat.sysctl.thp.enabled = 'never';
  const victim = getProcess(g.procs, 7);
  assert.equal(faultAnonPages(g.pgdat, victim, 2000), 2000);
  // fill the rest with unmovable kernel memory; __GFP_NORETRY never OOM-kills
  let n = 0;
  while (allocPages(g.pgdat, GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN, 0, Owner.kernel) !== NO_PAGE) n++;
  assert.ok(n > 10000);
  assert.equal(ev(g, VmEvent.oom_kill), 0);
  assert.equal(allocPages(g.pgdat, GFP_TRANSHUGE_LIGHT | __GFP_NORETRY, 9, Owner.anon), NO_PAGE);
  assert.equal(allocPages(g.pgdat, GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN, 10, Owner.kernel), NO_PAGE);
  assert.equal(allocPages(g.pgdat, GFP_HIGHUSER_MOVABLE | __GFP_RETRY_MAYFAIL, 9, Owner.anon), NO_PAGE);
  assert.equal(allocPages(g.pgdat, GFP_KERNEL, 4, Owner.kernel), NO_PAGE, 'costly orders do not OOM-kill');
  assert.equal(ev(g, VmEvent.oom_kill), 0, 'none of those may invoke the OOM killer');
  assert.equal(ev(g, VmEvent.compact_stall), 0, 'compaction_suitable skips compaction with too little free memory to migrate into');
  const pfn = allocPages(g.pgdat, GFP_KERNEL, 0, Owner.kernel);
  assert.notEqual(pfn, NO_PAGE, 'order-0 GFP_KERNEL gets its page');
  assert.equal(ev(g, VmEvent.oom_kill), 1, '... by killing the process');
  assert.ok(!g.procs.has(7));
  assert.equal(checkPgdat(g.pgdat), null);
});

test('regression (fast-check seed 7): a process the OOM killer takes in the middle of its own fault leaves no page behind', () => {
  // The counterexample of the balloon property test: a 256 MiB machine with the balloon
  // (compaction off, no deflate-on-oom, thp never, seed 1); pid 101 faults 32054 then 15105 pages.
  const vm = createVm({
    guest: defaultGuestConfig({ memoryBytes: 256 * 2 ** 20, seed: 1, boot: { ...DEFAULT_BOOT, thp: 'never' } }),
    balloon: { device: { deflateOnOom: false }, driver: { balloonCompaction: false } }, memPrealloc: false,
  });
  const pg = vm.guest.pgdat;
  const p = getProcess(pg.tasks.procs, 101);
  faultAnonPages(pg, p, 32054);
  faultAnonPages(pg, p, 15105);
  assert.equal(pg.tasks.procs.has(101), false, 'the faulting process was the OOM victim');
  assert.equal(checkPgdat(pg), null, 'no anonymous page of the dead process is left mapped');
});

test('direct reclaim counts its stall by the allocation\'s gfp_zone (sc->reclaim_idx): an anonymous fault is allocstall_movable, GFP_KERNEL allocstall_normal, __GFP_DMA32 allocstall_dma32 — in a 1 GiB guest that has neither a Normal nor a Movable zone', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 1024 * MiB }));
  assert.equal(gfpZoneIdx(GFP_HIGHUSER_MOVABLE), 3);
  assert.equal(gfpZoneIdx(GFP_KERNEL), 2);
  assert.equal(gfpZoneIdx(GFP_KERNEL | __GFP_DMA32), 1);
  assert.equal(gfpZoneIdx(GFP_KERNEL | __GFP_MOVABLE), 2, 'movable without highmem is ZONE_NORMAL (GFP_ZONE_TABLE 0x8)');
  const before = [VmEvent.allocstall_dma32, VmEvent.allocstall_normal, VmEvent.allocstall_movable].map((e) => ev(g, e));
  tryToFreePages(g.pgdat, GFP_HIGHUSER_MOVABLE);
  tryToFreePages(g.pgdat, GFP_KERNEL);
  tryToFreePages(g.pgdat, GFP_KERNEL);
  tryToFreePages(g.pgdat, GFP_KERNEL | __GFP_DMA32);
  const after = [VmEvent.allocstall_dma32, VmEvent.allocstall_normal, VmEvent.allocstall_movable].map((e) => ev(g, e));
  assert.deepEqual(after.map((x, i) => x - before[i]!), [1, 2, 1]);
  assert.equal(checkPgdat(g.pgdat), null);
});
