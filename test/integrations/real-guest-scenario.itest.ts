/**
 * The standard v86 scenario (scenarios/real/v86-standard.yaml) on the real guest and,
 * for the differential, on the model: the key figures on both sides. Run with
 * `npm run test:real-guest`; skipped unless BALLOONLAB_REAL_GUEST=1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadScenarioText } from '../../src/scenario/runner.js';
import { checkV86Scenario, runV86Scenario } from '../../src/integrations/v86/side.js';
import { runModelSide, formatRealReport, diffRows } from '../../src/integrations/real/diff.js';
import { eventsOfKind, type ResultEvent } from '../../src/actions/index.js';

const SKIP = process.env.BALLOONLAB_REAL_GUEST === '1' ? false : 'real guest: run `npm run test:real-guest` (sets BALLOONLAB_REAL_GUEST=1)';
const MiB = 2 ** 20;

test('v86-standard on the real guest and the model: the guest\'s counters match the device\'s, three fresh hint rounds, no NEEDS_RESET', { timeout: 300_000, skip: SKIP }, async (t) => {
  const file = 'scenarios/real/v86-standard.yaml';
  const s = loadScenarioText(readFileSync(new URL(`../../../${file}`, import.meta.url), 'utf8'), file).base;
  checkV86Scenario(s, file);
  const real = await runV86Scenario(s);
  const model = runModelSide(s);
  const report = formatRealReport(real, model);
  t.diagnostic(`real guest: boot ${real.timings.boot_ms} ms, timeline ${real.timings.timeline_ms} ms; model ${model.wall_ms} ms`);
  assert.ok(real.timeline.ok, `${real.timeline.problems.join('\n')}\n${report}`);
  const sides = [
    { name: 'real', events: real.timeline.events as ResultEvent[], device: real.device, vmstat: real.guest.vmstat, probes: real.timeline.probes, memtotal0: real.guest.memtotal_start_kib },
    { name: 'model', events: model.doc.events, device: model.device!, vmstat: model.doc.vmstat, probes: model.probes, memtotal0: model.memtotal_start_kib },
  ];
  for (const side of sides) {
    const what = `${side.name}:\n${report}`;
    assert.equal(side.device.needs_reset, null, what);
    assert.equal(side.vmstat.balloon_inflate, side.device.counters.inflatePfns, `${side.name}: balloon_inflate = the device's inflate PFNs`);
    assert.equal(side.vmstat.balloon_deflate, side.device.counters.deflatePfns, `${side.name}: balloon_deflate = the device's deflate PFNs`);
    assert.equal(side.device.counters.inflatePfns, 32 * MiB / 4096, what);
    assert.equal(side.device.timeline_trace.inflate.total, 32 * MiB / 4096, what);
    assert.equal(side.device.actual_bytes, 128 * MiB, what);
    const balloons = eventsOfKind(side.events, 'balloon');
    assert.ok(balloons.every((b) => 'wait' in b && b.wait.reached), `${side.name}: both balloon targets reached\n${report}`);
    // no DEFLATE_ON_OOM: MemTotal drops by the balloon, and comes back
    assert.equal(side.memtotal0 - side.probes[0]!.MemTotal!, 32 * 1024, what);
    assert.equal(side.probes[5]!.MemTotal, side.memtotal0, what);
    const rounds = side.device.timeline_trace.hint_rounds;
    assert.equal(rounds.length, 3, what);
    const starts = eventsOfKind(side.events, 'free_page_hint').filter((e) => e.command === 'start');
    assert.equal(new Set(starts.map((e) => e.cmd_id)).size, 3, `${side.name}: fresh ids`);
    rounds.forEach((r, i) => {
      assert.equal(r.echoed[0], starts[i]!.cmd_id, `${side.name}: the guest echoes round ${i}'s id`);
      assert.ok(r.stop, `${side.name}: the guest sends STOP in round ${i}`);
      assert.ok(r.ranges.length > 0, `${side.name}: round ${i} hints something`);
    });
    // after DONE the guest has its hinted blocks back: MemFree recovers to within 8 MiB of before the round
    const before = side.probes[6]!.MemFree!;
    for (const i of [10, 13, 16]) assert.ok(side.probes[i]!.MemFree! >= before - 8 * 1024, `${side.name}: MemFree back after round (${side.probes[i]!.MemFree} vs ${before})`);
  }
  // The real guest (Linux 6.1) sends stats tags 0-9, as the model's 6.1 driver does.
  assert.deepEqual(real.device.trace.stats_tags, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(model.device!.trace.stats_tags, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  for (const side of sides) {
    assert.ok(eventsOfKind(side.events, 'drop_caches')[0]!.freed_pages >= 0, `${side.name}: drop_caches`);
    const c = eventsOfKind(side.events, 'compact_memory')[0]!;
    assert.equal(c.free_blocks_after.length, 11, `${side.name}: compact_memory reads buddyinfo before and after`);
  }
  const shell = eventsOfKind(real.timeline.events as ResultEvent[], 'shell')[0]!;
  assert.equal(shell.status, 0);
  assert.match(shell.output, /^MemTotal:/m);
  assert.ok(diffRows(real, model).some((r) => r.what === 'negotiated features' && r.delta === '='), report);
});
