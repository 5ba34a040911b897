/**
 * A sweep's table (`balloonlab sweep`): one line per run, its parameter values and seed,
 * then a few of compare's rows as columns (the host rows for host scenarios, the
 * single-guest rows otherwise). The JSON output has every figure.
 */
import type { CompareRow } from './compare.js';
import { defaultCompareRows } from './compare.js';
import { hostCompareRows } from './host_compare.js';
import type { ResultDocument } from '../scenario/runner.js';
import type { HostResultDocument } from '../scenario/host_runner.js';

/** The columns a sweep shows, by compare's row labels. */
export const SWEEP_HOST_COLUMNS = [
  'Overcommit logical mean', 'Host free min (MiB)', 'Host swap peak (MiB)', 'Host swap-ins (pages)', 'Host OOM kills (VMs)',
  'Guest OOM kills', 'Guest allocstall', 'Balloon churn (pages)', 'Workload entries failed',
];
export const SWEEP_GUEST_COLUMNS = ['nr_free_pages', 'OOM kills', 'balloon_inflate', 'Host RSS (MiB)', 'Virtual time (s)'];

function pick<D>(rows: CompareRow<D>[], labels: readonly string[]): CompareRow<D>[] {
  return labels.flatMap((l) => rows.filter((r) => r.label === l));
}

/** The table: `paths` (the swept parameters), one line per run with its values, seed and the columns. */
export function formatSweep(name: string, paths: readonly string[], runs: ReadonlyArray<{ point: Record<string, unknown>; seed: number }>, docs: ReadonlyArray<ResultDocument | HostResultDocument>): string {
  const host = docs.length > 0 && docs.every((d) => (d as HostResultDocument).kind === 'host');
  const cols: Array<{ label: string; cell: (i: number) => string }> = [];
  const text = (v: unknown) => (typeof v === 'object' && v !== null && 'name' in v ? String((v as { name: unknown }).name) : typeof v === 'object' ? JSON.stringify(v) : String(v));
  for (const p of paths) cols.push({ label: p, cell: (i) => text(runs[i]!.point[p]) });
  cols.push({ label: 'seed', cell: (i) => String(runs[i]!.seed) });
  const num = (r: CompareRow<never>, v: number | undefined) => (v === undefined ? '-' : v.toFixed(r.decimals ?? 0));
  if (host) {
    for (const r of pick(hostCompareRows(), SWEEP_HOST_COLUMNS)) cols.push({ label: r.label, cell: (i) => num(r as CompareRow<never>, r.value(docs[i] as HostResultDocument)) });
  } else {
    const all = defaultCompareRows(docs as ResultDocument[]);
    for (const r of pick(all, SWEEP_GUEST_COLUMNS)) cols.push({ label: r.label, cell: (i) => num(r as CompareRow<never>, r.value(docs[i] as ResultDocument)) });
  }
  const cells = cols.map((c) => runs.map((_, i) => c.cell(i)));
  const widths = cols.map((c, j) => Math.max(c.label.length, ...cells[j]!.map((x) => x.length)));
  const lines = [`sweep ${name}: ${runs.length} runs`];
  lines.push(cols.map((c, j) => (j < paths.length + 1 ? c.label.padEnd(widths[j]!) : c.label.padStart(widths[j]!))).join('  '));
  runs.forEach((_, i) => lines.push(cols.map((_c, j) => (j < paths.length + 1 ? cells[j]![i]!.padEnd(widths[j]!) : cells[j]![i]!.padStart(widths[j]!))).join('  ')));
  return lines.join('\n') + '\n';
}
