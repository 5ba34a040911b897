/**
 * A sweep: one base scenario run over the cartesian product of parameter values and
 * seeds (`balloonlab sweep FILE`). The file:
 *
 *   sweep: overcommit-by-host-memory
 *   base: host-overcommit.yaml         # a scenario file, relative to this one
 *   variant: none                      # optional: start from this variant of it
 *   parameters:                        # each a dotted path into the scenario and its values
 *     - { path: host.memory, values: [10GiB, 12GiB, 16GiB] }
 *     - { path: host.policy, values: [none, mom, proxmox] }
 *   seeds: [1, 2]                      # optional: default the scenario's seed
 *
 * Runs are the product in order (the first parameter varies slowest, seeds fastest),
 * each the base scenario as written with the values set at their paths (a path that
 * goes through a list takes an index: `vms.0.count`) and validated as any scenario is,
 * so a bad value is refused naming the run and the field. Plain data in and out: the
 * runs can go to any worker pool, and a later, distributed sweep reads the same file.
 */
import { z } from 'zod';
import { ScenarioError, validateScenarioFile, parseYamlText, type Scenario } from './schema.js';

export type SweepParameter = { path: string; values: unknown[] };

export type SweepFile = {
  name: string;
  /** The base scenario file as written in the sweep file (relative to it). */
  base: string;
  variant: string | null;
  parameters: SweepParameter[];
  /** Seeds to run each point with; null: the scenario's own. */
  seeds: number[] | null;
};

/** One run of a sweep: its point's values by path, its seed, and the validated scenario. */
export type SweepRun = { index: number; point: Record<string, unknown>; seed: number; label: string; scenario: Scenario };

const sweepSchema = z.strictObject({
  sweep: z.string().min(1),
  base: z.string().min(1),
  variant: z.string().min(1).optional(),
  parameters: z.array(z.strictObject({ path: z.string().regex(/^[A-Za-z0-9_]+(\.[A-Za-z0-9_-]+)*$/, 'a dotted path such as host.memory or vms.0.count'), values: z.array(z.unknown()).min(1) })).min(1),
  seeds: z.array(z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)).min(1).optional(),
});

/** Most runs one sweep may have (the product of its value lists and seeds). */
export const MAX_SWEEP_RUNS = 10_000;

export function validateSweep(doc: unknown, where: string): SweepFile {
  const r = sweepSchema.safeParse(doc);
  if (!r.success) {
    const iss = r.error.issues[0]!;
    const path = iss.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') || '(top level)';
    const msg = iss.code === 'unrecognized_keys' ? `unknown field${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${k}"`).join(', ')} (allowed: sweep, base, variant, parameters, seeds)` : iss.message;
    throw new ScenarioError(`${where}: ${path}: ${msg}`);
  }
  const d = r.data;
  const seen = new Set<string>();
  d.parameters.forEach((p, i) => {
    if (seen.has(p.path)) throw new ScenarioError(`${where}: parameters[${i}].path: ${p.path} is swept twice`);
    seen.add(p.path);
  });
  const runs = d.parameters.reduce((n, p) => n * p.values.length, 1) * (d.seeds?.length ?? 1);
  if (runs > MAX_SWEEP_RUNS) throw new ScenarioError(`${where}: parameters: ${runs} runs, more than the ${MAX_SWEEP_RUNS} a sweep may have`);
  return { name: d.sweep, base: d.base, variant: d.variant ?? null, parameters: d.parameters, seeds: d.seeds ?? null };
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

/** How a value reads in a run's label. */
function valueText(v: unknown): string {
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
      runs.push({ index: runs.length, point, seed: s.seed, label: seed === null ? label : `${label} seed=${seed}`, scenario: s });
    }
  }
  return runs;
}
