/**
 * v33's race: its hints are free blocks the guest does not hold, so a block can be
 * allocated and written between the walk and the host reading its hint, or after the
 * hint cleared it from the migration bitmap and before the next sync. QEMU's discipline
 * (hints only between two syncs; a hint clears the migration bitmap, never a write the
 * dirty log holds) must still deliver the written data: the destination check proves it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createVm, type Vm } from '../../src/machine/machine.js';
import { defaultGuestConfig } from '../../src/guest/guest.js';
import { hostMigrate } from '../../src/host/vm.js';
import { simRunUntil } from '../../src/sim/clock.js';
import { physPfn } from '../../src/guest/mm/layout.js';
import { PageWrite, ZoneType } from '../../src/guest/mm/mmzone.js';
import { allocPages } from '../../src/guest/mm/page_alloc.js';
import { GFP_KERNEL, GFP_HIGHUSER_MOVABLE, __GFP_DMA32 } from '../../src/guest/mm/gfp.js';
import { MAX_ORDER, Owner } from '../../src/guest/mm/memmap.js';
import { getProcess, faultAnonPages, exitProcess } from '../../src/guest/mm/process.js';
import { checkPgdat } from '../../src/guest/mm/check.js';

const GiB = 1024 ** 3;
const ORDER = MAX_ORDER - 1;
const BLOCK = 1 << ORDER;

function v33Vm(memory: number): Vm {
  return createVm({
    guest: defaultGuestConfig({ memoryBytes: memory, vcpus: 2 }),
    balloon: { device: { freePageHint: true, freePageHintDesign: 'v33' }, driver: { hintDesign: 'v33', hintBuffer: 'sized' } },
    memPrealloc: false,
  });
}

test('v33: blocks hinted, then allocated and written before the host read the hint and before the next sync, arrive at the destination with what was written', () => {
  const v = v33Vm(6 * GiB);
  const pg = v.guest.pgdat, layout = v.guest.layout, ram = v.host.ram, drv = v.driver!;
  // a guest that ran something: its free blocks hold old data, so a skipped page would be visibly wrong
  const p = getProcess(v.guest.procs, 100);
  faultAnonPages(pg, p, (3 * GiB) / 4096);
  exitProcess(pg, v.guest.procs, p);
  const m = hostMigrate(v.host, { maxBandwidth: 100 * GiB, downtimeLimitMs: 300, linkBandwidth: 1.25e9 });
  assert.equal(m.hinting, true);
  simRunUntil(v.sim, v.sim.now + 1);
  // the work walked the free lists now: DMA32 under its lock first, then Normal; the buffer leaves after both
  const rep = drv.hintLog.reports[0]!;
  assert.ok(rep.entries > 1000 && rep.endNs < 0, 'walked, not handed over yet');
  const walked = new Set(drv.hintBuf.entries.subarray(0, rep.entries));
  const dma32 = pg.zones[ZoneType.dma32]!, normal = pg.zones[ZoneType.normal]!;
  assert.ok(dma32.lockHeldUntil <= normal.lockHeldFrom && normal.lockHeldUntil > dma32.lockHeldUntil);

  // (1) DMA32's lock has dropped, Normal's walk goes on: a process takes a walked block there and writes it
  simRunUntil(v.sim, dma32.lockHeldUntil + 1);
  const early = allocPages(pg, GFP_KERNEL | __GFP_DMA32, ORDER, Owner.anon);
  assert.ok(walked.has(early), 'the block was one of the walk\'s');
  pg.hooks.pageWrite!(early, BLOCK, PageWrite.data);
  assert.equal(rep.endNs, -1, 'written before the host read its hint');
  const syncs = m.dirtySyncCount;

  // the buffer reaches the host: the hint clears the migration bitmap, the write stays in the dirty log
  simRunUntil(v.sim, normal.lockHeldUntil + 1);
  assert.ok(rep.endNs > 0);
  const e0 = physPfn(layout, early);
  for (const q of [e0, e0 + BLOCK - 1]) {
    assert.equal(m.bmap[q], 0, 'skipped by its hint');
    assert.equal(ram.dirty[q], 1, 'but logged dirty: the next sync puts it back');
  }

  // (2) after the hint, before the next sync: another hinted block is allocated and written
  // (the first block off the list may be the sized buffer's, merged back after the walk: not a hint)
  let late = allocPages(pg, GFP_HIGHUSER_MOVABLE, ORDER, Owner.anon);
  for (let i = 0; i < 4 && !walked.has(late); i++) late = allocPages(pg, GFP_HIGHUSER_MOVABLE, ORDER, Owner.anon);
  assert.ok(walked.has(late));
  const l0 = physPfn(layout, late);
  assert.equal(m.bmap[l0], 0, 'hinted: the pass would skip it');
  pg.hooks.pageWrite!(late, BLOCK, PageWrite.data);
  assert.equal(m.dirtySyncCount, syncs, 'no sync since the walk');

  let check: string | null | undefined = 'not completed';
  m.onComplete = (done) => { check = done.destinationCheck; };
  simRunUntil(v.sim, v.sim.now + 60e9);
  assert.equal(m.status, 'completed');
  assert.equal(check, null, `the destination check: ${check}`);
  // what was written arrived, page by page
  for (const [first, label] of [[e0, 'written before the hint was read'], [l0, 'written after the hint']] as const) {
    for (let q = first; q < first + BLOCK; q++) {
      if (m.destReceived[q] !== 1 || m.destGen[q] !== ram.gen[q]) assert.fail(`${label}: guest-physical page ${q} did not arrive as written (received ${m.destReceived[q]}, gen ${m.destGen[q]} vs ${ram.gen[q]})`);
    }
  }
  assert.ok(m.skippedPages > 500 * BLOCK, 'the other hinted blocks were skipped');
  assert.equal(checkPgdat(pg), null);
});
