/**
 * Processes by virtual index: each process_fault is a mapping faulted in address order,
 * pages keep their place in it through migration, splits and collapses, and
 * process_free with order virtual picks 4 KiB candidates in ascending virtual address
 * order exactly as the real guest's bl-mem does (scripts/real-guest/qemu/bl-mem.c).
 * A partial unmap of a THP splits its PMD and queues it for the deferred split; the
 * deferred split shrinker frees the unmapped subpages. madvise is per mapping.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createGuest, defaultGuestConfig } from '../../src/guest/guest.js';
import { createVm } from '../../src/machine/machine.js';
import {
  type Process, getProcess, mmapAnon, faultAnonPages, unmapAnonPages, unmapVirtualPages, virtualCandidates, shareOf, exitProcess,
  processRss, followPage, walkPageTables, HPAGE_PMD_NR,
} from '../../src/guest/mm/process.js';
import { deferredSplitScan } from '../../src/guest/mm/huge_memory.js';
import { khugepagedScan } from '../../src/guest/mm/khugepaged.js';
import { compactMemory } from '../../src/guest/mm/compaction.js';
import { checkPgdat } from '../../src/guest/mm/check.js';
import { Owner, PG, pageFlags, pageOwner } from '../../src/guest/mm/memmap.js';
import { zonePcpCount } from '../../src/guest/mm/page_alloc.js';
import { globalZonePageState } from '../../src/guest/mm/vmstat.js';
import { NodeStat, VmEvent, ZoneStat } from '../../src/guest/mm/vmstat_items.js';
import { physPfn } from '../../src/guest/mm/layout.js';
import { createSplitmix64 } from '../../src/sim/rng.js';
import { loadScenarioText, runScenario } from '../../src/scenario/runner.js';
import { ScenarioError } from '../../src/scenario/schema.js';
import { eventsOfKind } from '../../src/actions/index.js';
import type { PgData } from '../../src/guest/mm/mmzone.js';

const MiB = 1024 * 1024;

function smallGuest(memory = 256 * MiB, thp: 'always' | 'madvise' | 'never' = 'never') {
  const g = createGuest(defaultGuestConfig({ memoryBytes: memory }));
  g.pgdat.sysctl.thp.enabled = thp;
  return g;
}

/** A mapping as process_fault (bl-mem) makes it: 2 MiB-aligned, guard pages either side. */
const mapping = (pg: PgData, p: Process, pages: number, advice: 'hugepage' | 'nohugepage' | 'default' = 'default') => mmapAnon(pg, p, pages, advice, { align: HPAGE_PMD_NR, guard: true })!.vma;
const mapped = (p: Process, vpns: ArrayLike<number>) => Array.from(vpns, (v) => followPage(p, v) >= 0);
const freeWithPcp = (pg: PgData) => globalZonePageState(pg, ZoneStat.nr_free_pages) + pg.zones.reduce((n, z) => n + zonePcpCount(z), 0);

test('N = 10, K = 5, random:1 frees candidates 5 8 1 3 7, as bl-mem does (through the action)', () => {
  let cand: Float64Array | null = null;
  let held: boolean[] = [];
  const s = loadScenarioText([
    'name: v', 'guest: { memory: 256MiB, thp: never }', 'timeline:',
    '  - { at: 0s, action: process_fault, pid: 7, size: 40KiB }',
    '  - { at: 1s, action: process_free, pid: 7, order: virtual, pick: random, seed: 1, fraction: 0.5 }',
  ].join('\n'), 'v.yaml').base;
  const { doc } = runScenario(s, {
    check: true,
    onEntry: (i, _e, vm) => {
      const pg = vm.guest.pgdat;
      if (i === 0) cand = virtualCandidates(pg.tasks.procs.get(7)!);
      else held = mapped(pg.tasks.procs.get(7)!, cand!);
    },
  });
  assert.equal(cand!.length, 10);
  assert.deepEqual(held.flatMap((h, i) => (h ? [] : [i])), [1, 3, 5, 7, 8]);
  const [ev] = eventsOfKind(doc.events, 'process_free');
  // rss: the five left and the heap page of bl-mem's kept[] (not a candidate)
  assert.deepEqual([ev!.freed_pages, ev!.candidates, ev!.rss_pages], [5, 10, 6]);
});

