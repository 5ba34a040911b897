/**
 * The figures a sweep collects from each run's result document (`figures:` in a sweep
 * file, docs/sweeps.md): a name from the table below, most of them one of compare's
 * rows under a stable snake_case name, or a dotted path into the result document
 * (`host.peak_swap_used_bytes`, `vms.0.allocstall`, `vms.burst.oom_kill`: a list takes
 * an index or, for a list of named entries, a name). A path's first field is checked
 * against the document the base scenario writes (host or single-guest); what it reaches
 * is read at the end of each run, and a run where it is not a number gets no value.
 */
import type { ResultDocument } from '../scenario/runner.js';
import type { HostResultDocument } from '../scenario/host_runner.js';
import { hostCompareRows } from './host_compare.js';
import { type CompareRow, defaultCompareRows, vmstatValue } from './compare.js';

export type SweepDocument = ResultDocument | HostResultDocument;

/** Which result document a scenario writes: a host's (`vms:`) or one guest's. */
export type SweepDocKind = 'host' | 'guest';

export type NamedFigure = {
  name: string;
  kind: SweepDocKind | 'any';
  /** The table's column (compare's row label where the figure is one). */
  label: string;
  /** Decimal places in the table (the CSV and the JSON keep every digit). */
  decimals: number;
  value: (doc: SweepDocument) => number | undefined;
};

function fromRow<D>(name: string, kind: SweepDocKind, rows: CompareRow<D>[], label: string): NamedFigure {
  const row = rows.find((r) => r.label === label);
  if (!row) throw new Error(`sweep figure ${name}: compare has no row "${label}"`);
  return { name, kind, label, decimals: row.decimals ?? 0, value: (d) => row.value(d as D) };
}

const HOST_ROWS = hostCompareRows();
const GUEST_ROWS = defaultCompareRows([]);
const host = (name: string, label: string) => fromRow(name, 'host', HOST_ROWS, label);
const guest = (name: string, label: string) => fromRow(name, 'guest', GUEST_ROWS, label);

/** The named figures, host scenarios' first. */
export const NAMED_FIGURES: readonly NamedFigure[] = [
  host('overcommit_nominal', 'Overcommit nominal (RAM/host)'),
  host('overcommit_logical_mean', 'Overcommit logical mean'),
  host('overcommit_logical_min', 'Overcommit logical min'),
  host('host_free_min_mib', 'Host free min (MiB)'),
  host('host_free_mean_mib', 'Host free mean (MiB)'),
  host('host_swap_peak_mib', 'Host swap peak (MiB)'),
  host('host_swap_ins', 'Host swap-ins (pages)'),
  host('host_swap_outs', 'Host swap-outs (pages)'),
  host('host_swap_in_stall_s', 'Host swap-in stall (s)'),
  host('host_oom_kills', 'Host OOM kills (VMs)'),
  host('guest_oom_kills', 'Guest OOM kills'),
  host('guest_allocstall', 'Guest allocstall'),
  host('guest_reclaim_stall_s', 'Guest reclaim stall (s)'),
  host('balloon_churn_pages', 'Balloon churn (pages)'),
  host('balloon_commands', 'Balloon commands'),
  host('reported_pages', 'Free page reported (pages)'),
  host('burst_fault_elapsed_mean_s', 'Burst fault elapsed mean (s)'),
  host('burst_fault_elapsed_max_s', 'Burst fault elapsed max (s)'),
  host('workload_entries_failed', 'Workload entries failed'),
  host('build_elapsed_mean_s', 'Build elapsed mean (s)'),
  host('build_slowdown', 'Build slowdown (elapsed/CPU)'),
  guest('nr_free_pages', 'nr_free_pages'),
  { name: 'oom_kills', kind: 'guest', label: 'OOM kills', decimals: 0, value: (d) => vmstatValue(d as ResultDocument, 'oom_kill') },
  guest('balloon_inflate', 'balloon_inflate'),
  guest('balloon_deflate', 'balloon_deflate'),
  guest('balloon_migrate', 'balloon_migrate'),
  guest('free_2mib_blocks_end', 'Free 2MiB blocks (order>=9, end)'),
  guest('highalloc_pass1_pct', 'Success % Pass 1'),
  guest('highalloc_pass2_pct', 'Success % Pass 2'),
  guest('highalloc_rested_pct', 'Success % while Rested'),
  guest('host_rss_mib', 'Host RSS (MiB)'),
  guest('migration_total_time_ms', 'Migration total-time (ms)'),
  guest('migration_downtime_ms', 'Migration downtime (ms)'),
  guest('migration_transferred_mib', 'Migration transferred (MiB)'),
  { name: 'virtual_time_s', kind: 'any', label: 'Virtual time (s)', decimals: 3, value: (d) => d.duration_ns / 1e9 },
];

