/** Compaction, migration and the movable-operations interface. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { miniNode, giveBlock, freeBlocks } from '../helpers/mini.js';
import { createGuest, defaultGuestConfig } from '../../src/guest/guest.js';
import { allocPages, freePages, drainAllPages } from '../../src/guest/mm/page_alloc.js';
import { GFP_KERNEL, GFP_HIGHUSER_MOVABLE } from '../../src/guest/mm/gfp.js';
import { NO_PAGE, Owner, PG, PageType, listAdd, listDel, listHeadAlloc, listCount, pageOwner, pageTypeOf, pageFlags, setPageFlags, setPageType, setPageRefcount } from '../../src/guest/mm/memmap.js';
import { type PgData, type MovableOperations, MigrateMode, MigrateResult, ZoneType } from '../../src/guest/mm/mmzone.js';
import { compactMemory, compactZone, createCompactControl, CompactResult, deferCompaction, compactionDeferred, compactionDeferReset, compactionSuitable, fragmentationScoreNode, fragmentationScoreWmarks } from '../../src/guest/mm/compaction.js';
import { simRunUntil } from '../../src/sim/clock.js';
import { getProcess, faultAnonPages, unmapAnonPages, exitProcess, processPages, processRss } from '../../src/guest/mm/process.js';
import { checkPgdat } from '../../src/guest/mm/check.js';
import { createRng } from '../../src/sim/rng.js';
import { VmEvent, NodeStat } from '../../src/guest/mm/vmstat_items.js';

const DMA32 = ZoneType.dma32;

/** A node of `blocks` pageblocks, all free, watermarks zero. */
function freshNode(blocks: number): PgData {
  const pg = miniNode(blocks * 512);
  pg.sysctl.thp.enabled = 'never'; // small pages: these tests fragment memory on purpose
  for (let p = 0; p < blocks * 512; p += 1024) giveBlock(pg, p, 10);
  return pg;
}

test('compact_memory moves movable pages up and frees whole blocks at the bottom; unmovable pages pin their pageblock', () => {
  // eight pageblocks: a pass that takes the rest of a block (cc->rescan) leaves the free
  // scanner only the blocks above the next one
  const pg = freshNode(8);
  const proc = getProcess(pg.tasks.procs, 7);
  // Fill the node: one unmovable page in the first pageblock, the rest anonymous.
  assert.equal(faultAnonPages(pg, proc, 100), 100);
  const slab = allocPages(pg, GFP_KERNEL, 0, Owner.slabUnreclaimable);
  assert.notEqual(slab, NO_PAGE);
  assert.equal(faultAnonPages(pg, proc, 4096), 4096 - 101 - proc.mm.nrPgtables, 'the node fills up (the page tables take their share)');
  unmapAnonPages(pg, createRng(1), proc, 0.5, 'alternate');
  drainAllPages(pg, null);
  const before = freeBlocks(pg, DMA32);
  assert.ok(!('9:M' in before) && !('10:M' in before), `fragmented: ${JSON.stringify(before)}`);
  const slabBlock = slab >> 9;
  compactMemory(pg);
  assert.equal(checkPgdat(pg), null);
  // every anonymous page moved to the top; the unmovable page did not move
  assert.equal(pageOwner(pg.map, slab), Owner.slabUnreclaimable);
  const after = freeBlocks(pg, DMA32);
  const big = (after['9:M'] ?? 0) + 2 * (after['10:M'] ?? 0);
  assert.ok(big >= 1, `a whole free pageblock after compaction: ${JSON.stringify(after)}`);
  // the pageblock holding the slab page cannot be entirely free
  let freeInSlabBlock = 0;
  for (let p = slabBlock * 512; p < slabBlock * 512 + 512; p++) if (pageOwner(pg.map, p) === Owner.free) freeInSlabBlock++;
  assert.ok(freeInSlabBlock < 512);
  assert.ok(pg.events[VmEvent.pgmigrate_success]! > 0);
  assert.ok(pg.events[VmEvent.compact_migrate_scanned]! > 0 && pg.events[VmEvent.compact_free_scanned]! > 0);
  assert.ok(pg.events[VmEvent.compact_isolated]! > 0);
  assert.equal(proc.rssAnon, processPages(pg, pg.tasks.procs.get(7)!).length, 'migration keeps the process id with the page');
});

