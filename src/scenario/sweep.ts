/**
 * A sweep: one base scenario run over the cartesian product of parameter values and
 * seeds (`balloonlab sweep FILE`, docs/sweeps.md). The file:
 *
 *   sweep: overcommit-by-host-memory
 *   base: host-overcommit.yaml         # a scenario file, relative to this one
 *   variant: none                      # optional: start from this variant of it
 *   parameters:                        # each a dotted path into the scenario and its values
 *     - { path: host.memory, range: { from: 10GiB, to: 16GiB, step: 2GiB } }
 *     - { path: host.policy, values: [none, mom, proxmox] }
 *   seeds: [1, 2]                      # optional: default the scenario's seed
 *   figures: [overcommit_logical_mean, host.peak_swap_used_bytes]   # optional
 *
 * Runs are the product in order (the first parameter varies slowest, seeds fastest),
 * each the base scenario as written with the values set at their paths (a path that
 * goes through a list takes an index: `vms.0.count`) and validated as any scenario is,
 * so a bad value is refused naming the run and the field. A `range` is numbers, sizes
 * or times, `from` to `to` inclusive in steps of `step`. `figures` names what the
 * table, the CSV and the charts show (report/sweep_figures.ts). Plain data in and out:
 * each run's scenario document can go to a thread of this machine or, as a job, to a
 * worker on another (src/cli/queue.ts), and both give the same result document.
 */
import { z } from 'zod';
import { ScenarioError, validateScenarioFile, parseYamlText, type Scenario } from './schema.js';
import { UnitError, parseSize, parseTime, formatSize } from './units.js';
import { DEFAULT_FIGURES, DOCUMENT_FIELDS, NAMED_FIGURES, type SweepDocKind, type SweepFigure, namedFigure } from '../report/sweep_figures.js';

/** A range of values: numbers, or sizes (`512MiB`) or times (`30s`) as written in scenarios. */
export type SweepRange = { from: number | string; to: number | string; step: number | string };

export type SweepParameter = {
  path: string;
  /** The values in order (a range's, expanded). */
  values: unknown[];
  /** The range as written, when the file gave one. */
  range?: SweepRange;
};

export type SweepFile = {
  name: string;
  /** The base scenario file as written in the sweep file (relative to it). */
  base: string;
  variant: string | null;
  parameters: SweepParameter[];
  /** Seeds to run each point with; null: the scenario's own. */
  seeds: number[] | null;
  /** The figures as written (names or dotted paths); null: the defaults for the kind of scenario. */
  figures: string[] | null;
};

/**
 * One run of a sweep: its point's values by path, its seed, the scenario document (the
 * base with the values set, as plain data: what a queue job carries) and the validated
 * scenario.
 */
export type SweepRun = { index: number; point: Record<string, unknown>; seed: number; label: string; doc: unknown; scenario: Scenario };

const PATH = /^[A-Za-z0-9_]+(\.[A-Za-z0-9_-]+)*$/;
const rangeEnd = z.union([z.number(), z.string().min(1)]);
const sweepSchema = z.strictObject({
  sweep: z.string().min(1),
  base: z.string().min(1),
  variant: z.string().min(1).optional(),
  parameters: z.array(z.strictObject({
    path: z.string().regex(PATH, 'a dotted path such as host.memory or vms.0.count'),
    values: z.array(z.unknown()).min(1, 'an empty list: give at least one value').optional(),
    range: z.strictObject({ from: rangeEnd, to: rangeEnd, step: rangeEnd }).optional(),
  })).min(1),
  seeds: z.array(z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)).min(1).optional(),
  figures: z.array(z.string().regex(PATH, 'a figure name (overcommit_logical_mean) or a dotted path into the result document (host.peak_swap_used_bytes)')).min(1).optional(),
});

/** Most runs one sweep may have (the product of its value lists and seeds). */
export const MAX_SWEEP_RUNS = 10_000;

const ALLOWED = 'sweep, base, variant, parameters, seeds, figures';

