/**
 * Fuzzing the front door: random scenario documents — plausible ones built from the
 * action table, broken ones (wrong types, huge and negative numbers, junk fields, deep
 * nesting, mangled YAML text) — must each end in a run that works, one line of bad input
 * (InputError, exit 2) or a clean invariant failure (exit 1): never an internal error,
 * never a stack trace, never a hang.
 *
 * Validation is checked in-process on many documents; a smaller sample is run end to end
 * through the CLI with `--check` under a wall-clock limit (a child process, so a run that
 * would never end is killed and reported rather than hanging the suite).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { loadScenarioText } from '../../src/scenario/runner.js';
import { actionsInfo } from '../../src/actions/index.js';
import { InputError } from '../../src/sim/errors.js';

import { tempDir } from '../helpers/tmp.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'bin', 'balloonlab.js');

const junk = fc.oneof(
  fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.constant(1e300), fc.constant(-1), fc.constant(2 ** 53 + 1),
  fc.string({ maxLength: 12 }), fc.constant(''), fc.constant('NaN'), fc.constant('1e999GiB'), fc.constant('-4KiB'),
  fc.array(fc.integer(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 2 }),
);
/**
 * Arrays nested up to 3000 deep (the YAML parser's and the validator's recursion): a
 * marker here, written out as flow sequences in the text (the YAML library's own
 * stringify would recurse as deep).
 */
const deep = fc.integer({ min: 1, max: 3000 }).map((depth) => `DEEP${depth}DEEP`);
const expandDeep = (text: string) => text.replace(/DEEP(\d+)DEEP/g, (_, n: string) => `${'['.repeat(+n)}1${']'.repeat(+n)}`);
const sizes = fc.constantFrom('4KiB', '64KiB', '1MiB', '2MiB', '16MiB', '64MiB', '200MiB', '1GiB', '100TiB', 0, 4096, '3B');
const times = fc.constantFrom('0s', '1ms', '50ms', '1s', '3s', '100us', 0, 1e9, '1e3s', '-1s');

/**
 * Scenario texts. At every choice point a good value has weight 64 and a broken one
 * weight `w`: w = 8 gives mostly broken documents (the validation test), w = 1 mostly
 * runnable ones (the end-to-end test), which still meet a broken value now and then.
 */