test('pinned and locked LRU pages fail migration and are put back on the LRU', () => {
  const pg = freshNode(4);
  const proc = getProcess(pg.tasks.procs, 3);
  faultAnonPages(pg, proc, 1024);
  unmapAnonPages(pg, createRng(2), proc, 0.5, 'alternate');
  drainAllPages(pg, null);
  const pages = processPages(pg, pg.tasks.procs.get(3)!);
  setPageRefcount(pg.map, pages[0]!, 2); // pinned (e.g. get_user_pages)
  setPageFlags(pg.map, pages[1]!, pageFlags(pg.map, pages[1]!) | PG.locked);
  const cc = createCompactControl(pg, pg.zones[DMA32]!, -1, 1, MigrateMode.sync);
  compactZone(pg, cc);
  assert.equal(pageOwner(pg.map, pages[0]!), Owner.anon, 'pinned page stayed');
  assert.equal(pageOwner(pg.map, pages[1]!), Owner.anon, 'locked page stayed');
  assert.ok((pageFlags(pg.map, pages[1]!) & PG.lru) !== 0, 'and is back on the LRU');
  assert.ok(pg.events[VmEvent.pgmigrate_fail]! >= 1, 'the locked page was isolated, retried and failed');
  assert.equal(checkPgdat(pg), null);
});

/**
 * A test double of a non-LRU movable owner (what the balloon will be): pages are
 * PageOffline on the owner's own list; migrate answers from a script.
 */
function makeDouble(pg: PgData, script: MigrateResult[]) {
  const head = listHeadAlloc(pg.map);
  const log: string[] = [];
  const ops: MovableOperations = {
    isolatePage(p, pfn) { listDel(p.map, pfn); log.push(`isolate ${pfn}`); return true; },
    migratePage(p, dst, src) {
      const r = script.length ? script.shift()! : MigrateResult.success;
      log.push(`migrate ${src}->${dst} ${r}`);
      if (r !== MigrateResult.success) return r;
      setPageType(p.map, dst, PageType.offline);
      listAdd(p.map, dst, head);
      setPageType(p.map, src, PageType.none);
      return MigrateResult.success;
    },
    putbackPage(p, pfn) {
      setPageFlags(p.map, pfn, pageFlags(p.map, pfn) & ~PG.isolated);
      listAdd(p.map, pfn, head);
      log.push(`putback ${pfn}`);
    },
  };
  pg.movableOps[Owner.balloon] = ops;
  return { head, log };
}

test('non-LRU movable pages go through isolate, migrate and putback; "again" is retried, failures put back', () => {
  const pg = freshNode(4);
  const d = makeDouble(pg, [MigrateResult.again, MigrateResult.fail]);
  // three balloon pages at the bottom of the node, then fill the rest with anon and free
  // 60 % (compaction's first pass takes all of pageblock 0, cc->rescan: the targets are
  // in the pageblocks above the next)
  const mine: number[] = [];
  for (let i = 0; i < 3; i++) {
    const pfn = allocPages(pg, GFP_HIGHUSER_MOVABLE, 0, Owner.balloon);
    setPageType(pg.map, pfn, PageType.offline);
    listAdd(pg.map, pfn, d.head);
    mine.push(pfn);
  }
  const proc = getProcess(pg.tasks.procs, 9);
  faultAnonPages(pg, proc, 4 * 512);
  unmapAnonPages(pg, createRng(3), proc, 0.6, 'alternate');
  drainAllPages(pg, null);
  compactMemory(pg);
  assert.equal(checkPgdat(pg), null);
  assert.equal(listCount(pg.map, d.head), 3, 'all three balloon pages are on the owner list again');
  const isolates = d.log.filter((l) => l.startsWith('isolate')).length;
  assert.equal(isolates, 3);
  const migrates = (r: MigrateResult) => d.log.filter((l) => l.startsWith('migrate') && l.endsWith(` ${r}`)).length;
  assert.equal(migrates(MigrateResult.again), 1, 'one migrate said try again');
  assert.equal(migrates(MigrateResult.fail), 1);
  assert.equal(d.log.filter((l) => l.startsWith('putback')).length, 1, 'the failed one was put back');
  assert.deepEqual(d.log.filter((l) => l.startsWith('migrate')).map((l) => l.split(' ')[1]!.split('->')[0]), [String(mine[0]), String(mine[1]), String(mine[2]), String(mine[0])], 'the "again" page was retried in the next pass');
  assert.equal(migrates(MigrateResult.success), 2, `the retried page and the third one moved: ${d.log.join("; ")}`);
  let offline = 0;
  for (let p = 0; p < pg.map.nrPages; p++) if (pageOwner(pg.map, p) === Owner.balloon) { offline++; assert.equal(pageTypeOf(pg.map, p), PageType.offline); }
  assert.equal(offline, 3);
});

test('deferral backs off exponentially and resets on success; compaction_suitable', () => {
  const pg = freshNode(2);
  const z = pg.zones[DMA32]!;
  assert.equal(compactionDeferred(z, 9), false);
  deferCompaction(z, 9);
  deferCompaction(z, 9);
  // defer_shift 2: skipped 3 times, tried the 4th
  assert.deepEqual([compactionDeferred(z, 9), compactionDeferred(z, 9), compactionDeferred(z, 9), compactionDeferred(z, 9)], [true, true, true, false]);
  assert.equal(compactionDeferred(z, 3), false, 'lower orders than the failed one are not deferred');
  compactionDeferReset(z, 9, true);
  assert.equal(compactionDeferred(z, 9), false);
  assert.equal(compactionSuitable(z, 9, DMA32), CompactResult.success, 'a free order-9 block exists already');
});