/** The text of a time that parses back to exactly `ns`: the largest unit that divides it. */
function exactTimeText(ns: number): string {
  for (const [u, m] of [['h', 3600e9], ['m', 60e9], ['s', 1e9], ['ms', 1e6], ['us', 1e3]] as const) if (ns >= m && ns % m === 0) return `${ns / m}${u}`;
  return `${ns}ns`;
}

/** The decimal places of a number's shortest text (`0.25`: 2, `1e-7`: 7, `1.5e-7`: 8). */
function decimalPlaces(n: number): number {
  const m = /^-?\d+(?:\.(\d+))?(?:e([-+]\d+))?$/.exec(String(n));
  if (!m) return 0;
  return Math.max(0, (m[1]?.length ?? 0) - Number(m[2] ?? 0));
}

/**
 * A range's values, `from` to `to` inclusive: numbers stay numbers (rounded to the
 * decimal places of `from` and `step`, so 0.1 steps do not drift), sizes come out as sizes and times as
 * times, each written so that it parses back to the exact value.
 */
export function rangeValues(r: SweepRange, where: string): Array<number | string> {
  const fields = ['from', 'to', 'step'] as const;
  // the unit is the first field's with a unit (512MiB: a size; 30s: a time); the rest must be the same kind
  let unit: 'number' | 'size' | 'time' = 'number';
  for (const k of fields) {
    const v = r[k];
    if (typeof v !== 'string' || !/[A-Za-z]\s*$/.test(v)) continue;
    const ok = (p: (x: string) => number) => { try { p(v); return true; } catch { return false; } };
    unit = ok(parseSize) ? 'size' : ok(parseTime) ? 'time' : 'number';
    if (unit === 'number') throw new ScenarioError(`${where}.${k}: "${v}" is not a number, a size (512MiB) or a time (30s)`);
    break;
  }
  const num = (v: number | string, field: string): number => {
    if (unit === 'number') {
      const n = typeof v === 'number' ? v : /^\s*-?\d+(\.\d+)?([eE][-+]?\d+)?\s*$/.test(v) ? Number(v) : NaN;
      if (Number.isNaN(n)) throw new ScenarioError(`${where}.${field}: "${v}" is not a number, a size (512MiB) or a time (30s)`);
      return n;
    }
    try {
      return unit === 'size' ? parseSize(v) : parseTime(v);
    } catch (e) {
      if (e instanceof UnitError) throw new ScenarioError(`${where}.${field}: ${e.message} (the range is of ${unit === 'size' ? 'sizes' : 'times'})`);
      throw e;
    }
  };
  const from = num(r.from, 'from'), to = num(r.to, 'to'), step = num(r.step, 'step');
  for (const [k, v] of [['from', from], ['to', to], ['step', step]] as const) if (!Number.isFinite(v)) throw new ScenarioError(`${where}.${k}: must be a finite number`);
  if (!(step > 0)) throw new ScenarioError(`${where}.step: must be above 0 (got ${String(r.step)})`);
  if (from > to) throw new ScenarioError(`${where}: empty: from ${String(r.from)} is above to ${String(r.to)}`);
  const count = Math.floor((to - from) / step + 1e-9) + 1;
  if (count > MAX_SWEEP_RUNS) throw new ScenarioError(`${where}: ${count} values, more than the ${MAX_SWEEP_RUNS} runs a sweep may have`);
  // the decimal places from and step are written with: -0.3 + 3 × 0.1 is 0, not 5.55e-17
  const places = Math.min(100, Math.max(decimalPlaces(from), decimalPlaces(step)));
  const out: Array<number | string> = [];
  for (let i = 0; i < count; i++) {
    const x = from + i * step;
    if (unit === 'number') out.push(Number(x.toFixed(places)) + 0);
    else out.push(unit === 'size' ? formatSize(Math.round(x)) : exactTimeText(Math.round(x)));
  }
  return out;
}