function scenarioTexts(w: number): fc.Arbitrary<string> {
  const maybe = (good: fc.Arbitrary<unknown>, bad: fc.Arbitrary<unknown> = junk): fc.Arbitrary<unknown> =>
    fc.oneof({ weight: 64, arbitrary: good }, { weight: w, arbitrary: bad });
  /** Present or not (half each), and then good or broken. */
  const optional = (good: fc.Arbitrary<unknown>) => fc.option(maybe(good), { nil: undefined });

  /** A value for an action field: of its kind, or junk. */
  const fieldValue = (kind: string, values: readonly string[] | undefined): fc.Arbitrary<unknown> => maybe(
    kind === 'size' ? sizes
      : kind === 'time' ? times
        : kind === 'int' ? fc.oneof(fc.integer({ min: 0, max: 4000 }), fc.constantFrom(1, 2, 100, 65535, 1e9))
          : kind === 'number' ? fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(0.5, 50, 1e6))
            : kind === 'boolean' ? fc.boolean()
              : kind === 'enum' ? fc.constantFrom(...(values ?? ['x']))
                : kind === 'gfp' ? fc.constantFrom('GFP_KERNEL', 'GFP_HIGHUSER_MOVABLE', 'GFP_KERNEL|__GFP_NORETRY', 'GFP_NOPE', 'GFP_ATOMIC')
                  : fc.constantFrom('a', 'b', 'x'));

  /** An entry of the action table with some of its fields, or something that is not one. */
  const entry = fc.oneof(
    { weight: 64, arbitrary: fc.constantFrom(...modelActions).chain((a) => {
      const fields = a.fields.filter((f) => f.name !== 'at');
      return fc.tuple(...fields.map((f) => fc.option(fieldValue(f.kind, f.values), { nil: undefined }))).map((vals) => {
        const e: Record<string, unknown> = { action: a.name };
        fields.forEach((f, i) => { if (vals[i] !== undefined) e[f.name] = vals[i]; });
        return e;
      });
    }) },
    { weight: w, arbitrary: fc.record({ action: fc.oneof(fc.string({ maxLength: 8 }), junk), colour: junk }, { requiredKeys: [] }) },
    { weight: w, arbitrary: junk },
    { weight: w, arbitrary: deep.map((d) => ({ action: 'snapshot', label: d })) },
  );

  /** A timeline in time order (`at` grows by 0-400 ms), unless an entry is not a mapping. */
  const timeline = fc.array(fc.tuple(fc.integer({ min: 0, max: 400 }), entry), { maxLength: 5 }).map((xs) => {
    let t = 0;
    return xs.map(([dt, e]) => {
      t += dt;
      return e !== null && typeof e === 'object' && !Array.isArray(e) ? { at: `${t}ms`, ...e } : e;
    });
  });

  const guest = maybe(fc.record({
    memory: maybe(fc.constantFrom('128MiB', '256MiB', '192MiB'), fc.oneof(fc.constantFrom('100TiB', '4GB', '129MiB', 1e30, -1, '2TiB'), junk)),
    vcpus: optional(fc.integer({ min: 1, max: 4 })),
    thp: optional(fc.constantFrom('always', 'madvise', 'never')),
    swap: optional(fc.constantFrom(0, '64MiB', '1GiB')),
  }, { requiredKeys: ['memory'] }), fc.oneof(junk, deep));

  const doc = fc.record({
    name: maybe(fc.constant('fuzz')),
    seed: optional(fc.nat()),
    guest,
    balloon: optional(fc.oneof(
      fc.constant(false), fc.constant({}),
      fc.record({ compaction: fc.boolean(), free_page_hint: fc.boolean(), deflate_on_oom: fc.boolean(), free_page_reporting: fc.boolean() }, { requiredKeys: [] }),
    )),
    duration: optional(fc.constantFrom('1s', '2s', '10s')),
    timeline: maybe(timeline),
    extra: maybe(fc.constant(undefined)),
  }, { requiredKeys: ['name', 'guest', 'timeline'] });

  /** The document as YAML text; sometimes mangled (cut short, a character changed, tabs for spaces). */
  const mangle = maybe(fc.constant('none'), fc.constantFrom('cut', 'char', 'tabs'));
  return fc.tuple(doc, mangle, fc.nat(), fc.string({ minLength: 1, maxLength: 1 })).map(([d, how, pos, ch]) => {
    const text = expandDeep(stringify(d));
    const at = text.length ? pos % text.length : 0;
    if (how === 'cut') return text.slice(0, at);
    if (how === 'char') return text.slice(0, at) + ch + text.slice(at + 1);
    if (how === 'tabs') return text.replace(/ {2}/g, '\t');
    return text;
  });
}

const modelActions = actionsInfo().filter((a) => a.sides.includes('model'));

test('validation: every generated document is a scenario or one InputError line naming the file', () => {
  fc.assert(fc.property(scenarioTexts(8), (text) => {
    try {
      loadScenarioText(text, 'fuzz.yaml');
    } catch (e) {
      if (!(e instanceof InputError)) throw new Error(`not an input error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      assert.match(e.message, /^fuzz\.yaml: /);
      assert.doesNotMatch(e.message, /\n/);
    }
  }), { numRuns: 800, seed: 12 });
});

test('end to end: the CLI runs (or refuses) every generated scenario with exit 0, 1 or 2, one clean message, within a time limit', () => {
  const dir = tempDir('balloonlab-fuzz-');
  const file = join(dir, 'fuzz.yaml');
  const outcomes = new Map<number, number>();
  fc.assert(fc.property(scenarioTexts(1), (text) => {
    writeFileSync(file, text);
    const r = spawnSync(process.execPath, [bin, 'run', file, '--check', '--quiet'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.signal, null, `killed by ${r.signal}: the run did not end within 60 s`);
    assert.ok(r.status === 0 || r.status === 1 || r.status === 2, `exit ${r.status}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at |internal error/, r.stderr);
    if (r.status !== 0) {
      const lines = r.stderr.trim().split('\n');
      assert.match(lines[0]!, /^balloonlab: /);
      if (r.status === 2) assert.equal(lines.length, 1, r.stderr);
    }
    outcomes.set(r.status, (outcomes.get(r.status) ?? 0) + 1);
    if (process.env.FUZZ_LOG) process.stderr.write(`exit ${r.status} ${r.stderr.split("\n")[0]}\n`);
  }), { numRuns: 40, seed: 7 });
  // The generator must reach both sides of the door: scenarios that run, and ones refused.
  assert.ok((outcomes.get(0) ?? 0) >= 5, `runs that worked: ${JSON.stringify([...outcomes])}`);
  assert.ok((outcomes.get(2) ?? 0) >= 5, `runs refused: ${JSON.stringify([...outcomes])}`);
});
