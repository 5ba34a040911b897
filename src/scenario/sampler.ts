/**
 * The runner's time series: at every sample tick, the figures people plot — free
 * pages per order and per migratetype, pageblocks per migratetype, the balloon's
 * target and actual size, the host's RSS, every /proc/vmstat counter, and a running
 * migration's progress — into one flat Float64Array (one row of `stride` numbers per
 * sample), turned into columns once at the end (`{ t_ns: [...], columns: { name: [...] } }`).
 *
 * Sampling reads state and draws no randomness: it runs on the runner's existing tick
 * (the one that samples RSS), so a run with the default interval schedules exactly the
 * events it always did, and a run with another interval only adds read-only ticks.
 *
 * NOTE: one preallocated, doubling Float64Array instead of an object per sample: a
 * sample is about 250 numbers and costs a few microseconds (bench scenario, docs/pictures.md).
 */
import type { Vm } from '../machine/machine.js';
import { MAX_ORDER, MIGRATE_TYPES, MIGRATETYPE_NAMES, PAGEBLOCK_NR_PAGES, getPageblockMigratetype } from '../guest/mm/memmap.js';
import { vmstatEntries } from '../guest/mm/vmstat.js';
import { ramRssBytes } from '../host/ram.js';
import { simAfter } from '../sim/clock.js';
import type { MigrationState } from '../host/migration.js';

/** The result document's `series`: one time column and named value columns of the same length. */
export type ResultSeries = {
  /** The sampling interval (the scenario's `sample.interval`, or the default). */
  interval_ns: number;
  /** Virtual time of each sample. */
  t_ns: number[];
  /**
   * Values per sample, by name: `free_pages.order.<o>` (pages in free blocks of order
   * o, all zones), `free_pages.<Migratetype>` (free pages on that type's free lists),
   * `pageblocks.<Migratetype>`, `balloon.target_pages`, `balloon.actual_pages`,
   * `host.rss_bytes`, `vmstat.<counter>` (only counters that changed during the run),
   * and while a migration exists `migration.remaining_bytes`, `migration.transferred_bytes`,
   * `migration.dirty_pages_rate`, `migration.iteration`, `migration.mbps`,
   * `migration.dirty_sync_count` (null before it started).
   */
  columns: Record<string, Array<number | null>>;
  /**
   * While a migration runs, its progress sampled finely (every 10 ms of virtual time,
   * doubled whenever 2000 samples are reached): the same six figures as the
   * `migration.*` columns, without the prefix, on their own time column. Present when
   * a migration ran.
   */
  migration?: { interval_ns: number; t_ns: number[]; columns: Record<string, number[]> };
};

/** The default interval: about 500 samples over the run, none closer than 100 ms (what rss_series always used). */
export function defaultSampleInterval(endNs: number): number {
  return Math.max(100_000_000, Math.ceil(endNs / 500));
}

const MIGRATION_COLUMNS = ['remaining_bytes', 'transferred_bytes', 'dirty_pages_rate', 'iteration', 'mbps', 'dirty_sync_count'] as const;

/** The fine migration sampler: one array per figure, and its own tick while a migration runs. */
type MigrationSampler = { intervalNs: number; t: number[]; cols: number[][]; watching: MigrationState | null };

const MIGRATION_SAMPLE_NS = 10_000_000;
const MIGRATION_MAX_SAMPLES = 2000;

export type Sampler = {
  vm: Vm;
  migration: MigrationSampler | null;
  intervalNs: number;
  /** Column names, in row order. */
  names: string[];
  /** Where the vmstat columns start and how many there are. */
  vmstatStart: number;
  vmstatCount: number;
  migrationStart: number;
  stride: number;
  rows: Float64Array;
  t: Float64Array;
  n: number;
};

export function createSampler(vm: Vm, intervalNs: number): Sampler {
  const names: string[] = [];
  for (let o = 0; o < MAX_ORDER; o++) names.push(`free_pages.order.${o}`);
  for (let mt = 0; mt < MIGRATE_TYPES; mt++) names.push(`free_pages.${MIGRATETYPE_NAMES[mt]}`);
  for (let mt = 0; mt < MIGRATE_TYPES; mt++) names.push(`pageblocks.${MIGRATETYPE_NAMES[mt]}`);
  names.push('balloon.target_pages', 'balloon.actual_pages', 'host.rss_bytes');
  const vmstatStart = names.length;
  const vm0 = vmstatEntries(vm.guest.pgdat);
  for (const [k] of vm0) names.push(`vmstat.${k}`);
  const migrationStart = names.length;
  for (const k of MIGRATION_COLUMNS) names.push(`migration.${k}`);
  const stride = names.length;
  const cap = 64;
  return { vm, migration: null, intervalNs, names, vmstatStart, vmstatCount: vm0.length, migrationStart, stride, rows: new Float64Array(cap * stride), t: new Float64Array(cap), n: 0 };
}