/** A figure as written: a named one, a top-level field of a result document, or a dotted path into one. */
function figureProblem(f: string): string | null {
  if (namedFigure(f)) return null;
  const head = f.split('.')[0]!;
  if (DOCUMENT_FIELDS.host.includes(head) || DOCUMENT_FIELDS.guest.includes(head)) return null;
  return `"${f}" is not a figure: name one of ${NAMED_FIGURES.map((x) => x.name).join(', ')}, or give a dotted path into the result document (its fields: ${[...new Set([...DOCUMENT_FIELDS.guest, ...DOCUMENT_FIELDS.host])].join(', ')})`;
}

export function validateSweep(doc: unknown, where: string): SweepFile {
  const r = sweepSchema.safeParse(doc);
  if (!r.success) {
    const iss = r.error.issues[0]!;
    const path = iss.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') || '(top level)';
    const msg = iss.code === 'unrecognized_keys' ? `unknown field${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${k}"`).join(', ')} (allowed: ${iss.path.length ? (iss.path.includes('range') ? 'from, to, step' : 'path, values, range') : ALLOWED})` : iss.message;
    throw new ScenarioError(`${where}: ${path}: ${msg}`);
  }
  const d = r.data;
  const seen = new Set<string>();
  const parameters: SweepParameter[] = d.parameters.map((p, i) => {
    const at = `${where}: parameters[${i}]`;
    if (seen.has(p.path)) throw new ScenarioError(`${at}.path: ${p.path} is swept twice`);
    seen.add(p.path);
    if (p.path === 'variants' || p.path.startsWith('variants.')) throw new ScenarioError(`${at}.path: ${p.path}: a sweep runs the base scenario (or the one variant: names); sweep the fields themselves`);
    if (p.path === 'seed' && d.seeds) throw new ScenarioError(`${at}.path: seed is set by seeds: (sweep the seed in one place)`);
    if (p.values && p.range) throw new ScenarioError(`${at}: give values or range, not both`);
    if (p.range) return { path: p.path, values: rangeValues(p.range, `${at}.range`), range: p.range };
    if (p.values) return { path: p.path, values: p.values };
    throw new ScenarioError(`${at}: needs values (a list) or range ({ from, to, step })`);
  });
  const figures = d.figures ?? null;
  figures?.forEach((f, i) => {
    const bad = figureProblem(f);
    if (bad) throw new ScenarioError(`${where}: figures[${i}]: ${bad}`);
    if (figures.indexOf(f) !== i) throw new ScenarioError(`${where}: figures[${i}]: ${f} is named twice`);
  });
  const runs = parameters.reduce((n, p) => n * p.values.length, 1) * (d.seeds?.length ?? 1);
  if (runs > MAX_SWEEP_RUNS) throw new ScenarioError(`${where}: parameters: ${runs} runs, more than the ${MAX_SWEEP_RUNS} a sweep may have`);
  return { name: d.sweep, base: d.base, variant: d.variant ?? null, parameters, seeds: d.seeds ?? null, figures };
}

type Plain = Record<string, unknown>;
function isPlain(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A copy of `doc` with `value` at dotted `path` (objects created on the way; a list takes an index). */
export function setPath(doc: unknown, path: string, value: unknown): unknown {
  const [head, ...rest] = path.split('.');
  const key = head!;
  const child = (c: unknown) => (rest.length ? setPath(c, rest.join('.'), value) : value);
  if (Array.isArray(doc)) {
    const i = Number(key);
    if (!Number.isInteger(i) || i < 0 || i >= doc.length) throw new RangeError(`${key} is not an index of a list of ${doc.length}`);
    const out = doc.slice();
    out[i] = child(doc[i]);
    return out;
  }
  const base: Plain = isPlain(doc) ? doc : {};
  return { ...base, [key]: child(base[key]) };
}

/** Deep-merges a variant's overrides onto the base (objects merge, the rest replaces), as scenario files do. */
function mergeDeep(base: unknown, over: unknown): unknown {
  if (!isPlain(base) || !isPlain(over)) return over;
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? mergeDeep(base[k], v) : v;
  return out;
}

/** How a value reads in a run's label and the table. */
export function valueText(v: unknown): string {
  if (isPlain(v) && typeof v.name === 'string') return v.name;
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
}

/**
 * The runs of a sweep over the base scenario's text (`baseWhere` names its file). Each
 * run's scenario is the base (or its variant) with the point's values set, validated.
 */
export function sweepRuns(sweep: SweepFile, baseText: string, baseWhere: string): SweepRun[] {
  const raw = parseYamlText(baseText, baseWhere);
  if (!isPlain(raw)) throw new ScenarioError(`${baseWhere}: (top level): expected a scenario mapping`);
  // validates the base file (and its variants) as written first
  const file = validateScenarioFile(raw, baseWhere);
  const { variants: rawVariants, ...rest } = raw;
  let start: unknown = rest;
  if (sweep.variant !== null) {
    const list = Array.isArray(rawVariants) ? rawVariants : [];
    const v = list.find((x) => isPlain(x) && x.name === sweep.variant);
    if (!isPlain(v)) throw new ScenarioError(`variant: ${baseWhere} has no variant "${sweep.variant}" (its variants: ${file.variants.map((x) => x.name).join(', ') || 'none'})`);
    const { name: _n, ...over } = v;
    start = mergeDeep(rest, over);
  }
  const points: Array<Record<string, unknown>> = [{}];
  for (const p of sweep.parameters) {
    const next: Array<Record<string, unknown>> = [];
    for (const pt of points) for (const v of p.values) next.push({ ...pt, [p.path]: v });
    points.splice(0, points.length, ...next);
  }
  const runs: SweepRun[] = [];
  for (const point of points) {
    let doc = start;
    for (const [path, v] of Object.entries(point)) {
      try {
        doc = setPath(doc, path, v);
      } catch (e) {
        throw new ScenarioError(`${sweep.name}: parameters: ${path}: ${(e as Error).message}`);
      }
    }
    const label = Object.entries(point).map(([k, v]) => `${k}=${valueText(v)}`).join(' ');
    for (const seed of sweep.seeds ?? [null]) {
      const d = seed === null ? doc : setPath(doc, 'seed', seed);
      const where = `${sweep.name}: run ${runs.length} (${label}${seed === null ? '' : ` seed=${seed}`})`;
      const s = validateScenarioFile(d, where).base;
      runs.push({ index: runs.length, point, seed: s.seed, label: seed === null ? label : `${label} seed=${seed}`, doc: d, scenario: s });
    }
  }
  return runs;
}

/** Which result document the runs write: a host's when the scenario has `vms:`. */
export function sweepKind(runs: readonly SweepRun[]): SweepDocKind {
  return runs[0]?.scenario.vms ? 'host' : 'guest';
}

/**
 * The sweep's figures for its kind of scenario: the file's (each checked against the
 * document the runs write, naming `figures[i]`), or the defaults.
 */
export function sweepFigures(sweep: SweepFile, runs: readonly SweepRun[], where: string): SweepFigure[] {
  const kind = sweepKind(runs);
  const other = kind === 'host' ? 'single-guest' : 'host (vms:)';
  return (sweep.figures ?? DEFAULT_FIGURES[kind]).map((f, i) => {
    const named = namedFigure(f);
    if (named) {
      if (named.kind !== 'any' && named.kind !== kind) throw new ScenarioError(`${where}: figures[${i}]: ${f} is a figure of ${other} scenarios; the base is a ${kind === 'host' ? 'host (vms:)' : 'single-guest'} scenario (its figures: ${NAMED_FIGURES.filter((x) => x.kind === kind || x.kind === 'any').map((x) => x.name).join(', ')})`);
      return { name: f, label: named.label, path: null, decimals: named.decimals };
    }
    const head = f.split('.')[0]!;
    if (!DOCUMENT_FIELDS[kind].includes(head)) throw new ScenarioError(`${where}: figures[${i}]: ${f}: the ${kind === 'host' ? 'host' : 'single-guest'} result document has no field "${head}" (its fields: ${DOCUMENT_FIELDS[kind].join(', ')})`);
    return { name: f, label: f, path: f, decimals: null };
  });
}
