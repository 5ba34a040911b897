/**
 * Properties of sweep files (scenario/sweep.ts) and their outputs (report/sweep.ts):
 * any document is a sweep or one line of bad input naming the file (never another
 * error); a range has the values from `from` by `step` up to `to`, each written so it
 * parses back exactly; the runs are the product in mixed-radix order (the first
 * parameter slowest, seeds fastest); a CSV field reads back as written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { validateSweep, sweepRuns, rangeValues } from '../../src/scenario/sweep.js';
import { csvField } from '../../src/report/sweep.js';
import { ScenarioError } from '../../src/scenario/schema.js';
import { parseSize, parseTime } from '../../src/scenario/units.js';

const words = fc.constantFrom('sweep', 'base', 'variant', 'parameters', 'seeds', 'figures', 'path', 'values', 'range', 'from', 'to', 'step', 'host.memory', 'nr_free_pages', 'x');
const leaf = fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 8 }), fc.boolean(), fc.constant(null), words, fc.constantFrom('1GiB', '30s', '-1', '0'));
const junk = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(words, tie('node'), { maxKeys: 4 })),
})).node;
/** Near-valid sweep documents: the right fields with values that are sometimes wrong. */
const nearly = fc.record({
  sweep: fc.oneof(fc.constant('s'), leaf),
  base: fc.oneof(fc.constant('b.yaml'), leaf),
  parameters: fc.oneof(
    fc.array(fc.record({
      path: fc.oneof(fc.constantFrom('host.memory', 'seed', 'vms.0.count', 'variants.0', 'a..b', ''), leaf),
      values: fc.oneof(fc.array(leaf, { maxLength: 3 }), leaf),
      range: fc.record({ from: leaf, to: leaf, step: leaf }),
    }, { requiredKeys: ['path'] }), { maxLength: 3 }),
    junk,
  ),
  seeds: fc.oneof(fc.array(fc.integer({ min: -2, max: 5 }), { maxLength: 3 }), leaf),
  figures: fc.oneof(fc.array(fc.oneof(fc.constantFrom('nr_free_pages', 'host.pswpin', 'vms.0.allocstall', 'nope', 'vmstat.pgfree'), leaf), { maxLength: 3 }), leaf),
}, { requiredKeys: ['sweep', 'base', 'parameters'] });

test('any document is a sweep, or one ScenarioError naming the file and a field; never another error', () => {
  fc.assert(fc.property(fc.oneof(junk, nearly), (doc) => {
    try {
      const s = validateSweep(doc, 's.yaml');
      assert.ok(s.parameters.length > 0 && s.parameters.every((p) => p.values.length > 0));
    } catch (e) {
      if (!(e instanceof ScenarioError)) throw e;
      assert.match(e.message, /^s\.yaml: \S/);
      assert.ok(!e.message.includes('\n'), e.message);
    }
  }), { numRuns: 3000 });
});

test('a numeric range: from, then by step, up to to; increasing, without drift', () => {
  fc.assert(fc.property(fc.integer({ min: -10_000, max: 10_000 }), fc.integer({ min: 1, max: 500 }), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 3 }), (from, step, n, scale) => {
    const k = 10 ** scale; // steps of 1, 0.1, 0.01, 0.001
    const f = from / k, s = step / k, to = (from + n * step + Math.floor(step / 2)) / k;
    const v = rangeValues({ from: f, to, step: s }, 'r') as number[];
    assert.equal(v.length, n + 1);
    v.forEach((x, i) => assert.equal(x, (from + i * step) / k, `value ${i}`));
    for (let i = 1; i < v.length; i++) assert.ok(v[i]! > v[i - 1]!);
    assert.ok(v.at(-1)! <= to);
  }), { numRuns: 500 });
});