test('alternate, lowest and highest over the candidates with K = round-half-up(N x fraction), exactly', () => {
  assert.deepEqual([shareOf(5, 0.5), shareOf(3, 0.5), shareOf(10, 0.15), shareOf(7, 0.333333333), shareOf(891392, 0.5), shareOf(4, 1), shareOf(4, 0)], [3, 2, 2, 2, 445696, 4, 0]);
  for (const [pick, freed] of [['alternate', [0, 2, 4]], ['lowest', [0, 1, 2]], ['highest', [2, 3, 4]]] as const) {
    const g = smallGuest();
    const p = getProcess(g.procs, 1);
    faultAnonPages(g.pgdat, p, 5, mapping(g.pgdat, p, 5));
    const cand = virtualCandidates(p);
    const r = unmapVirtualPages(g.pgdat, p, 0.5, { pick });
    assert.deepEqual(r, { freed: 3, candidates: 5 });
    assert.deepEqual(mapped(p, cand).flatMap((h, i) => (h ? [] : [i])), freed, pick);
    assert.equal(p.rssAnon, 2);
    assert.equal(checkPgdat(g.pgdat), null);
  }
});

test('candidates are in ascending virtual address order: the newest mapping lowest (top-down mmap), each mapping in address order', () => {
  const g = smallGuest();
  const p = getProcess(g.procs, 1);
  const a = mapping(g.pgdat, p, 5), b = mapping(g.pgdat, p, 2);
  assert.ok(b.end < a.start, 'the second mapping lies below the first');
  faultAnonPages(g.pgdat, p, 3, a);
  faultAnonPages(g.pgdat, p, 2, b);
  faultAnonPages(g.pgdat, p, 2, a);  // a's next two pages
  assert.deepEqual([...virtualCandidates(p)], [b.start, b.start + 1, a.start, a.start + 1, a.start + 2, a.start + 3, a.start + 4], 'b first, then a');
  assert.equal(checkPgdat(g.pgdat), null);
});

test('a page keeps its virtual place when compaction migrates it (the host sees the same contents in the same order)', () => {
  const vm = createVm({ guest: defaultGuestConfig({ memoryBytes: 512 * MiB }), balloon: null, memPrealloc: false });
  const pg = vm.guest.pgdat;
  pg.sysctl.thp.enabled = 'never';
  const keep = getProcess(pg.tasks.procs, 1), gone = getProcess(pg.tasks.procs, 2);
  const vk = mapping(pg, keep, 20000), vg = mapping(pg, gone, 20000);
  for (let i = 0; i < 20000; i++) { faultAnonPages(pg, keep, 1, vk); faultAnonPages(pg, gone, 1, vg); }
  exitProcess(pg, pg.tasks.procs, gone);
  const pfns = () => [...virtualCandidates(keep)].map((v) => followPage(keep, v));
  const contents = () => pfns().map((pfn) => vm.host.ram.gen[physPfn(vm.guest.layout, pfn)]);
  const before = contents(), pfns0 = pfns();
  assert.equal(new Set(before).size, 20000, 'every page holds its own contents');
  const rep = compactMemory(pg);
  assert.ok(rep.migrated > 1000, `compaction moved pages (${rep.migrated})`);
  assert.notDeepEqual(pfns(), pfns0, 'the pages are elsewhere now');
  assert.deepEqual(contents(), before, 'in the same virtual order');
  assert.equal(checkPgdat(pg), null);
});

test('unmapping part of a THP splits its PMD and queues it; memory stays allocated until the deferred split shrinker runs', () => {
  const g = smallGuest(512 * MiB, 'always');
  const pg = g.pgdat;
  const p = getProcess(g.procs, 1);
  faultAnonPages(pg, p, 2048, mapping(pg, p, 2048));
  assert.equal(pg.events[VmEvent.thp_fault_alloc], 4);
  const free0 = freeWithPcp(pg), anon0 = pg.nodeStat[NodeStat.nr_anon_pages]!;
  const cand = virtualCandidates(p);
  assert.equal(cand.length, 2048, 'a THP is 512 candidates');
  assert.deepEqual(unmapVirtualPages(pg, p, 0.5, { pick: 'alternate' }), { freed: 1024, candidates: 2048 });
  assert.equal(p.rssAnon, 1024);
  assert.equal(pg.events[VmEvent.thp_split_pmd], 4);
  assert.equal(pg.events[VmEvent.thp_deferred_split_page], 4);
  assert.equal(pg.deferredSplitQueue.thps.size, 4);
  assert.equal(pg.nodeStat[NodeStat.nr_anon_transparent_hugepages], 0, 'no longer PMD-mapped: AnonHugePages 0');
  assert.equal(pg.nodeStat[NodeStat.nr_anon_pages], anon0 - 1024, 'AnonPages counts mapped pages');
  assert.equal(freeWithPcp(pg), free0, 'nothing went back to the allocator yet');
  assert.equal(processRss(p), 1024);
  assert.equal(checkPgdat(pg), null);
  // the survivors are still candidates, in order; the unmapped ones are not
  assert.deepEqual([...virtualCandidates(p)], [...cand].filter((_, i) => i % 2 === 1));
  const survivors = [...virtualCandidates(p)].map((v) => followPage(p, v));
  // the shrinker's scan splits them and frees the unmapped subpages
  assert.equal(deferredSplitScan(pg, 128), 4);
  assert.equal(pg.events[VmEvent.thp_split_page], 4);
  assert.equal(pg.deferredSplitQueue.thps.size, 0);
  assert.equal(freeWithPcp(pg), free0 + 1024);
  assert.equal(pg.nodeStat[NodeStat.nr_anon_pages], anon0 - 1024);
  assert.equal(p.rssAnon, 1024);
  const after = [...virtualCandidates(p)];
  assert.deepEqual(after, [...cand].filter((_, i) => i % 2 === 1), 'the split keeps every page in its place');
  assert.deepEqual(after.map((v) => followPage(p, v)), survivors, 'and in the same page frames');
  for (const pfn of survivors) assert.equal(pageFlags(pg.map, pfn) & (PG.head | PG.tail), 0, 'base pages now');
  assert.equal(deferredSplitScan(pg, 128), -1, 'SHRINK_STOP on an empty queue');
  assert.equal(checkPgdat(pg), null);
  assert.equal(exitProcess(pg, g.procs, p), 1024);
  assert.equal(pg.nodeStat[NodeStat.nr_anon_pages], anon0 - 2048);
  assert.equal(checkPgdat(pg), null);
});

