/**
 * Address spaces: mappings with virtual addresses, page tables as real allocations, THP
 * only where a 2 MiB-aligned range lies wholly inside a mapping and has no PTE table
 * yet, munmap and madvise by range, reclaim splitting THPs it swaps, swap-in on touch.
 * The property test drives random mapping operations through the checker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createGuest, defaultGuestConfig } from '../../src/guest/guest.js';
import {
  type Process, getProcess, forkProcess, mmapAnon, brkGrow, faultRange, faultAnonPages, munmapRange, madviseRange, exitProcess, followPage,
  walkPageTables, HPAGE_PMD_NR, PTE_SWAP, vmEnoughMemory,
} from '../../src/guest/mm/process.js';
import { khugepagedScan } from '../../src/guest/mm/khugepaged.js';
import { kmemCacheAlloc, kmemCacheByName } from '../../src/guest/mm/slab.js';
import { GFP_KERNEL } from '../../src/guest/mm/gfp.js';
import { deferredSplitScan } from '../../src/guest/mm/huge_memory.js';
import { compactMemory } from '../../src/guest/mm/compaction.js';
import { checkPgdat } from '../../src/guest/mm/check.js';
import { Owner, PageType, pageOwner, pageTypeOf, getPageblockMigratetype, MigrateType } from '../../src/guest/mm/memmap.js';
import { NodeStat, VmEvent } from '../../src/guest/mm/vmstat_items.js';
import type { PgData } from '../../src/guest/mm/mmzone.js';

const MiB = 1024 * 1024;
const ev = (pg: PgData, e: VmEvent) => pg.events[e]!;
const tables = (pg: PgData) => pg.nodeStat[NodeStat.nr_page_table_pages]!;

function guest(memory = 512 * MiB, thp: 'always' | 'madvise' | 'never' = 'always', swap = 0) {
  const g = createGuest(defaultGuestConfig({ memoryBytes: memory, swapBytes: swap }));
  g.pgdat.sysctl.thp.enabled = thp;
  return g;
}

test('page tables are allocations: PGD, PUD, PMD and PTE tables as a fault needs them, unmovable, freed with the range', () => {
  const g = guest(512 * MiB, 'never');
  const pg = g.pgdat;
  const p = getProcess(g.procs, 1);
  const t0 = tables(pg);
  const { vma } = mmapAnon(pg, p, 8 * HPAGE_PMD_NR, 'default', { align: HPAGE_PMD_NR })!;
  assert.equal(tables(pg), t0, 'mmap alone allocates nothing');
  assert.equal(faultRange(pg, p, vma, vma.start, 1), 1);
  assert.equal(tables(pg) - t0, 4, 'the first fault: PGD, PUD table, PMD table, PTE table');
  assert.equal(p.mm.nrPgtables, 4);
  faultRange(pg, p, vma, vma.start + 1, HPAGE_PMD_NR - 1);
  assert.equal(p.mm.nrPgtables, 4, 'the rest of the same 2 MiB: no new table');
  faultRange(pg, p, vma, vma.start + HPAGE_PMD_NR, 3 * HPAGE_PMD_NR);
  assert.equal(p.mm.nrPgtables, 4 + 3, 'one PTE table per 2 MiB touched');
  for (const pmd of p.mm.pmds.values()) {
    assert.equal(pageOwner(pg.map, pmd.table), Owner.pageTable);
    assert.equal(pageTypeOf(pg.map, pmd.table), PageType.table);
    assert.equal(getPageblockMigratetype(pg.map, pmd.table), MigrateType.unmovable, 'GFP_PGTABLE_USER is unmovable');
  }
  // MADV_DONTNEED unmaps but keeps the tables; munmap frees what no mapping covers
  assert.equal(madviseRange(pg, p, vma.start, 2 * HPAGE_PMD_NR, 'dontneed'), 2 * HPAGE_PMD_NR);
  assert.equal(p.mm.nrPgtables, 7);
  assert.equal(checkPgdat(pg), null);
  munmapRange(pg, p, vma.start, 8 * HPAGE_PMD_NR);
  assert.equal(p.rssAnon, 0);
  assert.equal(p.mm.nrPgtables, 1, 'only the PGD is left');
  assert.equal(tables(pg) - t0, 1);
  assert.equal(checkPgdat(pg), null);
  exitProcess(pg, g.procs, p);
  assert.equal(tables(pg), t0);
  assert.equal(checkPgdat(pg), null);
});

test('a THP fault needs the whole aligned 2 MiB inside the mapping: unaligned mappings, heaps grown in small steps', () => {
  const g = guest();
  const pg = g.pgdat;
  const p = getProcess(g.procs, 1);
  // 4 MiB starting one page past a 2 MiB boundary: one aligned range lies wholly inside
  const m = mmapAnon(pg, p, 2 * HPAGE_PMD_NR + 1, 'default', { align: HPAGE_PMD_NR })!;
  munmapRange(pg, p, m.vma.start, 1);
  const v = p.mm.vmas.find((x) => x.start === m.start + 1)!;
  assert.equal(faultRange(pg, p, v, v.start, 2 * HPAGE_PMD_NR), 2 * HPAGE_PMD_NR);
  assert.equal(ev(pg, VmEvent.thp_fault_alloc), 1, 'the one range wholly inside is a THP, the pages either side 4 KiB');
  // a heap grown and touched 64 pages at a time: each aligned range is first touched before brk covers it
  const h = getProcess(g.procs, 2);
  for (let i = 0; i < 64; i++) { const heap = brkGrow(h, 64); faultRange(pg, h, heap, heap.end - 64, 64); }
  assert.equal(h.rssAnon, 4096);
  assert.equal(ev(pg, VmEvent.thp_fault_alloc), 1, 'no THP in a heap that grows under its faults');
  // the same 16 MiB grown at once: every aligned range inside is a THP
  const k = getProcess(g.procs, 3);
  faultAnonPages(pg, k, 4096);
  const heap = k.heap!;
  const aligned = Math.floor(heap.end / HPAGE_PMD_NR) - Math.ceil(heap.start / HPAGE_PMD_NR);
  assert.equal(ev(pg, VmEvent.thp_fault_alloc), 1 + aligned);
  assert.equal(k.rssAnon, 4096, 'the unaligned ends in 4 KiB pages');
  assert.equal(checkPgdat(pg), null);
});

test('MADV_DONTNEED leaves the PTE table: a later fault there takes 4 KiB pages even where a THP would fit', () => {
  const g = guest();
  const pg = g.pgdat;
  const p = getProcess(g.procs, 1);
  const { vma } = mmapAnon(pg, p, 2 * HPAGE_PMD_NR, 'default', { align: HPAGE_PMD_NR })!;
  faultRange(pg, p, vma, vma.start, 2 * HPAGE_PMD_NR);
  assert.equal(ev(pg, VmEvent.thp_fault_alloc), 2);
  // unmap half of the first THP: its PMD is split, the THP queued
  assert.equal(madviseRange(pg, p, vma.start, 256, 'dontneed'), 256);
  assert.equal(ev(pg, VmEvent.thp_split_pmd), 1);
  assert.equal(pg.deferredSplitQueue.thps.size, 1);
  assert.equal(deferredSplitScan(pg, 16), 1);
  assert.equal(ev(pg, VmEvent.thp_split_page), 1);
  faultRange(pg, p, vma, vma.start, 256);
  assert.equal(ev(pg, VmEvent.thp_fault_alloc), 2, 'pmd not none: small pages');
  assert.equal(p.rssAnon, 2 * HPAGE_PMD_NR);
  // a whole THP unmapped goes with its deposited table; the range is pmd_none again
  const before = p.mm.nrPgtables;
  madviseRange(pg, p, vma.start + HPAGE_PMD_NR, HPAGE_PMD_NR, 'dontneed');
  assert.equal(p.mm.nrPgtables, before - 1);
  faultRange(pg, p, vma, vma.start + HPAGE_PMD_NR, 1);
  assert.equal(ev(pg, VmEvent.thp_fault_alloc), 3, 'a fresh THP there');
  assert.equal(checkPgdat(pg), null);
});

test('madvise(MADV_HUGEPAGE) of part of a mapping splits it; only that part takes THPs with enabled=madvise', () => {
  const g = guest(512 * MiB, 'madvise');
  const pg = g.pgdat;
  const p = getProcess(g.procs, 1);
  const { start } = mmapAnon(pg, p, 8 * HPAGE_PMD_NR, 'default', { align: HPAGE_PMD_NR })!;
  madviseRange(pg, p, start + 2 * HPAGE_PMD_NR, 4 * HPAGE_PMD_NR, 'hugepage');
  assert.deepEqual(p.mm.vmas.map((v) => [v.start - start, v.end - start, v.advice]), [
    [0, 1024, 'default'], [1024, 3072, 'hugepage'], [3072, 4096, 'default'],
  ]);
  for (const v of [...p.mm.vmas]) faultRange(pg, p, v, v.start, v.end - v.start);
  assert.equal(ev(pg, VmEvent.thp_fault_alloc), 4);
  assert.equal(p.rssAnon, 8 * HPAGE_PMD_NR);
  // and NOHUGEPAGE keeps khugepaged away after the fact
  madviseRange(pg, p, start + 2 * HPAGE_PMD_NR, 4 * HPAGE_PMD_NR, 'nohugepage');
  assert.equal(khugepagedScan(pg), 0);
  assert.equal(checkPgdat(pg), null);
});

test('reclaim splits a THP before swapping it (thp_swpout_fallback); touching a swapped page swaps it in', () => {
  const g = guest(256 * MiB, 'always', 512 * MiB);
  const pg = g.pgdat;
  const a = getProcess(g.procs, 1);
  const { vma } = mmapAnon(pg, a, 96 * HPAGE_PMD_NR, 'default', { align: HPAGE_PMD_NR })!;
  faultRange(pg, a, vma, vma.start, vma.end - vma.start);
  assert.ok(ev(pg, VmEvent.thp_fault_alloc) > 60);
  // b needs more than is left: reclaim swaps a's memory, splitting its THPs
  const b = getProcess(g.procs, 2);
  const m = mmapAnon(pg, b, 96 * HPAGE_PMD_NR, 'nohugepage')!;
  faultRange(pg, b, m.vma, m.start, m.vma.end - m.start);
  assert.ok(ev(pg, VmEvent.pswpout) > 0, 'swap-out happened');
  assert.ok(ev(pg, VmEvent.thp_split_page) > 0 && ev(pg, VmEvent.thp_swpout_fallback) > 0, `THPs split for swap (${ev(pg, VmEvent.thp_split_page)})`);
  assert.ok(a.swapPages > 0);
  assert.equal(a.rssAnon + a.swapPages, 96 * HPAGE_PMD_NR, 'every page of a is mapped or in swap');
  assert.equal(checkPgdat(pg), null);
  // a touches its memory again: the swapped pages fault back in
  const swapped: number[] = [];
  walkPageTables(a, (vpn, e) => { if (e === PTE_SWAP && swapped.length < 100) swapped.push(vpn); });
  exitProcess(pg, g.procs, b);
  const in0 = ev(pg, VmEvent.pswpin);
  for (const vpn of swapped) faultRange(pg, a, vma, vpn, 1);
  assert.equal(ev(pg, VmEvent.pswpin) - in0, swapped.length);
  assert.ok(swapped.every((vpn) => followPage(a, vpn) >= 0));
  assert.equal(checkPgdat(pg), null);
});

test('mmap refuses more than RAM and swap together (overcommit heuristic); the action says so', () => {
  const g = guest(256 * MiB);
  const pg = g.pgdat;
  const p = getProcess(g.procs, 1);
  assert.equal(vmEnoughMemory(pg, 32 * 1024), true);
  assert.equal(mmapAnon(pg, p, 1024 * 1024, 'default'), null);
});

test('every mapping holds a vm_area_struct of the slab cache: mmap allocates one, a split another, munmap and exit free them', () => {
  const g = guest(512 * MiB, 'never');
  const pg = g.pgdat;
  const cache = pg.slab.std!.vmAreaStruct;
  const p = getProcess(g.procs, 1);
  const in0 = cache.inuse;
  const a = mmapAnon(pg, p, 1024, 'default', { guard: true })!;
  mmapAnon(pg, p, 1024, 'default', { guard: true });
  mmapAnon(pg, p, 1024, 'nohugepage', { guard: true });
  assert.equal(cache.inuse - in0, 3);
  assert.equal(p.mm.slabVmas, 3);
  madviseRange(pg, p, a.start + 256, 256, 'hugepage');
  assert.equal(p.mm.vmas.length, 5, 'the first mapping split in three');
  assert.equal(cache.inuse - in0, 5);
  munmapRange(pg, p, a.start, 1024);
  assert.equal(cache.inuse - in0, 2);
  exitProcess(pg, g.procs, p);
  assert.equal(cache.inuse, in0);
  assert.equal(checkPgdat(pg), null);
});

test('regression (slab property test, seed 65068124): a fault whose page-table allocation OOM-kills the faulting process leaves no page table behind', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 128 * MiB, vcpus: 2, seed: 65068124 }));
  const pg = g.pgdat;
  kmemCacheAlloc(pg, kmemCacheByName(pg, 'ext4_inode_cache'), 261, GFP_KERNEL);
  faultAnonPages(pg, getProcess(g.procs, 50), 14646);
  assert.equal(g.procs.has(50), false, 'the OOM killer took the faulting process');
  assert.equal(checkPgdat(pg), null);
});

type Op =
  | { k: 'mmap'; pid: number; pages: number; align: boolean; advice: 0 | 1 | 2 }
  | { k: 'fault'; pid: number; at: number; pages: number }
  | { k: 'brk'; pid: number; pages: number }
  | { k: 'munmap' | 'dontneed' | 'hugepage' | 'nohugepage'; pid: number; at: number; pages: number }
  | { k: 'exit'; pid: number }
  | { k: 'compact' | 'khugepaged' | 'split' | 'thp' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('mmap' as const), pid: fc.integer({ min: 1, max: 3 }), pages: fc.integer({ min: 1, max: 3000 }), align: fc.boolean(), advice: fc.constantFrom(0 as const, 1 as const, 2 as const) }),
  fc.record({ k: fc.constant('fault' as const), pid: fc.integer({ min: 1, max: 3 }), at: fc.nat(), pages: fc.integer({ min: 1, max: 2000 }) }),
  fc.record({ k: fc.constant('brk' as const), pid: fc.integer({ min: 1, max: 3 }), pages: fc.integer({ min: 1, max: 1500 }) }),
  fc.record({ k: fc.constantFrom('munmap' as const, 'dontneed' as const, 'hugepage' as const, 'nohugepage' as const), pid: fc.integer({ min: 1, max: 3 }), at: fc.nat(), pages: fc.integer({ min: 1, max: 1500 }) }),
  fc.record({ k: fc.constant('exit' as const), pid: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ k: fc.constantFrom('compact' as const, 'khugepaged' as const, 'split' as const, 'thp' as const) }),
);

/** A vpn of the process's address space the op's `at` picks: inside or just around its mappings. */
function pickVpn(p: Process, at: number): number | null {
  const vmas = p.mm.vmas.filter((v) => v.end > v.start);
  if (vmas.length === 0) return null;
  const v = vmas[at % vmas.length]!;
  return v.start - 8 + (Math.floor(at / vmas.length) % (v.end - v.start + 16));
}

