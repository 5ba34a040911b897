/** Transparent huge pages at fault time: defrag modes, fallback, compaction. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createGuest, defaultGuestConfig } from '../../src/guest/guest.js';
import { getProcess, faultAnonPages, exitProcess, vmaThpGfpMask, processRss } from '../../src/guest/mm/process.js';
import { compactMemory } from '../../src/guest/mm/compaction.js';
import { checkPgdat } from '../../src/guest/mm/check.js';
import { GFP_TRANSHUGE, GFP_TRANSHUGE_LIGHT, __GFP_NORETRY, __GFP_KSWAPD_RECLAIM, __GFP_DIRECT_RECLAIM } from '../../src/guest/mm/gfp.js';
import { VmEvent, NodeStat } from '../../src/guest/mm/vmstat_items.js';
import { simRunUntil } from '../../src/sim/clock.js';
import { fragmentWithProcess } from '../helpers/mini.js';


const MiB = 1024 * 1024;

test('vma_thp_gfp_mask for every defrag mode', () => {
  assert.equal(vmaThpGfpMask('always', false), GFP_TRANSHUGE | __GFP_NORETRY);
  assert.equal(vmaThpGfpMask('always', true), GFP_TRANSHUGE);
  assert.equal(vmaThpGfpMask('defer', true), GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM);
  assert.equal(vmaThpGfpMask('defer+madvise', false), GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM);
  assert.equal(vmaThpGfpMask('defer+madvise', true), GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM);
  assert.equal(vmaThpGfpMask('madvise', false), GFP_TRANSHUGE_LIGHT);
  assert.equal(vmaThpGfpMask('madvise', true), GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM);
  assert.equal(vmaThpGfpMask('never', true), GFP_TRANSHUGE_LIGHT);
});

test('THP faults succeed on a fresh guest, fall back under fragmentation, and succeed again after compaction', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 1024 * MiB }));
  const pg = g.pgdat;
  const fresh = getProcess(g.procs, 1);
  faultAnonPages(pg, fresh, (64 * MiB) / 4096);
  // the heap starts where brk randomization put it: only the 2 MiB ranges wholly inside it can be THPs
  const heap = fresh.heap!;
  const aligned = Math.floor(heap.end / 512) - Math.ceil(heap.start / 512);
  assert.ok(heap.start % 512 !== 0 && aligned === 31, `an unaligned 64 MiB heap holds 31 aligned ranges (${aligned})`);
  assert.equal(pg.events[VmEvent.thp_fault_alloc], aligned, 'a fresh guest backs each of them with a huge page');
  assert.equal(pg.nodeStat[NodeStat.nr_anon_transparent_hugepages], aligned * 512);
  assert.equal(fresh.rssAnon, (64 * MiB) / 4096, 'the rest in 4 KiB pages');
  exitProcess(pg, g.procs, fresh);
  // fragment: small pages over most of memory, every other one unmapped
  fragmentWithProcess(pg, 2, 1);
  const a0 = pg.events[VmEvent.thp_fault_alloc]!, f0 = pg.events[VmEvent.thp_fault_fallback]!;
  // 256 MiB: more than the large free blocks the watermark headroom keeps (~70 MiB here)
  const late = getProcess(g.procs, 3);
  faultAnonPages(pg, late, (256 * MiB) / 4096); // defrag=madvise, not madvised: no direct compaction
  const fallbacks = pg.events[VmEvent.thp_fault_fallback]! - f0;
  assert.ok(fallbacks >= 64, `most huge page faults fell back (${fallbacks} of 128)`);
  assert.equal(pg.events[VmEvent.compact_stall], 0, 'without madvise, defrag=madvise never compacts directly');
  assert.equal(late.rssAnon, (256 * MiB) / 4096, 'the fallback still maps all the memory');
  exitProcess(pg, g.procs, late);
  compactMemory(pg);
  const a1 = pg.events[VmEvent.thp_fault_alloc]!;
  const after = getProcess(g.procs, 4);
  faultAnonPages(pg, after, (256 * MiB) / 4096);
  const ok = pg.events[VmEvent.thp_fault_alloc]! - a1;
  assert.ok(ok >= 120, `after compact_memory the huge page faults succeed (${ok} of 128)`);
  assert.ok(a1 >= a0);
  assert.equal(processRss(pg.tasks.procs.get(4)!), after.rssAnon);
  assert.equal(checkPgdat(pg), null);
});

test('a madvised process with defrag=madvise compacts directly instead of falling back', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 1024 * MiB }));
  const pg = g.pgdat;
  fragmentWithProcess(pg, 2, 2);
  pg.sysctl.thp.enabled = 'madvise';
  const plain = getProcess(g.procs, 3);
  faultAnonPages(pg, plain, 8192);
  assert.equal(pg.events[VmEvent.thp_fault_alloc]! + pg.events[VmEvent.thp_fault_fallback]!, 0, 'enabled=madvise: no THP for plain memory');
  const mad = getProcess(g.procs, 4);
  mad.madvised = true;
  faultAnonPages(pg, mad, (256 * MiB) / 4096);
  assert.ok(pg.events[VmEvent.compact_stall]! > 0, 'the madvised fault stalled in direct compaction');
  assert.ok(pg.events[VmEvent.thp_fault_alloc]! > 0);
  assert.equal(checkPgdat(pg), null);
});

test('khugepaged collapses a process\'s small pages into huge pages once memory allows', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 1024 * MiB }));
  const pg = g.pgdat;
  pg.sysctl.thp.enabled = 'never';
  const p = getProcess(g.procs, 6);
  faultAnonPages(pg, p, 8192); // 32 MiB of small pages
  pg.sysctl.thp.enabled = 'always';
  const rss = p.rssAnon;
  simRunUntil(g.sim, 10.5e9); // one khugepaged pass (10 s, 4096 pages)
  assert.equal(pg.events[VmEvent.thp_collapse_alloc], 8, 'pages_to_scan 4096 = 8 huge pages per pass');
  simRunUntil(g.sim, 20.5e9);
  assert.equal(pg.events[VmEvent.thp_collapse_alloc], 16);
  assert.equal(p.rssAnon, rss, 'collapse keeps the process\'s memory');
  assert.equal(processRss(pg.tasks.procs.get(6)!), rss);
  assert.equal(pg.nodeStat[NodeStat.nr_anon_transparent_hugepages], 16 * 512);
  assert.equal(checkPgdat(pg), null);
});