test('a size or time range: each value parses back to from + i × step exactly', () => {
  const units = [['B', 1], ['KiB', 1024], ['MiB', 2 ** 20], ['GiB', 2 ** 30]] as const;
  const times = [['ns', 1], ['ms', 1e6], ['s', 1e9], ['m', 60e9]] as const;
  const text = (n: number, [u]: readonly [string, number]) => `${n}${u}`;
  fc.assert(fc.property(fc.integer({ min: 0, max: 4096 }), fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }), fc.boolean(), (from, step, n, fu, su, time) => {
    const [table, parse] = time ? [times, parseTime] as const : [units, parseSize] as const;
    const fromT = text(from, table[fu]!), stepT = text(step, table[su]!);
    const f = parse(fromT), s = parse(stepT), to = f + n * s;
    const v = rangeValues({ from: fromT, to: String(to), step: stepT }, 'r');
    assert.equal(v.length, n + 1);
    v.forEach((x, i) => {
      assert.equal(typeof x, 'string');
      assert.equal(parse(x as string), f + i * s, `value ${i}: ${x}`);
    });
  }), { numRuns: 400 });
});

const base = 'name: p\nguest: { memory: 128MiB }\ntimeline: []\n';
const domains: Array<{ path: string; values: fc.Arbitrary<unknown[]> }> = [
  { path: 'description', values: fc.uniqueArray(fc.string({ minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 3 }) },
  { path: 'guest.memory', values: fc.uniqueArray(fc.constantFrom('128MiB', '256MiB', '512MiB', '1GiB'), { minLength: 1, maxLength: 3 }) },
  { path: 'duration', values: fc.uniqueArray(fc.constantFrom('1s', '2s', '250ms', '1m'), { minLength: 1, maxLength: 3 }) },
  { path: 'guest.vcpus', values: fc.uniqueArray(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 3 }) },
];

test('runs are the product in mixed-radix order: the first parameter slowest, seeds fastest', () => {
  fc.assert(fc.property(
    fc.subarray(domains, { minLength: 1 }).chain((ds) => fc.tuple(fc.constant(ds.map((d) => d.path)), fc.tuple(...ds.map((d) => d.values)))),
    fc.option(fc.uniqueArray(fc.integer({ min: 0, max: 99 }), { minLength: 1, maxLength: 3 }), { nil: undefined }),
    ([paths, lists], seeds) => {
      const s = validateSweep({ sweep: 'p', base: 'p.yaml', parameters: paths.map((path, i) => ({ path, values: lists[i] })), ...(seeds ? { seeds } : {}) }, 's.yaml');
      const runs = sweepRuns(s, base, 'p.yaml');
      const sizes = [...lists.map((l) => l.length), seeds?.length ?? 1];
      assert.equal(runs.length, sizes.reduce((a, b) => a * b, 1));
      runs.forEach((r, i) => {
        assert.equal(r.index, i);
        let rest = i;
        const digits = sizes.map(() => 0);
        for (let k = sizes.length - 1; k >= 0; k--) { digits[k] = rest % sizes[k]!; rest = Math.floor(rest / sizes[k]!); }
        paths.forEach((p, k) => assert.deepEqual(r.point[p], lists[k]![digits[k]!]));
        assert.equal(r.seed, seeds ? seeds[digits.at(-1)!] : 1);
      });
    },
  ), { numRuns: 60 });
});

/** Reads one CSV line (RFC 4180) back into its fields. */
function csvRead(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let f = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (line[i] === '"' && line[i + 1] === '"') { f += '"'; i += 2; } else if (line[i] === '"') { i++; break; } else f += line[i++];
      }
    } else {
      while (i < line.length && line[i] !== ',') f += line[i++];
    }
    out.push(f);
    if (i >= line.length) return out;
    i++; // the comma
  }
}

test('CSV fields read back as written, whatever they hold', () => {
  fc.assert(fc.property(fc.array(fc.string({ unit: fc.constantFrom('a', ',', '"', '\n', '\r', ' ', 'é') }), { minLength: 1, maxLength: 5 }), (fields) => {
    assert.deepEqual(csvRead(fields.map(csvField).join(',')), fields);
  }), { numRuns: 1000 });
});