test('property: random mappings, faults, munmap, madvise, brk, exit, compaction, khugepaged and the deferred split keep every invariant', () => {
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 5, maxLength: 40 }), (ops) => {
      const g = guest(128 * MiB, 'always', 64 * MiB);
      const pg = g.pgdat;
      const taskCaches = ['task_struct', 'mm_struct', 'vm_area_struct', 'anon_vma', 'anon_vma_chain'].map((n) => kmemCacheByName(pg, n));
      const inuse0 = taskCaches.map((c) => c.inuse);
      for (const [n, op] of ops.entries()) {
        if (!('pid' in op)) {
          if (op.k === 'compact') compactMemory(pg);
          else if (op.k === 'khugepaged') khugepagedScan(pg);
          else if (op.k === 'split') deferredSplitScan(pg, 64);
          else pg.sysctl.thp.enabled = pg.sysctl.thp.enabled === 'always' ? 'madvise' : 'always';
        } else if (op.k === 'mmap') mmapAnon(pg, forkProcess(pg, op.pid), op.pages, (['default', 'hugepage', 'nohugepage'] as const)[op.advice], { align: op.align ? HPAGE_PMD_NR : 1 });
        else if (op.k === 'brk') { const p = forkProcess(pg, op.pid); const h = brkGrow(p, op.pages); faultRange(pg, p, h, h.end - op.pages, op.pages); }
        else if (op.k === 'exit') exitProcess(pg, g.procs, forkProcess(pg, op.pid));
        else {
          const p = forkProcess(pg, op.pid);
          const vpn = pickVpn(p, op.at);
          if (vpn !== null) {
            if (op.k === 'fault') {
              for (const v of [...p.mm.vmas]) if (v.end > vpn && v.start < vpn + op.pages) faultRange(pg, p, v, Math.max(vpn, v.start), Math.min(vpn + op.pages, v.end) - Math.max(vpn, v.start));
            } else if (op.k === 'munmap') munmapRange(pg, p, Math.max(0, vpn), op.pages);
            else madviseRange(pg, p, Math.max(0, vpn), op.pages, op.k);
          }
        }
        const problem = checkPgdat(pg);
        if (problem !== null) throw new Error(`op ${n} ${JSON.stringify(op)}: ${problem}`);
      }
      for (const p of [...g.procs.values()]) exitProcess(pg, g.procs, p);
      const problem = checkPgdat(pg);
      if (problem !== null) throw new Error(`after exit: ${problem}`);
      assert.equal(pg.deferredSplitQueue.thps.size, 0, 'no THP orphaned on the queue');
      assert.deepEqual(taskCaches.map((c) => c.inuse), inuse0, 'the processes\' and mappings\' slab objects are all given back');
    }),
    { numRuns: 60, seed: 14 },
  );
});
