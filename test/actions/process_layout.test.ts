/**
 * Where a process's pages lie physically (process_layout, bl-mem layout on the qemu
 * guest), and bl-mem's bookkeeping array (kept[]): mmapped by glibc from 128 KiB on, its
 * pages fault between the mapping's, one every 4096, as the real guest's pagemap shows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadScenarioText, runScenario } from '../../src/scenario/runner.js';
import { eventsOfKind } from '../../src/actions/index.js';
import { processLayout } from '../../src/actions/process.js';
import { createGuest, defaultGuestConfig } from '../../src/guest/guest.js';
import { forkProcess, mmapAnon, faultRange, followPage, virtualCandidates, unmapVirtualPages } from '../../src/guest/mm/process.js';

const scenario = (timeline: string[], memory = '1GiB') => loadScenarioText(`name: t\nguest: { memory: ${memory}, vcpus: 1 }\nballoon: false\ntimeline:\n${timeline.join('\n')}\n`, 't.yaml').base;

test('processLayout: runs of pfns that advance as the virtual pages do, by length; pfn parity; a freed page is no candidate', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 256 * 2 ** 20 }));
  const proc = forkProcess(g.pgdat, 7, 3);
  const m = mmapAnon(g.pgdat, proc, 2048, 'nohugepage', { align: 512 })!;
  assert.equal(faultRange(g.pgdat, proc, m.vma, m.start, 2048), 2048);
  const pfns = Array.from({ length: 2048 }, (_, i) => followPage(proc, m.start + i));
  // count the runs the definition gives, from the pfns themselves
  let runs = 1;
  for (let i = 1; i < pfns.length; i++) if (pfns[i] !== pfns[i - 1]! + 1) runs++;
  const l = processLayout(proc);
  assert.equal(l.present_pages, 2048);
  assert.equal(l.pfn_runs, runs);
  assert.equal(l.runs_1 + l.runs_2_63 + l.runs_64_511 + l.runs_512_4095 + l.runs_4096, runs);
  assert.equal(l.even_pfns, pfns.filter((p) => p % 2 === 0).length);
  assert.equal(l.even_pfns + l.odd_pfns, 2048);
  // every other page freed: the rest keep their distance 2 apart, so runs do not break
  unmapVirtualPages(g.pgdat, proc, 0.5, { pick: 'alternate' });
  const after = processLayout(proc);
  assert.equal(after.present_pages, 1024);
  // the odd pages of a run are still a run (the distance between virtual pages counts)
  let left = 1;
  for (let i = 3; i < 2048; i += 2) if (pfns[i] !== pfns[i - 2]! + 2) left++;
  assert.equal(after.pfn_runs, left);
  assert.ok(left < 1024, 'the guest gave some pages in runs');
  assert.equal(after.odd_pfns + after.even_pfns, 1024);
});

test('process_fault of 640 MiB: bl-mem\'s kept[] is an mmapped chunk of 41 pages, its page j faulted right after the mapping\'s page 4096 j - 16; not a candidate of process_free', () => {
  let proc: ReturnType<typeof forkProcess> | undefined;
  // kept[] page j took the pfn after the mapping's page 4096 j - 16 (the same per-cpu
  // list), so the mapping's run breaks there: counted when the fill is done
  let between = 0, bookkeepingPages = 0;
  const kept = Math.ceil((163856 + 8) / 4096);
  const { doc } = runScenario(scenario([
    '  - { at: 0s, action: process_fault, pid: 100, size: 640MiB, madvise: nohugepage }',
    '  - { at: 0s, action: process_layout, pid: 100 }',
    '  - { at: 0s, action: process_free, pid: 100, fraction: 0.5, pick: alternate, order: virtual }',
    '  - { at: 0s, action: process_layout, pid: 100 }',
  ]), { onEntry: (i, _ev, vm) => {
    if (i !== 1) return;
    const p = proc = vm.guest.procs.get(100)!;
    const own = p.mm.vmas.filter((v) => v.bookkeeping === true);
    assert.equal(own.length, 1);
    bookkeepingPages = own[0]!.end - own[0]!.start;
    const main = p.mm.vmas.find((v) => v.bookkeeping !== true && v.end - v.start === 163840)!;
    for (let j = 1; j < kept; j++) {
      const at = main.start + 4096 * j - 16;
      const keptPfn = followPage(p, own[0]!.start + j);
      if (keptPfn === followPage(p, at) + 1 && followPage(p, at + 1) === keptPfn + 1) between++;
    }
  } });
  const [f] = eventsOfKind(doc.events, 'process_fault');
  const pages = 163840;
  // request2size(163840) = 163856 bytes; the mmapped chunk is that plus its 8-byte header, in pages
  assert.equal(kept, 41);
  assert.equal(bookkeepingPages, kept);
  assert.equal(f!.faulted_pages, pages);
  assert.equal(f!.rss_pages, pages + kept, 'rss takes in kept[] (bl-mem\'s RssAnon does)');
  assert.ok(between >= kept - 3, `kept[] pages between the mapping's: ${between} of ${kept - 1}`);
  const p = proc!;
  const [filled, half] = eventsOfKind(doc.events, 'process_layout');
  assert.equal(filled!.present_pages, pages, 'kept[] is not among the pages bl-mem layout walks');
  assert.ok(filled!.runs_4096 >= 36, `runs of 4096 or more: ${filled!.runs_4096}`);
  const [fr] = eventsOfKind(doc.events, 'process_free');
  assert.equal(fr!.candidates, pages, 'process_free\'s candidates are the mapping\'s pages only');
  assert.equal(fr!.freed_pages, pages / 2);
  assert.equal(half!.present_pages, pages / 2);
  // the half left has both parities: each kept[] page shifts the mapping's parity
  assert.ok(Math.abs(half!.even_pfns - half!.odd_pfns) < pages / 8, `even ${half!.even_pfns} odd ${half!.odd_pfns}`);
  assert.equal(virtualCandidates(p).length, pages / 2);
});

test('process_fault of 64 MiB: kept[] comes from the heap, cleared by calloc before the loop; the mapping\'s pages follow each other', () => {
  let proc: ReturnType<typeof forkProcess> | undefined;
  const { doc } = runScenario(scenario([
    '  - { at: 0s, action: process_fault, pid: 100, size: 64MiB, madvise: nohugepage }',
    '  - { at: 0s, action: process_layout, pid: 100 }',
  ]), { onEntry: (i, _ev, vm) => { if (i === 0) proc = vm.guest.procs.get(100); } });
  const [f] = eventsOfKind(doc.events, 'process_fault');
  assert.equal(f!.rss_pages, 16384 + 4, 'four heap pages for 16 KiB of kept[]');
  const heap = proc!.mm.vmas.find((v) => v.kind === 'brk')!;
  assert.equal(heap.bookkeeping, true);
  const [l] = eventsOfKind(doc.events, 'process_layout');
  assert.equal(l!.present_pages, 16384);
  // no kept[] fault in the loop: whatever breaks the runs, none is at 4096 j - 15
  assert.ok(l!.pfn_runs < 16384 / 4096 + l!.runs_1 + l!.runs_2_63 + 2, JSON.stringify(l));
});

test('process_fault of 640 MiB with THP: kept[]\'s faults come after the huge page they follow; every 2 MiB is a THP', () => {
  const { doc } = runScenario(scenario([
    '  - { at: 0s, action: process_fault, pid: 100, size: 640MiB, madvise: hugepage }',
    '  - { at: 0s, action: process_layout, pid: 100 }',
  ]));
  const [f] = eventsOfKind(doc.events, 'process_fault');
  assert.equal(f!.faulted_pages, 163840);
  assert.equal(f!.thp_fault_alloc, 320);
  assert.equal(f!.rss_pages, 163840 + 41);
  const [l] = eventsOfKind(doc.events, 'process_layout');
  assert.equal(l!.present_pages, 163840);
  assert.ok(l!.runs_1 === 0 && l!.runs_2_63 === 0 && l!.runs_64_511 === 0, 'runs of whole THPs');
});

test('process_layout refuses a process that does not exist', () => {
  assert.throws(() => runScenario(scenario(['  - { at: 0s, action: process_layout, pid: 9 }'])), /no process 9/);
});
