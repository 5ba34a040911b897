/**
 * The real-guest side without a real guest: the v86 scenario checks, the real
 * timeline runner against a fake guest (order, `at` as not-before, errors kept in
 * events), and the model half of a differential run on the bundled v86 scenario.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadScenarioText, runScenario } from '../../src/scenario/runner.js';
import { ScenarioError } from '../../src/scenario/schema.js';
import { checkV86Scenario } from '../../src/integrations/v86/side.js';
import { runRealTimeline } from '../../src/integrations/real/runner.js';
import { runModelSide, diffRows, formatRealReport, entryText } from '../../src/integrations/real/diff.js';
import { eventsOfKind } from '../../src/actions/index.js';
import type { RealContext } from '../../src/actions/action.js';
import type { QmpCommand, QmpResponse } from '../../src/host/qmp.js';

const MiB = 2 ** 20;
const STANDARD = 'scenarios/real/v86-standard.yaml';
const standard = () => loadScenarioText(readFileSync(new URL(`../../../${STANDARD}`, import.meta.url), 'utf8'), STANDARD).base;
const scenario = (timeline: string, guest = 'memory: 128MiB') => loadScenarioText(`name: t\nguest: { ${guest} }\ntimeline:\n${timeline}`, 't.yaml').base;

function refused(f: () => void): string {
  try { f(); } catch (e) { assert.ok(e instanceof ScenarioError, String(e)); return e.message; }
  assert.fail('expected a ScenarioError');
}

test('v86 scenarios: memory, vcpus and model-only actions are refused before boot, naming the entry', () => {
  checkV86Scenario(standard(), STANDARD);
  assert.match(refused(() => checkV86Scenario(scenario('  - { at: 0s, action: snapshot }', 'memory: 4GiB'), 't.yaml')), /^t\.yaml: guest\.memory: the v86 real guest takes a multiple of 4MiB from 64MiB to 1GiB, got 4GiB/);
  assert.match(refused(() => checkV86Scenario(scenario('  - { at: 0s, action: snapshot }', 'memory: 128MiB, vcpus: 2'), 't.yaml')), /guest\.vcpus: v86 emulates one CPU/);
  assert.match(refused(() => checkV86Scenario(scenario('  - { at: 0s, action: snapshot }\n  - { at: 1s, action: drain_pcp }'), 't.yaml')), /^t\.yaml: timeline\[1\] \(drain_pcp at 1s\): runs only on model, not on the v86 real guest/);
  // and the other way round: the model refuses a real-only entry
  assert.match(refused(() => runScenario(scenario('  - { at: 0s, action: shell, cmd: "true" }'), { source: 't.yaml' })), /^t\.yaml: timeline\[0\] \(shell at 0s\): runs only on v86, qemu, not on the model guest/);
});

/** A real guest that is only a clock, a QMP log and a shell log. */
function fakeGuest(answer: (cmd: QmpCommand) => QmpResponse): RealContext & { calls: string[]; clock: number } {
  const g = {
    engine: 'v86' as const, ramSize: 128 * MiB, balloonTargetPages: null as number | null, calls: [] as string[], clock: 0,
    qmp: async (cmd: QmpCommand) => { g.calls.push(`${g.clock / 1e6}ms qmp ${cmd.execute}`); return answer(cmd); },
    shell: async (cmd: string) => { g.calls.push(`${g.clock / 1e6}ms shell ${cmd}`); g.clock += 5e6; return { output: 'hi\n', status: cmd === 'false' ? 1 : 0 }; },
    now: () => g.clock,
    sleep: async (ns: number) => { g.clock += ns; },
    waitUntil: async (cond: () => boolean | Promise<boolean>, timeoutNs: number) => {
      const start = g.clock;
      while (!(await cond())) { if (g.clock - start >= timeoutNs) return { reached: false, waited_ns: g.clock - start }; g.clock += 50e6; }
      return { reached: true, waited_ns: g.clock - start };
    },
    hostRssBytes: () => null,
  };
  return g;
}