test('unmapping every subpage of a THP frees it whole; exit frees a queued THP whole; random picks with a seed', () => {
  const g = smallGuest(512 * MiB, 'always');
  const pg = g.pgdat;
  const p = getProcess(g.procs, 1);
  faultAnonPages(pg, p, 2048, mapping(pg, p, 2048));
  const heads = [...virtualCandidates(p)].filter((_, i) => i % 512 === 0).map((v) => followPage(p, v));
  const free0 = freeWithPcp(pg);
  assert.deepEqual(unmapVirtualPages(pg, p, 0.25, { pick: 'lowest' }), { freed: 512, candidates: 2048 });
  assert.equal(pageOwner(pg.map, heads[0]!) === Owner.anon, false, 'the first THP is gone');
  assert.equal(pg.deferredSplitQueue.thps.size, 0);
  assert.equal(freeWithPcp(pg), free0 + 512);
  assert.equal(pg.events[VmEvent.thp_split_pmd], 1, 'its PMD was split by the first 4 KiB');
  // now a seeded random share of the rest: some THPs get partly unmapped
  const r = unmapVirtualPages(pg, p, 0.1, { pick: 'random', gen: createSplitmix64(42) });
  assert.deepEqual(r, { freed: 154, candidates: 1536 });
  assert.equal(pg.deferredSplitQueue.thps.size, 3);
  assert.equal(checkPgdat(pg), null);
  // its page tables: the PGD, a PUD and a PMD table, and a (deposited or PTE) table per 2 MiB
  assert.equal(p.mm.nrPgtables, 3 + 4);
  assert.equal(exitProcess(pg, g.procs, p), 1536 - 154, 'exit unmaps what is left');
  assert.equal(pg.deferredSplitQueue.thps.size, 0);
  assert.equal(freeWithPcp(pg), free0 + 2048 + 7, 'its memory and its page tables');
  assert.equal(checkPgdat(pg), null);
  // physical order still unmaps a queued THP whole
  const q = getProcess(g.procs, 2);
  faultAnonPages(pg, q, 1024, mapping(pg, q, 1024));
  unmapVirtualPages(pg, q, 0.5, { pick: 'alternate' });
  assert.deepEqual(unmapAnonPages(pg, g.rng, q, 1, 'lowest'), { freed: 512, candidates: 2 });
  assert.equal(q.rssAnon, 0);
  assert.equal(checkPgdat(pg), null);
});

test('under memory pressure reclaim runs the deferred split shrinker (a THP-backed process freed by virtual index)', () => {
  const s = loadScenarioText([
    'name: p', 'guest: { memory: 512MiB }', 'timeline:',
    '  - { at: 0s, action: process_fault, pid: 1, size: 256MiB }',
    '  - { at: 1s, action: process_free, pid: 1, order: virtual, pick: alternate, fraction: 0.5 }',
    '  - { at: 2s, action: sysctl, name: vm.nr_hugepages, value: 100000 }',
  ].join('\n'), 'p.yaml').base;
  const { doc } = runScenario(s, { check: true });
  const [f, h] = [eventsOfKind(doc.events, 'process_free')[0]!, eventsOfKind(doc.events, 'sysctl')[0]!];
  assert.deepEqual([f.freed_pages, f.candidates], [32768, 65536]);
  assert.ok(doc.vmstat.thp_split_page! > 0 && ((h as { thp_splits?: number }).thp_splits ?? 0) > 0, 'the pool\'s allocations split queued THPs');
  assert.equal(doc.vmstat.thp_deferred_split_page, 128);
});