/** Takes one sample at virtual time `now` (reads state only). */
export function samplerTake(s: Sampler, now: number): void {
  if (s.n === s.t.length) {
    const rows = new Float64Array(s.rows.length * 2); rows.set(s.rows); s.rows = rows;
    const t = new Float64Array(s.t.length * 2); t.set(s.t); s.t = t;
  }
  const { guest, host } = s.vm;
  const pgdat = guest.pgdat;
  const r = s.rows;
  const base = s.n * s.stride;
  s.t[s.n] = now;
  r.fill(0, base, base + s.stride);
  const freeMt = base + MAX_ORDER;
  for (const z of pgdat.zones) {
    for (let o = 0; o < MAX_ORDER; o++) {
      r[base + o] = r[base + o]! + z.nrFree[o]! * (1 << o);
      for (let mt = 0; mt < MIGRATE_TYPES; mt++) r[freeMt + mt] = r[freeMt + mt]! + z.nrFreeMt[o * MIGRATE_TYPES + mt]! * (1 << o);
    }
  }
  // pageblocks per migratetype as pagetypeinfo (and the result's `final.pageblocks`) count them
  const pb = freeMt + MIGRATE_TYPES;
  const map = pgdat.map;
  for (const z of pgdat.zones) {
    const end = z.zoneStartPfn + z.spannedPages;
    for (let pfn = z.zoneStartPfn & ~(PAGEBLOCK_NR_PAGES - 1); pfn < end; pfn += PAGEBLOCK_NR_PAGES) {
      const i = pb + getPageblockMigratetype(map, pfn);
      r[i] = r[i]! + 1;
    }
  }
  const dev = host.balloon;
  let i = pb + MIGRATE_TYPES;
  r[i++] = dev?.numPages ?? 0;
  r[i++] = dev?.actual ?? 0;
  r[i++] = ramRssBytes(host.ram);
  const entries = vmstatEntries(pgdat);
  for (let k = 0; k < s.vmstatCount; k++) r[base + s.vmstatStart + k] = entries[k]![1];
  const m = host.migration;
  const mi = base + s.migrationStart;
  if (m) {
    const f = migrationFigures(m);
    for (let k = 0; k < f.length; k++) r[mi + k] = f[k]!;
  } else {
    for (let k = 0; k < MIGRATION_COLUMNS.length; k++) r[mi + k] = NaN;
  }
  s.n++;
}

function migrationFigures(m: MigrationState): number[] {
  return [m.dirtyPages * 4096, m.transferred, Math.round(m.dirtyPagesRate), m.iterations, Math.round(m.mbps * 1000) / 1000, m.dirtySyncCount];
}

function migrationActive(m: MigrationState): boolean {
  return m.status === 'setup' || m.status === 'active' || m.status === 'device';
}

/**
 * Starts the fine migration sampler when a migration has started that it is not
 * watching yet (the runner calls this after every timeline entry and at every tick).
 * Its tick reads the migration's figures only; it stops after the sample that sees the
 * migration completed or failed.
 */
export function samplerWatchMigration(s: Sampler): void {
  const m = s.vm.host.migration;
  if (!m || !migrationActive(m) || s.migration?.watching === m) return;
  const ms = s.migration ??= { intervalNs: MIGRATION_SAMPLE_NS, t: [], cols: MIGRATION_COLUMNS.map(() => []), watching: null };
  ms.watching = m;
  const sim = s.vm.sim;
  const tick = () => {
    if (s.vm.host.migration !== m) return;
    ms.t.push(sim.now);
    migrationFigures(m).forEach((v, k) => ms.cols[k]!.push(v));
    if (ms.t.length >= MIGRATION_MAX_SAMPLES) {
      // NOTE: decimate in place (keep every other sample) and sample half as often
      ms.t = ms.t.filter((_, i) => i % 2 === 0);
      ms.cols = ms.cols.map((c) => c.filter((_, i) => i % 2 === 0));
      ms.intervalNs *= 2;
    }
    if (migrationActive(m)) simAfter(sim, ms.intervalNs, tick);
  };
  tick();
}

/**
 * The columns: every fixed column, the vmstat counters whose value changed during the
 * run, and the migration columns when a migration existed at some sample.
 */
export function samplerSeries(s: Sampler): ResultSeries {
  const columns: Record<string, Array<number | null>> = {};
  const n = s.n, r = s.rows, stride = s.stride;
  for (let c = 0; c < stride; c++) {
    const isVmstat = c >= s.vmstatStart && c < s.vmstatStart + s.vmstatCount;
    const isMigration = c >= s.migrationStart;
    if (isVmstat) {
      let moved = false;
      const v0 = r[c]!;
      for (let k = 1; k < n && !moved; k++) moved = r[k * stride + c] !== v0;
      if (!moved) continue;
    }
    if (isMigration) {
      let any = false;
      for (let k = 0; k < n && !any; k++) any = !Number.isNaN(r[k * stride + c]);
      if (!any) continue;
    }
    const col = new Array<number | null>(n);
    for (let k = 0; k < n; k++) {
      const v = r[k * stride + c]!;
      col[k] = Number.isNaN(v) ? null : v;
    }
    columns[s.names[c]!] = col;
  }
  const out: ResultSeries = { interval_ns: s.intervalNs, t_ns: Array.from(s.t.subarray(0, n)), columns };
  const ms = s.migration;
  if (ms) {
    const mc: Record<string, number[]> = {};
    MIGRATION_COLUMNS.forEach((k, i) => { mc[k] = ms.cols[i]!; });
    out.migration = { interval_ns: ms.intervalNs, t_ns: ms.t, columns: mc };
  }
  return out;
}
