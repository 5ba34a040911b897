/**
 * Property tests: long random sequences of allocations and frees of mixed orders and
 * migratetypes keep every page-map invariant, and freeing everything restores the
 * booted guest's free pages in every zone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createGuest, defaultGuestConfig } from '../../src/guest/guest.js';
import { allocPages, freePages, drainAllPages } from '../../src/guest/mm/page_alloc.js';
import { GFP_KERNEL, GFP_HIGHUSER_MOVABLE, GFP_ATOMIC, GFP_NOWAIT, __GFP_RECLAIMABLE, __GFP_COMP, __GFP_NORETRY, __GFP_NOWARN, GFP_DMA32 } from '../../src/guest/mm/gfp.js';
import { NO_PAGE, Owner, MAX_ORDER } from '../../src/guest/mm/memmap.js';
import { checkPgdat } from '../../src/guest/mm/check.js';
import { miniNode, giveBlock } from '../helpers/mini.js';

const GFPS = [GFP_KERNEL, GFP_HIGHUSER_MOVABLE, GFP_KERNEL | __GFP_RECLAIMABLE, GFP_NOWAIT, GFP_HIGHUSER_MOVABLE | __GFP_COMP,
  GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN, GFP_KERNEL | GFP_DMA32];
const OWNERS = [Owner.kernel, Owner.anon, Owner.slabReclaimable, Owner.kernel, Owner.anon, Owner.slabUnreclaimable, Owner.kernel];

type Op =
  | { kind: 'alloc'; gfp: number; order: number; count: number }
  | { kind: 'free'; pick: number; count: number }
  | { kind: 'drain' }
  | { kind: 'cpu'; cpu: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('alloc' as const), gfp: fc.integer({ min: 0, max: GFPS.length - 1 }), order: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: MAX_ORDER - 1 })), count: fc.integer({ min: 1, max: 400 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat(), count: fc.integer({ min: 1, max: 400 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'drain' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cpu' as const), cpu: fc.integer({ min: 0, max: 1 }) }) },
);

/**
 * Free pages per zone. (Not per order: compaction may migrate boot's movable pages,
 * the tmpfs and anonymous ones on the LRU, so the blocks they leave can differ.)
 */
function freeCounts(zones: { nrFree: Int32Array }[]): number[] {
  return zones.map((z) => Array.from(z.nrFree).reduce((n, c, order) => n + (c << order), 0));
}

test('random allocation/free sequences keep every invariant and free-everything restores the boot state', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1 << 30 }), fc.array(opArb, { minLength: 1, maxLength: 60 }), (seed, ops) => {
      const g = createGuest(defaultGuestConfig({ memoryBytes: 128 * 1024 * 1024, vcpus: 2, seed }));
      const pg = g.pgdat;
      drainAllPages(pg, null);
      const booted = freeCounts(pg.zones);
      const held: number[] = [];
      for (const op of ops) {
        if (op.kind === 'alloc') {
          for (let i = 0; i < op.count; i++) {
            const pfn = allocPages(pg, GFPS[op.gfp]!, op.order, OWNERS[op.gfp]!);
            if (pfn === NO_PAGE) break;
            held.push(pfn, op.order);
          }
        } else if (op.kind === 'free') {
          for (let i = 0; i < op.count && held.length; i++) {
            const k = ((op.pick + i * 7919) % (held.length >> 1)) * 2;
            freePages(pg, held[k]!, held[k + 1]!);
            held[k] = held[held.length - 2]!; held[k + 1] = held[held.length - 1]!;
            held.length -= 2;
          }
        } else if (op.kind === 'drain') {
          drainAllPages(pg, null);
        } else {
          pg.tasks.cpu = op.cpu;
        }
        const problem = checkPgdat(pg);
        if (problem !== null) throw new Error(`after ${JSON.stringify(op)}: ${problem}`);
      }
      for (let k = 0; k < held.length; k += 2) freePages(pg, held[k]!, held[k + 1]!);
      drainAllPages(pg, null);
      assert.equal(checkPgdat(pg), null);
      assert.deepEqual(freeCounts(pg.zones), booted);
    }),
    { numRuns: 40, seed: 20261123 },
  );
});

test('GFP_ATOMIC high-order allocations (HighAtomic reserves) keep the invariants', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.boolean()), { minLength: 1, maxLength: 300 }), (steps) => {
      const pg = miniNode(4096);
      for (let p = 0; p < 4096; p += 1024) giveBlock(pg, p, 10);
      const z = pg.zones[1]!;
      z.watermark[0] = 64; z.watermark[1] = 5000; z.watermark[2] = 5100; // fast path always fails: slow path with ALLOC_HARDER
      const held: number[] = [];
      for (const [order, free] of steps) {
        if (free && held.length) {
          const o = held.pop()!, p = held.pop()!;
          freePages(pg, p, o);
        } else {
          const p = allocPages(pg, GFP_ATOMIC, order, Owner.kernel);
          if (p !== NO_PAGE) held.push(p, order);
        }
        const problem = checkPgdat(pg);
        if (problem !== null) throw new Error(problem);
      }
    }),
    { numRuns: 60, seed: 7 },
  );
});
