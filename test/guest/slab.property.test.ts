/**
 * Property test: random sequences of slab allocations and frees, page-cache fills and
 * truncations, shrinker runs, drop_caches and memory pressure (so that slab and
 * page-cache allocations reclaim, and the shrinkers free into the caches being
 * allocated from) keep every invariant, the slab checks included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createGuest, defaultGuestConfig } from '../../src/guest/guest.js';
import { checkPgdat } from '../../src/guest/mm/check.js';
import { type KmemCache, FreeFrom, kmemCacheAlloc, kmemCacheFree, kmemCacheByName, slabVmaAlloc, slabVmaFree, kmalloc, kfree } from '../../src/guest/mm/slab.js';
import { shrinkSlab, tryToFreePages } from '../../src/guest/mm/vmscan.js';
import { dropCachesSysctlHandler, syncPagecache, truncateInodePages } from '../../src/guest/mm/filemap.js';
import { getProcess, readFilePages, faultAnonPages, exitProcess } from '../../src/guest/mm/process.js';
import { GFP_KERNEL } from '../../src/guest/mm/gfp.js';

const CACHES = ['dentry', 'kmalloc-64', 'kmalloc-1k', 'task_struct', 'radix_tree_node', 'ext4_inode_cache', 'kmalloc-8'];

type Op =
  | { kind: 'alloc'; cache: number; n: number }
  | { kind: 'free'; cache: number; n: number; newest: boolean }
  | { kind: 'file'; pid: number; pages: number; dirty: boolean; filePages: number }
  | { kind: 'truncate'; pid: number }
  | { kind: 'shrink'; priority: number }
  | { kind: 'drop'; value: 1 | 2 | 3 }
  | { kind: 'pressure'; pages: number }
  | { kind: 'relief' }
  | { kind: 'vma'; n: number; free: boolean }
  | { kind: 'kmalloc'; size: number; n: number; free: boolean }
  | { kind: 'cpu'; cpu: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('alloc' as const), cache: fc.integer({ min: 0, max: CACHES.length - 1 }), n: fc.integer({ min: 1, max: 3000 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('free' as const), cache: fc.integer({ min: 0, max: CACHES.length - 1 }), n: fc.integer({ min: 1, max: 3000 }), newest: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('file' as const), pid: fc.integer({ min: 1, max: 4 }), pages: fc.integer({ min: 1, max: 6000 }), dirty: fc.boolean(), filePages: fc.integer({ min: 0, max: 70 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), pid: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('shrink' as const), priority: fc.integer({ min: 0, max: 12 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), value: fc.constantFrom(1 as const, 2 as const, 3 as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('pressure' as const), pages: fc.integer({ min: 1000, max: 30000 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'relief' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('vma' as const), n: fc.integer({ min: 1, max: 200 }), free: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('kmalloc' as const), size: fc.integer({ min: 1, max: 8192 }), n: fc.integer({ min: 1, max: 500 }), free: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cpu' as const), cpu: fc.integer({ min: 0, max: 1 }) }) },
);

test('random slab, page-cache, shrinker and pressure sequences keep every invariant', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1 << 30 }), fc.array(opArb, { minLength: 1, maxLength: 40 }), (seed, ops) => {
      const g = createGuest(defaultGuestConfig({ memoryBytes: 128 * 1024 * 1024, vcpus: 2, seed }));
      const pg = g.pgdat;
      const caches: KmemCache[] = CACHES.map((n) => kmemCacheByName(pg, n));
      const hog = 50;
      for (const op of ops) {
        switch (op.kind) {
          case 'alloc': kmemCacheAlloc(pg, caches[op.cache]!, op.n, GFP_KERNEL); break;
          case 'free': kmemCacheFree(pg, caches[op.cache]!, op.n, op.newest ? FreeFrom.newest : FreeFrom.oldest); break;
          case 'file': readFilePages(pg, getProcess(g.procs, op.pid), op.pages, op.dirty, op.filePages || undefined); break;
          case 'truncate': truncateInodePages(pg, getProcess(g.procs, op.pid)); break;
          case 'shrink': shrinkSlab(pg, op.priority); break;
          case 'drop': syncPagecache(pg); dropCachesSysctlHandler(pg, op.value); break;
          case 'pressure': faultAnonPages(pg, getProcess(g.procs, hog), op.pages); tryToFreePages(pg, GFP_KERNEL); break;
          case 'relief': { const p = g.procs.get(hog); if (p) exitProcess(pg, g.procs, p); break; }
          case 'vma': for (let i = 0; i < op.n; i++) { if (op.free) slabVmaFree(pg, i % 2 === 0); else slabVmaAlloc(pg, i % 2 === 0); } break;
          case 'kmalloc': if (op.free) kfree(pg, op.size, op.n); else kmalloc(pg, op.size, op.n); break;
          case 'cpu': pg.tasks.cpu = op.cpu; break;
        }
        const bad = checkPgdat(pg);
        if (bad !== null) assert.fail(`after ${JSON.stringify(op)}:\n${bad}`);
      }
      pg.tasks.cpu = 0;
    }),
    { numRuns: 40 },
  );
});
