/** Balloon pages that compaction can move (and, without balloon compaction, cannot). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createGuest, defaultGuestConfig } from '../../../src/guest/guest.js';
import { balloonDevinfoInit, balloonPageAlloc, balloonPageEnqueue, balloonPageDequeue, balloonPageReplace, balloonDequeueShouldRetry } from '../../../src/guest/balloon/balloon_compaction.js';
import { compactMemory } from '../../../src/guest/mm/compaction.js';
import { getProcess, faultAnonPages, exitProcess, unmapAnonPages } from '../../../src/guest/mm/process.js';
import { createRng } from '../../../src/sim/rng.js';
import { freePages, drainAllPages } from '../../../src/guest/mm/page_alloc.js';
import { NO_PAGE, Owner, PageType, pageOwner, pageTypeOf, getPageblockMigratetype, MigrateType } from '../../../src/guest/mm/memmap.js';
import { MigrateResult } from '../../../src/guest/mm/mmzone.js';
import { checkPgdat } from '../../../src/guest/mm/check.js';
import { VmEvent } from '../../../src/guest/mm/vmstat_items.js';

const MiB = 1024 * 1024;
/** Balloon size in pages (80 MiB of a 512 MiB guest). */
const BALLOON = 20480;

/**
 * A process fills memory and unmaps every other page; the balloon inflates into the
 * holes; the process exits. Balloon pages end up scattered across memory, as after a
 * guest inflated its balloon while busy.
 */
function scatteredBalloon(compaction: boolean, hostLog: string[], busy = () => false) {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 512 * MiB }));
  const pg = g.pgdat;
  pg.sysctl.thp.enabled = 'never';
  const b = balloonDevinfoInit(pg, compaction);
  b.migratepage = (bi, newPfn, oldPfn) => {
    if (busy()) return MigrateResult.again;
    balloonPageReplace(bi, newPfn, oldPfn);
    hostLog.push(`inflate ${newPfn}`, `deflate ${oldPfn}`);
    return MigrateResult.success;
  };
  const proc = getProcess(pg.tasks.procs, 9);
  const high = pg.zones.reduce((n, z) => n + z.watermark[2]!, 0);
  while (pg.zones.reduce((n, z) => n + z.vmStat[0]!, 0) > high + 1024) faultAnonPages(pg, proc, 512);
  unmapAnonPages(pg, createRng(5), proc, 0.5, 'alternate');
  drainAllPages(pg, null);
  for (let i = 0; i < BALLOON; i++) {
    const pfn = balloonPageAlloc(b);
    assert.notEqual(pfn, NO_PAGE);
    balloonPageEnqueue(b, pfn);
  }
  exitProcess(pg, pg.tasks.procs, proc);
  drainAllPages(pg, null);
  return { g, pg, b };
}

function hugeFree(pg: ReturnType<typeof createGuest>['pgdat']): number {
  return pg.zones.reduce((n, z) => n + z.nrFree[9]! + 2 * z.nrFree[10]!, 0);
}

test('with balloon compaction, compact_memory migrates balloon pages through the driver callback', () => {
  const log: string[] = [];
  const { pg, b } = scatteredBalloon(true, log);
  assert.equal(b.nrPages, BALLOON);
  assert.equal(pg.events[VmEvent.balloon_inflate], BALLOON);
  const before = hugeFree(pg);
  compactMemory(pg);
  assert.equal(checkPgdat(pg), null);
  const migrated = pg.events[VmEvent.balloon_migrate]!;
  assert.ok(migrated > 1000, `balloon pages migrated: ${migrated}`);
  assert.equal(log.length, 2 * migrated, 'each migration inflated the new page and deflated the old one');
  assert.equal(b.nrPages, BALLOON, 'the balloon still holds all its pages');
  assert.equal(b.isolatedPages, 0);
  let offline = 0;
  for (let p = 0; p < pg.map.nrPages; p++) if (pageOwner(pg.map, p) === Owner.balloon) { offline++; assert.equal(pageTypeOf(pg.map, p), PageType.offline); }
  assert.equal(offline, BALLOON);
  assert.ok(hugeFree(pg) > before + 10, `free pageblocks ${before} -> ${hugeFree(pg)}`);
});

test('without balloon compaction, balloon pages are unmovable and compaction cannot help', () => {
  const log: string[] = [];
  const on = scatteredBalloon(true, []);
  compactMemory(on.pg);
  const { pg } = scatteredBalloon(false, log);
  compactMemory(pg);
  assert.equal(pg.events[VmEvent.balloon_migrate], 0);
  assert.equal(log.length, 0);
  assert.ok(hugeFree(pg) < hugeFree(on.pg), `unmovable balloon: ${hugeFree(pg)} huge free blocks vs ${hugeFree(on.pg)} with balloon compaction`);
  let unmovable = 0;
  for (let p = 0; p < pg.map.nrPages; p += 512) if (getPageblockMigratetype(pg.map, p) === MigrateType.unmovable) unmovable++;
  assert.ok(unmovable > 10, `the balloon's unmovable pages took over pageblocks (${unmovable})`);
  assert.equal(checkPgdat(pg), null);
});

test('a busy balloon lock makes migration try again, then put the page back', () => {
  const log: string[] = [];
  const { pg, b } = scatteredBalloon(true, log, () => true);
  compactMemory(pg);
  assert.equal(pg.events[VmEvent.balloon_migrate], 0);
  assert.ok(pg.events[VmEvent.pgmigrate_fail]! > 0);
  assert.equal(b.nrPages, BALLOON, 'every page was put back on the balloon list');
  assert.equal(b.isolatedPages, 0);
  assert.equal(checkPgdat(pg), null);
});

test('dequeue returns pages to the driver and counts balloon_deflate', () => {
  const { pg, b } = scatteredBalloon(true, []);
  for (let i = 0; i < BALLOON; i++) {
    const pfn = balloonPageDequeue(b);
    assert.notEqual(pfn, NO_PAGE);
    freePages(pg, pfn, 0);
  }
  assert.equal(balloonPageDequeue(b), NO_PAGE);
  assert.equal(balloonDequeueShouldRetry(b), false);
  assert.equal(pg.events[VmEvent.balloon_deflate], BALLOON);
  assert.equal(checkPgdat(pg), null);
});
