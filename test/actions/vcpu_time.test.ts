/**
 * Actions that fault or free large amounts take virtual time on the process's vCPU
 * (src/guest/sched.ts) and hold the timeline, as the real side's bl-mem does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadScenarioText, runScenario } from '../../src/scenario/runner.js';
import { COSTS } from '../../src/sim/cost.js';
import { eventsOfKind } from '../../src/actions/index.js';

const scenario = (timeline: string[], guest: string) => loadScenarioText(`name: t\nguest: { ${guest} }\nballoon: false\ntimeline:\n${timeline.join('\n')}\n`, 't.yaml').base;

test('process_fault of 64 MiB in 4 KiB pages takes its faults\' time on the vCPU; the next entry starts when it is done', () => {
  const { doc } = runScenario(scenario([
    '  - { at: 1s, action: process_fault, pid: 10, size: 64MiB, madvise: nohugepage }',
    '  - { at: 1s, action: snapshot, label: after }',
    '  - { at: 2s, action: process_exit, pid: 10 }',
    '  - { at: 2s, action: snapshot, label: exited }',
  ], 'memory: 1GiB, vcpus: 1'));
  const [f] = eventsOfKind(doc.events, 'process_fault');
  const pages = 16384;
  const own = pages * (COSTS.pageFault.ns + COSTS.pageAllocFast.ns + COSTS.clearPage.ns);
  assert.equal(f!.faulted_pages, pages);
  assert.equal(f!.thp_fault_alloc, 0);
  // the page tables' allocations are on top of the faults (a few dozen pages): within 1 %
  assert.ok(f!.elapsed_ns! >= own && f!.elapsed_ns! <= own * 1.01, `elapsed ${f!.elapsed_ns} ns, faults ${own} ns`);
  const snaps = eventsOfKind(doc.events, 'snapshot');
  assert.equal(snaps[0]!.t_ns, 1e9 + f!.elapsed_ns!, 'the snapshot waited for the fault');
  const [x] = eventsOfKind(doc.events, 'process_exit');
  // and bl-mem's kept[]: 16 KiB from the heap, four pages
  assert.equal(x!.freed_pages, pages + 4);
  assert.equal(x!.elapsed_ns, (pages + 4) * COSTS.pageFree.ns);
  assert.equal(snaps[1]!.t_ns, 2e9 + x!.elapsed_ns!);
  assert.ok(Math.abs(doc.cpu.user_s - (f!.elapsed_ns! + x!.elapsed_ns!) / 1e9) < 1e-5, 'user time is the two actions\' time');
});

test('a fault under memory pressure is not atomic: kswapd runs between its 2 MiB bursts and takes vCPU time', () => {
  const timeline = [
    '  - { at: 0s, action: process_file, pid: 5, size: 200MiB }',
    '  - { at: 1s, action: process_fault, pid: 10, size: 100MiB, madvise: nohugepage }',
  ];
  const { doc } = runScenario(scenario(timeline, 'memory: 256MiB, vcpus: 1'));
  const [f] = eventsOfKind(doc.events, 'process_fault');
  assert.equal(f!.faulted_pages, 25600);
  assert.ok(doc.vmstat.pgsteal_kswapd! > 0, 'kswapd reclaimed page cache while the fault went on');
  assert.ok(doc.cpu.kthreads.kswapd0! > 0);
  // on one vCPU kswapd's time delays the fault
  const own = 25600 * (COSTS.pageFault.ns + COSTS.pageAllocFast.ns + COSTS.clearPage.ns);
  assert.ok(f!.elapsed_ns! > own, `${f!.elapsed_ns} ns for ${own} ns of faults`);
  assert.ok(doc.cpu.cpus[0]!.preemptions > 0, 'kswapd preempted the faulting task');
});

test('process_fault under TCG pays tcgClearPage and tcgPageFault: a 256 MiB THP fault about as long as the real guest measured (634-682 ms)', () => {
  const { doc } = runScenario(loadScenarioText('name: t\nguest: { memory: 1GiB, vcpus: 1 }\nhost: { accel: tcg }\nballoon: false\ntimeline:\n  - { at: 1s, action: process_fault, pid: 10, size: 256MiB, madvise: hugepage }\n', 't.yaml').base);
  const [f] = eventsOfKind(doc.events, 'process_fault');
  assert.equal(f!.thp_fault_alloc, 128);
  const ms = f!.elapsed_ns! / 1e6;
  assert.ok(ms > 600 && ms < 720, `${ms} ms`);
});
