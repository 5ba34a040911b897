/**
 * What runs between a task's allocations (bl_alloc's loop, cond_resched after each):
 * kswapd as 6.1's kswapd() does it, kcompactd's proactive run in slices, and the
 * tracepoints that show both; bl-mem's one madvise a page.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadScenarioText, runScenario } from '../../src/scenario/runner.js';
import { eventsOfKind } from '../../src/actions/index.js';
import { COSTS } from '../../src/sim/cost.js';
import { schedSliceNs } from '../../src/guest/sched.js';
import { gfpTraceNames, GFP_HIGHUSER_MOVABLE, GFP_KERNEL, GFP_TRANSHUGE, GFP_TRANSHUGE_LIGHT, __GFP_NOWARN, __GFP_ZERO } from '../../src/guest/mm/gfp.js';

const scenario = (timeline: string[], extra = '') => loadScenarioText(`name: t\nguest: { memory: 1GiB, vcpus: 1 }\n${extra}balloon: false\ntimeline:\n${timeline.join('\n')}\n`, 't.yaml').base;

/** Runs with the tracepoints on; the lines as comm, time (ns), event, fields. */
function traced(s: ReturnType<typeof scenario>) {
  const lines: Array<{ comm: string; t: number; event: string; fields: string }> = [];
  const r = runScenario(s, { onBoot: (vm) => { const pg = vm.guest.pgdat; pg.trace = (comm, event, fields) => { lines.push({ comm, t: pg.nowNs(), event, fields }); }; } });
  return { ...r, lines };
}

const fragmented = [
  '  - { at: 0s, action: process_fault, pid: 100, size: 640MiB, madvise: nohugepage }',
  '  - { at: 0s, action: process_free, pid: 100, fraction: 0.5, pick: alternate, order: virtual }',
];

test('schedSliceNs: sched_latency (6 ms, times 1 + ilog2 of the cpus up to 8) shared by two runnable tasks', () => {
  assert.deepEqual([1, 2, 4, 8, 64].map(schedSliceNs), [3e6, 6e6, 9e6, 12e6, 12e6]);
});

test('alloc_pages runs on the vCPU: kswapd runs between the requests that took the slow path, and the timeline waits for the last', () => {
  const { doc, lines } = traced(scenario([...fragmented,
    '  - { at: 0s, action: alloc_pages, count: 280, order: 9, gfp: GFP_HIGHUSER_MOVABLE|__GFP_NOWARN }',
    '  - { at: 0s, action: snapshot }',
  ]));
  const [a] = eventsOfKind(doc.events, 'alloc_pages');
  assert.ok(a!.ns! > 0, `the requests took ${a!.ns} ns`);
  const [snap] = eventsOfKind(doc.events, 'snapshot');
  assert.equal(snap!.t_ns, a!.t_ns + a!.ns!, 'the snapshot waited for the allocations');
  // each request that went to the slow path woke kswapd, which ran before the next request
  const order = lines.filter((l) => l.event === 'mm_compaction_try_to_compact_pages' || l.event === 'mm_vmscan_kswapd_wake').map((l) => l.event[3]);
  const between = order.join('').match(/cv/g)?.length ?? 0; // a compaction attempt, then kswapd
  assert.ok(between > 50, `kswapd ran after ${between} compaction attempts`);
  // nothing to reclaim (no page cache, no swap): kswapd never gives order 9 up, so it
  // never wakes kcompactd for it (6.1 kswapd(): reclaim_order == alloc_order)
  assert.equal(lines.filter((l) => l.event === 'mm_compaction_wakeup_kcompactd').length, 0);
  assert.equal(doc.vmstat.compact_daemon_wake, 0);
});

test('proactive compaction runs in kcompactd slices of about sched_slice, taking turns with the task on the vCPU', () => {
  const { doc, lines } = traced(scenario([...fragmented,
    '  - { at: 0s, action: sysctl, name: vm.compaction_proactiveness, value: 100 }',
    '  - { at: 0s, action: process_fault, pid: 101, size: 64MiB, madvise: nohugepage }',
  ]));
  const begin = lines.find((l) => l.comm === 'kcompactd0' && l.event === 'mm_compaction_begin' && /zone_start=0x1000 /.test(l.fields));
  const end = lines.find((l) => l.comm === 'kcompactd0' && l.event === 'mm_compaction_end' && /zone_start=0x1000 /.test(l.fields));
  assert.ok(begin && end, 'a proactive run of DMA32');
  // one slice's effects happen at one instant: a run that ends later than it began
  // yielded, and went on in a later slice
  assert.ok(end.t > begin.t + schedSliceNs(1) / 2, `the run went on from ${begin.t} to ${end.t} ns`);
  assert.ok(doc.vmstat.compact_daemon_migrate_scanned! > 0);
  // the task's fault began while the run went on (it took turns with the run)
  const [, f] = eventsOfKind(doc.events, 'process_fault');
  assert.ok(f!.t_ns < end.t, `the fault began at ${f!.t_ns}, the run ended at ${end.t}`);
});

test('process_free by virtual address costs one madvise a page: madvisePage under KVM, tcgMadvisePage under TCG', () => {
  for (const [accel, ns] of [['kvm', COSTS.madvisePage.ns], ['tcg', COSTS.tcgMadvisePage.ns]] as const) {
    const { doc } = runScenario(scenario([
      '  - { at: 0s, action: process_fault, pid: 100, size: 64MiB, madvise: nohugepage }',
      '  - { at: 0s, action: process_free, pid: 100, fraction: 0.5, pick: alternate, order: virtual }',
    ], `host: { accel: ${accel} }\n`));
    const [fr] = eventsOfKind(doc.events, 'process_free');
    assert.equal(fr!.freed_pages, 8192);
    assert.equal(fr!.elapsed_ns, 8192 * ns, accel);
  }
});

test('gfpTraceNames prints a mask as the tracepoints do: composite masks first, then the flags left', () => {
  assert.equal(gfpTraceNames(GFP_HIGHUSER_MOVABLE | __GFP_NOWARN), 'GFP_HIGHUSER_MOVABLE|__GFP_NOWARN');
  assert.equal(gfpTraceNames(GFP_KERNEL | __GFP_ZERO), 'GFP_KERNEL|__GFP_ZERO');
  assert.equal(gfpTraceNames(GFP_TRANSHUGE), 'GFP_TRANSHUGE');
  assert.equal(gfpTraceNames(GFP_TRANSHUGE_LIGHT), 'GFP_TRANSHUGE_LIGHT');
  assert.equal(gfpTraceNames(0), '0');
});
