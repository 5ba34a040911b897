/**
 * What a sweep writes (`balloonlab sweep`, docs/sweeps.md): the result document (every
 * run's result keyed by its parameters, in run order), the CSV of the figures, and the
 * table on stdout: one line per run, its parameter values and seed, then the figures
 * as columns (compare's rows under their labels; a path under the path). A run that
 * failed keeps its place, with its error instead of a result.
 */
import type { SweepFile, SweepRun } from '../scenario/sweep.js';
import { valueText } from '../scenario/sweep.js';
import { type SweepDocument, type SweepFigure, figureValue, pathStop } from './sweep_figures.js';
import { VERSION } from '../version.js';

/** How one run ended: its result document, or why it has none. */
export type SweepOutcome =
  | { ok: true; doc: SweepDocument }
  | { ok: false; kind: string; message: string };

/** One run in the sweep's document. */
export type SweepDocRun =
  | { index: number; point: Record<string, unknown>; seed: number; figures: Record<string, number | null>; result: SweepDocument }
  | { index: number; point: Record<string, unknown>; seed: number; error: { kind: string; message: string } };

/** The sweep's result document (`--json`); no wall-clock figure outside the runs' own `wall_ms`. */
export type SweepResultDocument = {
  balloonlab: string;
  sweep: string;
  base: string;
  variant: string | null;
  parameters: SweepFile['parameters'];
  seeds: number[] | null;
  figures: Array<{ name: string; label: string; path?: string }>;
  runs: SweepDocRun[];
};

export function sweepDocument(sweep: SweepFile, runs: readonly SweepRun[], figures: readonly SweepFigure[], outcomes: readonly SweepOutcome[]): SweepResultDocument {
  return {
    balloonlab: VERSION,
    sweep: sweep.name,
    base: sweep.base,
    variant: sweep.variant,
    parameters: sweep.parameters,
    seeds: sweep.seeds,
    figures: figures.map((f) => ({ name: f.name, label: f.label, ...(f.path !== null ? { path: f.path } : {}) })),
    runs: runs.map((r, i): SweepDocRun => {
      const o = outcomes[i]!;
      const head = { index: r.index, point: r.point, seed: r.seed };
      if (!o.ok) return { ...head, error: { kind: o.kind, message: o.message } };
      return { ...head, figures: Object.fromEntries(figures.map((f) => [f.name, figureValue(f, o.doc) ?? null])), result: o.doc };
    }),
  };
}

/** A CSV field (RFC 4180: quoted when it holds a comma, a quote or a line break). */
export function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** How a parameter value is written in the CSV: strings and numbers as they are, anything else as JSON. */
function csvValue(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
}

/**
 * The figures as CSV: `index`, one column per parameter (its path), `seed` (unless a
 * parameter is the seed), one per
 * figure (its name), each value with all its digits; an empty cell where a run has no
 * value; an `error` column when a run failed.
 */
export function sweepCsv(doc: SweepResultDocument): string {
  const paths = doc.parameters.map((p) => p.path);
  const failed = doc.runs.some((r) => 'error' in r);
  // a sweep of `seed` as a parameter has its seed in that column
  const seed = !paths.includes('seed');
  const header = ['index', ...paths, ...(seed ? ['seed'] : []), ...doc.figures.map((f) => f.name), ...(failed ? ['error'] : [])];
  const lines = [header.map(csvField).join(',')];
  for (const r of doc.runs) {
    const figs = doc.figures.map((f) => ('figures' in r ? r.figures[f.name] : null));
    const cells = [String(r.index), ...paths.map((p) => csvValue(r.point[p])), ...(seed ? [String(r.seed)] : []), ...figs.map((v) => (v === null || v === undefined ? '' : String(v)))];
    if (failed) cells.push('error' in r ? `${r.error.kind}: ${r.error.message}` : '');
    lines.push(cells.map(csvField).join(','));
  }
  return lines.join('\n') + '\n';
}

/** The figures that some, not all, of the runs that finished have no number for: name, and how many runs. */
export function missingFigures(doc: SweepResultDocument): Array<{ name: string; runs: number; of: number }> {
  const done = doc.runs.filter((r) => 'figures' in r);
  const out: Array<{ name: string; runs: number; of: number }> = [];
  for (const f of doc.figures) {
    const n = done.filter((r) => 'figures' in r && r.figures[f.name] === null).length;
    if (n > 0 && n < done.length) out.push({ name: f.name, runs: n, of: done.length });
  }
  return out;
}

/**
 * The path figures that reached no number in any run that finished: almost surely a
 * path that is not in the document. Each with where the path stops in the first run.
 */
export function deadFigures(doc: SweepResultDocument): Array<{ index: number; name: string; why: string }> {
  const done = doc.runs.filter((r): r is Extract<SweepDocRun, { result: SweepDocument }> => 'result' in r);
  if (done.length === 0) return [];
  return doc.figures.flatMap((f, index) => (f.path !== undefined && done.every((r) => r.figures[f.name] === null) ? [{ index, name: f.name, why: pathStop(done[0]!.result, f.path) }] : []));
}

/** The table: the swept parameters, the seed, then one column per figure; a failed run says so. */
export function formatSweep(doc: SweepResultDocument, figures: readonly SweepFigure[]): string {
  const decimals = figures.map((f) => f.decimals);
  const paths = doc.parameters.map((p) => p.path);
  const cols: Array<{ label: string; cell: (r: SweepDocRun) => string }> = [];
  for (const p of paths) cols.push({ label: p, cell: (r) => valueText(r.point[p]) });
  if (!paths.includes('seed')) cols.push({ label: 'seed', cell: (r) => String(r.seed) });
  doc.figures.forEach((f, j) => cols.push({
    label: f.label,
    cell: (r) => {
      if (!('figures' in r)) return j === 0 ? 'failed' : '';
      const v = r.figures[f.name];
      if (v === null || v === undefined) return '-';
      const d = decimals[j];
      return d === null || d === undefined ? String(v) : v.toFixed(d);
    },
  }));
  const cells = cols.map((c) => doc.runs.map((r) => c.cell(r)));
  const widths = cols.map((c, j) => Math.max(c.label.length, ...cells[j]!.map((x) => x.length)));
  const left = cols.length - doc.figures.length;
  const pad = (s: string, j: number) => (j < left ? s.padEnd(widths[j]!) : s.padStart(widths[j]!));
  const failed = doc.runs.filter((r) => 'error' in r).length;
  const lines = [`sweep ${doc.sweep}: ${doc.runs.length} runs${failed ? `, ${failed} failed` : ''}`];
  lines.push(cols.map((c, j) => pad(c.label, j)).join('  ').trimEnd());
  doc.runs.forEach((_, i) => lines.push(cols.map((_c, j) => pad(cells[j]![i]!, j)).join('  ').trimEnd()));
  return lines.join('\n') + '\n';
}
