/**
 * The standard real-guest script (scripts/real-guest/standard.yaml) through the
 * real-guest runner, with the model side (--diff): the report's key figures. Run with
 * `npm run test:real-guest`; skipped unless BALLOONLAB_REAL_GUEST=1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadRealGuestScriptText, runRealGuestScript, formatRealGuestReport, type HintRound, type SideReport } from '../../src/integrations/v86/script.js';

const SKIP = process.env.BALLOONLAB_REAL_GUEST === '1' ? false : 'real guest: run `npm run test:real-guest` (sets BALLOONLAB_REAL_GUEST=1)';
const MiB = 2 ** 20;

function hintRounds(r: SideReport): HintRound[] {
  return r.steps.flatMap((s) => (s.kind === 'free_page_hint' ? (s.data.rounds as HintRound[]) : []));
}

test('standard real-guest script: the guest\'s counters match the device\'s, three fresh hint rounds, no NEEDS_RESET', { timeout: 300_000, skip: SKIP }, async (t) => {
  const script = loadRealGuestScriptText(readFileSync(new URL('../../../scripts/real-guest/standard.yaml', import.meta.url), 'utf8'), 'standard.yaml');
  const rep = await runRealGuestScript(script, { diff: true });
  t.diagnostic(`real guest: boot ${rep.real.timings.boot_ms} ms, steps ${rep.real.timings.steps_ms} ms; model ${rep.model!.timings.total_ms} ms`);
  for (const side of [rep.real, rep.model!]) {
    const what = `${side.kind}: ${formatRealGuestReport({ ...rep, model: undefined, real: side }).slice(0, 4000)}`;
    assert.ok(side.steps.every((s) => s.ok), what);
    assert.equal(side.device.needs_reset, null, what);
    assert.equal(side.guest.vmstat.balloon_inflate, side.device.counters.inflatePfns, 'balloon_inflate = the device\'s inflate PFNs');
    assert.equal(side.guest.vmstat.balloon_deflate, side.device.counters.deflatePfns, 'balloon_deflate = the device\'s deflate PFNs');
    assert.equal(side.device.counters.inflatePfns, 32 * MiB / 4096);
    assert.equal(side.device.trace.inflate.total, 32 * MiB / 4096);
    assert.equal(side.device.actual_bytes, 128 * MiB);
    // no DEFLATE_ON_OOM: MemTotal drops by the balloon
    const b0 = side.steps[0]!.data;
    assert.equal((b0.memtotal_before_kib as number) - (b0.memtotal_after_kib as number), 32 * 1024);
    const rounds = hintRounds(side);
    assert.equal(rounds.length, 3);
    const ids = rounds.map((r) => r.requested);
    assert.equal(new Set(ids).size, 3, `fresh ids: ${ids}`);
    for (const r of rounds) {
      assert.equal(r.echoed[0], r.requested, 'the guest echoes the round\'s id');
      assert.ok(r.stop, 'the guest sends STOP');
      assert.ok(r.ranges.length > 0 && r.recovered);
    }
  }
  // The real guest (Linux 6.1) sends stats tags 0-9.
  assert.deepEqual(rep.real.device.trace.stats_tags, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});