/** What a sweep shows when its file names no figures. */
export const DEFAULT_FIGURES: Readonly<Record<SweepDocKind, readonly string[]>> = {
  host: ['overcommit_logical_mean', 'host_free_min_mib', 'host_swap_peak_mib', 'host_swap_ins', 'host_oom_kills', 'guest_oom_kills', 'guest_allocstall', 'balloon_churn_pages', 'workload_entries_failed'],
  guest: ['nr_free_pages', 'oom_kills', 'balloon_inflate', 'host_rss_mib', 'virtual_time_s'],
};

/** The top-level fields of each document (the compiler keeps these lists complete). */
const GUEST_FIELDS: Record<keyof ResultDocument, true> = {
  balloonlab: true, scenario: true, seed: true, guest: true, costs: true, duration_ns: true, wall_ms: true, vmstat: true,
  kernel: true, balloon: true, migration: true, highalloc: true, workloads: true, host: true, cpu: true, final: true,
  events: true, series: true, memory_maps: true,
};
const HOST_FIELDS: Record<keyof HostResultDocument, true> = {
  balloonlab: true, scenario: true, seed: true, kind: true, duration_ns: true, wall_ms: true, host: true, vms: true,
};
export const DOCUMENT_FIELDS: Readonly<Record<SweepDocKind, readonly string[]>> = { guest: Object.keys(GUEST_FIELDS), host: Object.keys(HOST_FIELDS) };

/** A figure of a sweep: a named one, or a path into the result document (`path` set). */
export type SweepFigure = { name: string; label: string; path: string | null; decimals: number | null };

export function namedFigure(name: string): NamedFigure | undefined {
  return NAMED_FIGURES.find((f) => f.name === name);
}

/** What `path` reaches in `doc`: a number, or undefined (missing, or not a number). */
export function pathValue(doc: unknown, path: string): number | undefined {
  let at: unknown = doc;
  for (const seg of path.split('.')) {
    if (Array.isArray(at)) {
      at = /^\d+$/.test(seg) ? at[Number(seg)] : at.find((x: unknown) => typeof x === 'object' && x !== null && (x as { name?: unknown }).name === seg);
    } else if (typeof at === 'object' && at !== null && Object.prototype.hasOwnProperty.call(at, seg)) {
      at = (at as Record<string, unknown>)[seg];
    } else {
      return undefined;
    }
  }
  return typeof at === 'number' && Number.isFinite(at) ? at : undefined;
}

/** Where `path` stops reaching anything in `doc`, and what is there instead (for a message). */
export function pathStop(doc: unknown, path: string): string {
  let at: unknown = doc;
  const segs = path.split('.');
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!, here = segs.slice(0, i).join('.') || '(the document)';
    let next: unknown;
    if (Array.isArray(at)) {
      next = /^\d+$/.test(seg) ? at[Number(seg)] : at.find((x: unknown) => typeof x === 'object' && x !== null && (x as { name?: unknown }).name === seg);
      if (next === undefined) {
        const names = at.flatMap((x: unknown) => (typeof x === 'object' && x !== null && typeof (x as { name?: unknown }).name === 'string' ? [(x as { name: string }).name] : []));
        return `${here} is a list of ${at.length}${names.length ? ` (names: ${names.slice(0, 20).join(', ')})` : ''}: no entry "${seg}"`;
      }
    } else if (typeof at === 'object' && at !== null) {
      if (!Object.prototype.hasOwnProperty.call(at, seg)) return `${here} has no field "${seg}" (its fields: ${Object.keys(at).slice(0, 40).join(', ')})`;
      next = (at as Record<string, unknown>)[seg];
    } else {
      return `${here} is ${JSON.stringify(at)}, not an object`;
    }
    at = next;
  }
  return `${path} is ${Array.isArray(at) ? 'a list' : typeof at === 'object' && at !== null ? 'an object' : JSON.stringify(at)}, not a number`;
}

/** A figure's value in one run's document. */
export function figureValue(f: SweepFigure, doc: SweepDocument): number | undefined {
  if (f.path !== null) return pathValue(doc, f.path);
  const v = namedFigure(f.name)?.value(doc);
  return v === undefined || !Number.isFinite(v) ? undefined : v;
}
