/** The slow path's retry decisions, as mm/page_alloc.c makes them with compaction's outcome predicates. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shouldCompactRetry, CompactPriority, MAX_COMPACT_RETRIES } from '../../src/guest/mm/slowpath.js';
import { CompactResult } from '../../src/guest/mm/compaction.js';
import { createGuest, defaultGuestConfig } from '../../src/guest/guest.js';

test('should_compact_retry: progress retries up to the limit (a quarter for costly orders), failure and withdrawal climb the priority', () => {
  const pg = createGuest(defaultGuestConfig({ memoryBytes: 256 * 2 ** 20 })).pgdat;
  const c = { priority: CompactPriority.async, retries: 0 };
  let n = 0;
  while (shouldCompactRetry(pg, 2, 1, CompactResult.success, c) && n < 100) n++;
  // at each priority 16 retries, then (async, sync-light) one more to climb; at sync-full the 17th says no
  assert.equal(n, 3 * (MAX_COMPACT_RETRIES + 1) - 1, `retries ${n}`);
  assert.equal(c.priority, CompactPriority.syncFull);

  const costly = { priority: CompactPriority.async, retries: 0 };
  let k = 0;
  while (shouldCompactRetry(pg, 9, 1, CompactResult.success, costly) && k < 100) k++;
  assert.equal(costly.priority, CompactPriority.syncLight, 'costly orders stop at sync-light');
  assert.equal(k, 2 * (MAX_COMPACT_RETRIES / 4 + 1) - 1);

  const failed = { priority: CompactPriority.async, retries: 0 };
  assert.ok(shouldCompactRetry(pg, 2, 1, CompactResult.complete, failed), 'a failure retries at a higher priority');
  assert.equal(failed.priority, CompactPriority.syncLight);
  assert.ok(shouldCompactRetry(pg, 2, 1, CompactResult.deferred, failed), 'so does a withdrawal');
  assert.equal(failed.priority, CompactPriority.syncFull);
  assert.equal(shouldCompactRetry(pg, 2, 1, CompactResult.complete, failed), false, 'nothing left to try');
  assert.equal(shouldCompactRetry(pg, 0, 1, CompactResult.success, { priority: CompactPriority.async, retries: 0 }), false, 'order 0 never retries compaction');
  // skipped for want of free pages: retry only if reclaim could make compaction worth it; a guest
  // that already has a free order-2 block has nothing for compaction to do
  assert.equal(shouldCompactRetry(pg, 2, 1, CompactResult.skipped, { priority: CompactPriority.async, retries: 0 }), false);
});

test('__alloc_pages_slowpath (6.1): a costly request compacts at DEF_COMPACT_PRIORITY (sync-light) in the loop, so its failure defers compaction; with __GFP_NORETRY it stays async and does not', async () => {
  const { miniNode, giveBlock } = await import('../helpers/mini.js');
  const { installReclaim } = await import('../../src/guest/mm/slowpath.js');
  const { allocPages } = await import('../../src/guest/mm/page_alloc.js');
  const { GFP_HIGHUSER_MOVABLE, __GFP_NORETRY, __GFP_NOWARN } = await import('../../src/guest/mm/gfp.js');
  const { NO_PAGE, Owner } = await import('../../src/guest/mm/memmap.js');
  const { VmEvent } = await import('../../src/guest/mm/vmstat_items.js');
  for (const noretry of [false, true]) {
    // 16 Movable pageblocks, every other page free, the rest pages nothing can move
    const pg = miniNode(16 * 512);
    for (let pfn = 0; pfn < 16 * 512; pfn += 2) giveBlock(pg, pfn, 0);
    installReclaim(pg, () => {});
    const z = pg.zones[1]!;
    const pfn = allocPages(pg, GFP_HIGHUSER_MOVABLE | __GFP_NOWARN | (noretry ? __GFP_NORETRY : 0), 9, Owner.kernel);
    assert.equal(pfn, NO_PAGE, 'no 2 MiB block can be made');
    // the initial async run, then (after reclaim found nothing) the loop's run
    assert.equal(pg.events[VmEvent.compact_stall], 2);
    assert.equal(pg.events[VmEvent.compact_fail], 2);
    assert.equal(z.compact.deferShift, noretry ? 0 : 1, noretry ? 'async only: never deferred' : 'the sync-light run failed over the zone: deferred');
  }
});