test('property: process faults, unmaps, exits, allocations and compaction keep every invariant', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1000 }), fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 25 }), (seed, steps) => {
      const g = createGuest(defaultGuestConfig({ memoryBytes: 128 * 1024 * 1024, seed }));
      const pg = g.pgdat;
      pg.sysctl.thp.enabled = seed % 2 ? 'always' : 'never';
      const rng = createRng(seed);
      const held: number[] = [];
      let pid = 1;
      for (const s of steps) {
        if (s === 0) faultAnonPages(pg, getProcess(g.procs, 1 + (pid++ % 3)), 3000);
        else if (s === 1) { const p = g.procs.get(1 + (pid % 3)); if (p) unmapAnonPages(pg, rng, p, 0.5, pid % 2 ? 'alternate' : 'random'); }
        else if (s === 2) { const p = g.procs.get(1 + ((pid + 1) % 3)); if (p) exitProcess(pg, g.procs, p); }
        else if (s === 3) { for (let i = 0; i < 500; i++) { const x = allocPages(pg, GFP_KERNEL, 0, Owner.slabUnreclaimable); if (x !== NO_PAGE) held.push(x); } }
        else if (s === 4) { for (let i = 0; i < held.length; i += 2) freePages(pg, held[i]!, 0); held.splice(0, held.length, ...held.filter((_, i) => i % 2)); }
        else compactMemory(pg);
        const problem = checkPgdat(pg);
        if (problem !== null) throw new Error(`step ${s}: ${problem}`);
        for (const p of g.procs.values()) if (p.rssAnon !== processRss(p)) throw new Error(`rss of ${p.pid} drifted`);
      }
    }),
    { numRuns: 25, seed: 42 },
  );
});

test('owner accounting follows migrated pages (nr_anon_pages unchanged by compaction)', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 256 * 1024 * 1024 }));
  g.pgdat.sysctl.thp.enabled = 'never';
  const proc = getProcess(g.procs, 5);
  faultAnonPages(g.pgdat, proc, 20000);
  unmapAnonPages(g.pgdat, createRng(4), proc, 0.5, 'alternate');
  const before = [g.pgdat.ownerPages[Owner.anon]!, g.pgdat.nodeStat[NodeStat.nr_anon_pages]!, g.pgdat.nodeStat[NodeStat.nr_inactive_anon]!];
  compactMemory(g.pgdat);
  assert.deepEqual([g.pgdat.ownerPages[Owner.anon]!, g.pgdat.nodeStat[NodeStat.nr_anon_pages]!, g.pgdat.nodeStat[NodeStat.nr_inactive_anon]!], before);
  assert.equal(g.pgdat.nodeStat[NodeStat.nr_isolated_anon], 0);
  assert.equal(checkPgdat(g.pgdat), null);
});

test('kcompactd compacts proactively when the fragmentation score passes the high mark', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 512 * 1024 * 1024 }));
  const pg = g.pgdat;
  pg.sysctl.thp.enabled = 'never';
  const proc = getProcess(pg.tasks.procs, 5);
  const high = pg.zones.reduce((n, z) => n + z.watermark[2]!, 0);
  while (pg.zones.reduce((n, z) => n + z.vmStat[0]!, 0) > high + 1024) faultAnonPages(pg, proc, 1024);
  unmapAnonPages(pg, createRng(9), proc, 0.5, 'alternate');
  drainAllPages(pg, null);
  // The watermark headroom keeps some large free blocks, so this guest scores ~86:
  // proactiveness 40 puts the marks at 60/70 (the default 20 at 80/90).
  pg.sysctl.compactionProactiveness = 40;
  const [low, hi] = fragmentationScoreWmarks(pg.sysctl.compactionProactiveness);
  const before = fragmentationScoreNode(pg);
  assert.ok(before > hi, `fragmented: score ${before} > ${hi}`);
  simRunUntil(g.sim, 600e6); // one kcompactd period
  assert.ok(pg.events[VmEvent.compact_daemon_migrate_scanned]! > 0 && pg.events[VmEvent.compact_daemon_free_scanned]! > 0);
  const after = fragmentationScoreNode(pg);
  assert.ok(after <= low + 1, `proactive compaction brought the score from ${before} to ${after} (low mark ${low})`);
  assert.equal(checkPgdat(pg), null);
  pg.sysctl.compactionProactiveness = 0;
  const scanned = pg.events[VmEvent.compact_daemon_migrate_scanned]!;
  unmapAnonPages(pg, createRng(10), proc, 0.5, 'alternate');
  simRunUntil(g.sim, 2e9);
  assert.equal(pg.events[VmEvent.compact_daemon_migrate_scanned], scanned, 'proactiveness 0 turns it off');
});