test('the real timeline runs entries in order, each no earlier than its at; refusals and unreached waits are kept, not thrown', async () => {
  let actual = 128 * MiB;
  const g = fakeGuest((cmd) => {
    if (cmd.execute === 'balloon') return { return: {} };
    if (cmd.execute === 'query-balloon') { actual = Math.max(96 * MiB, actual - 8 * MiB); return { return: { actual } }; }
    return { error: { class: 'CommandNotFound', desc: `The command ${cmd.execute} has not been found` } };
  });
  const s = scenario([
    '  - { at: 100ms, action: balloon, value: 96MiB, wait: 10s }',
    '  - { at: 100ms, action: shell, cmd: "echo hi" }',
    '  - { at: 1s, action: balloon, value: 64MiB, wait: 200ms }',
    '  - { at: 1s, action: guest_stats }',
    '  - { at: 2s, action: shell, cmd: "false" }',
  ].join('\n'));
  const r = await runRealTimeline(s, g);
  assert.deepEqual(r.events.map((e) => e.kind), ['balloon', 'shell', 'balloon', 'guest_stats', 'shell']);
  assert.equal(r.events[0]!.t_ns, 100e6, 'the first entry waits for its at');
  assert.ok(r.events[1]!.t_ns > r.events[0]!.t_ns, 'an entry due while the one before waits starts after it');
  const b0 = eventsOfKind(r.events as never, 'balloon')[0]!;
  assert.equal(b0.target_pages, 32 * MiB / 4096);
  assert.ok('wait' in b0 && b0.wait.reached);
  assert.equal(g.balloonTargetPages, 64 * MiB / 4096, 'the context remembers the last target for snapshots');
  assert.ok(!r.ok);
  assert.deepEqual(r.problems.map((p) => p.replace(/ in .*$/, '')), [
    'timeline[2] (balloon at 1s): the wait was not reached',
    'timeline[3] (guest_stats at 1s): QMP error {"error":{"class":"CommandNotFound","desc":"The command qom-get has not been found"}}',
  ]);
  assert.equal(entryText(r.events[4]), 'exit 1');
});

test('--diff model side: the standard v86 scenario on the model guest', () => {
  const s = standard();
  const m = runModelSide(s);
  const dev = m.device!;
  assert.equal(dev.needs_reset, null);
  assert.deepEqual(dev.features, ['STATS_VQ', 'FREE_PAGE_HINT', 'PAGE_POISON'].filter((f) => dev.features.includes(f)));
  // 32 MiB = 8192 PFNs each way, 256 PFNs per buffer (the driver's array)
  assert.deepEqual(dev.timeline_trace.inflate, { count: 32, total: 8192, min: 256, median: 256, max: 256 });
  assert.equal(dev.timeline_trace.deflate.total, 8192);
  assert.equal(m.doc.vmstat.balloon_inflate, dev.counters.inflatePfns);
  assert.equal(m.doc.vmstat.balloon_deflate, dev.counters.deflatePfns);
  assert.equal(dev.actual_bytes, 128 * MiB);
  assert.equal(m.memtotal_start_kib - m.probes[0]!.MemTotal!, 32 * 1024, 'no DEFLATE_ON_OOM: MemTotal drops by the balloon');
  assert.equal(m.probes[5]!.MemTotal, m.memtotal_start_kib);
  assert.deepEqual(dev.trace.stats_tags, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'a 6.1 driver sends tags 0-9');
  const rounds = dev.timeline_trace.hint_rounds;
  assert.deepEqual(rounds.map((x) => x.echoed), [[0x80000000, 0], [0x80000001, 0], [0x80000002, 0]]);
  assert.ok(rounds.every((x) => x.stop && x.ranges.length > 0));
  assert.ok(eventsOfKind(m.doc.events, 'free_page_hint').filter((e) => e.command === 'start').every((e) => 'wait' in e && e.wait.reached));
  const skipped = eventsOfKind(m.doc.events, 'skipped');
  assert.deepEqual(skipped.map((e) => e.action), ['shell'], 'the model records the real-only entry as skipped');
  // The table renders with the model against itself: every row equal.
  const asReal = { engine: 'v86' as const, scenario: s.name, memory_bytes: s.guest.memory, device: m.device,
    timeline: { engine: 'v86' as const, events: m.doc.events, probes: m.probes, ok: true, problems: [], timeline_ns: m.doc.duration_ns },
    guest: { vmstat: m.doc.vmstat, meminfo: m.meminfo, memtotal_start_kib: m.memtotal_start_kib }, timings: { boot_ms: 0, timeline_ms: 0, total_ms: 0 } };
  const rows = diffRows(asReal, m).filter((r) => r.what !== 'timeline time');
  assert.ok(rows.every((r) => r.delta === '=' || r.delta === ''), JSON.stringify(rows.filter((r) => r.delta !== '=' && r.delta !== '')));
  assert.match(formatRealReport(asReal, m), /\| inflate PFNs per buffer +\| 32 bufs, 8192 total \(min 256 \/ median 256 \/ max 256\)/);
});
