import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSim, simAt, simAfter, simRunUntil } from '../../src/sim/clock.js';
import { createRng, rngNext, rngBelow, rngFloat } from '../../src/sim/rng.js';
import { parseSize, parseTime, UnitError } from '../../src/scenario/units.js';

test('events run in (time, scheduling order) and the clock lands on each event time', () => {
  const sim = createSim();
  const log: string[] = [];
  simAt(sim, 300, (s) => log.push(`c@${s.now}`));
  simAt(sim, 100, (s) => { log.push(`a@${s.now}`); simAfter(s, 50, (t) => log.push(`a2@${t.now}`)); });
  simAt(sim, 100, (s) => log.push(`b@${s.now}`));
  simAt(sim, 1000, (s) => log.push(`late@${s.now}`));
  simRunUntil(sim, 500);
  assert.deepEqual(log, ['a@100', 'b@100', 'a2@150', 'c@300']);
  assert.equal(sim.now, 500);
  simRunUntil(sim, 2000);
  assert.deepEqual(log.at(-1), 'late@1000');
});

test('the PRNG is deterministic per seed, differs across seeds, and rngBelow is in range and roughly uniform', () => {
  const a = createRng(42), b = createRng(42), c = createRng(43);
  const xa = [rngNext(a), rngNext(a), rngNext(a)];
  assert.deepEqual(xa, [rngNext(b), rngNext(b), rngNext(b)]);
  assert.notDeepEqual(xa, [rngNext(c), rngNext(c), rngNext(c)]);
  const r = createRng(7);
  const counts = new Array(10).fill(0);
  for (let i = 0; i < 100000; i++) counts[rngBelow(r, 10)]++;
  for (const n of counts) assert.ok(n > 9500 && n < 10500, `bucket ${n}`);
  for (let i = 0; i < 1000; i++) { const f = rngFloat(r); assert.ok(f >= 0 && f < 1); }
  assert.equal(rngBelow(r, 1), 0);
});

test('sizes and times parse with binary units and refuse the rest', () => {
  assert.equal(parseSize('4GiB'), 4 * 1024 ** 3);
  assert.equal(parseSize('512MiB'), 512 * 1024 ** 2);
  assert.equal(parseSize('4096KiB'), 4096 * 1024);
  assert.equal(parseSize(123), 123);
  assert.equal(parseTime('250ms'), 250e6);
  assert.equal(parseTime('60s'), 60e9);
  assert.equal(parseTime('5m'), 300e9);
  assert.throws(() => parseSize('4GB'), (e: Error) => e instanceof UnitError && /unknown unit "GB".*GiB/.test(e.message));
  assert.throws(() => parseSize('-1MiB'), /negative/);
  assert.throws(() => parseTime('soon'), /not a time/);
});