test('madvise is per mapping: hugepage, nohugepage and default; khugepaged collapses only where the mapping allows', () => {
  const g = smallGuest(512 * MiB, 'always');
  const pg = g.pgdat;
  const p = getProcess(g.procs, 1);
  faultAnonPages(pg, p, 1024, mapping(pg, p, 1024, 'nohugepage'));
  assert.equal(pg.events[VmEvent.thp_fault_alloc], 0, 'VM_NOHUGEPAGE: no THP even with enabled=always');
  faultAnonPages(pg, p, 1024, mapping(pg, p, 1024));
  assert.equal(pg.events[VmEvent.thp_fault_alloc], 2);
  // enabled=madvise: only MADV_HUGEPAGE mappings, whose first touch of an aligned 2 MiB takes a THP
  pg.sysctl.thp.enabled = 'madvise';
  const q = getProcess(g.procs, 2);
  const plain = mapping(pg, q, 2048), huge = mapping(pg, q, 2048, 'hugepage');
  for (let i = 0; i < 8; i++) { faultAnonPages(pg, q, 256, plain); faultAnonPages(pg, q, 256, huge); }
  assert.equal(pg.events[VmEvent.thp_fault_alloc], 2 + 4, 'the hugepage mapping: a THP per 2 MiB, at its first 4 KiB');
  // small pages faulted while THP was off are collapsed by khugepaged, only in the MADV_HUGEPAGE mapping
  pg.sysctl.thp.enabled = 'never';
  const r = getProcess(g.procs, 3);
  const plain2 = mapping(pg, r, 1024), huge2 = mapping(pg, r, 1024, 'hugepage');
  faultAnonPages(pg, r, 1024, plain2);
  faultAnonPages(pg, r, 1024, huge2);
  pg.sysctl.thp.enabled = 'madvise';
  const c0 = pg.events[VmEvent.thp_collapse_alloc]!;
  khugepagedScan(pg);
  khugepagedScan(pg);
  assert.equal(pg.events[VmEvent.thp_collapse_alloc]! - c0, 2, 'the two ranges of the hugepage mapping');
  walkPageTables(r, (vpn, _e, hugePmd) => { if (hugePmd) assert.ok(vpn >= huge2.start && vpn < huge2.end, 'a collapsed THP sits in the MADV_HUGEPAGE mapping'); });
  assert.equal(checkPgdat(pg), null);
});

function refusal(entry: string): string {
  try {
    loadScenarioText(`name: r\nguest: { memory: 256MiB }\ntimeline:\n${entry}\n`, 'r.yaml');
  } catch (e) {
    assert.ok(e instanceof ScenarioError, String(e));
    return e.message;
  }
  assert.fail('expected a ScenarioError');
}

test('the fields: madvise or madvise_hugepage, seed only (and always) for virtual random, nine decimals for virtual', () => {
  assert.match(refusal('  - { at: 0s, action: process_fault, pid: 1, size: 1MiB, madvise: nohugepage, madvise_hugepage: true }'), /^r\.yaml: timeline\[0\]\.madvise_hugepage: give madvise \(nohugepage\) or madvise_hugepage, not both$/);
  assert.match(refusal('  - { at: 0s, action: process_fault, pid: 1, size: 1MiB, madvise: sometimes }'), /^r\.yaml: timeline\[0\]\.madvise: /);
  assert.match(refusal('  - { at: 0s, action: process_free, pid: 1, order: virtual, pick: random }'), /^r\.yaml: timeline\[0\]\.seed: order virtual with pick random needs a seed/);
  assert.match(refusal('  - { at: 0s, action: process_free, pid: 1, pick: random, seed: 3 }'), /^r\.yaml: timeline\[0\]\.seed: seed is used only by pick random with order virtual/);
  assert.match(refusal('  - { at: 0s, action: process_free, pid: 1, order: virtual, fraction: 0.1234567891 }'), /^r\.yaml: timeline\[0\]\.fraction: order virtual takes a fraction with at most nine decimals/);
  const s = loadScenarioText('name: r\nguest: { memory: 256MiB, thp: madvise }\ntimeline:\n  - { at: 0s, action: process_fault, pid: 1, size: 4MiB, madvise_hugepage: true }\n  - { at: 0s, action: process_fault, pid: 1, size: 4MiB }\n', 'r.yaml').base;
  const faults = eventsOfKind(runScenario(s).doc.events, 'process_fault');
  assert.deepEqual(faults.map((e) => e.thp_fault_alloc), [2, 0], 'madvise_hugepage: true is hugepage, for that mapping only');
});
