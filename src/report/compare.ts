/**
 * Side-by-side comparison of variants, in the layout of mmtests' compare-kernels:
 * one column per variant, the first one the baseline, the change against the
 * baseline in parentheses. Rows are declared as extractors over result documents,
 * so each capability adds its own rows (highalloc passes, migration figures, ...).
 */
import type { ResultDocument } from '../scenario/runner.js';
import { type EventOfKind, type ResultEventKind, eventsOfKind } from '../actions/index.js';

export type CompareRow<D = ResultDocument> = {
  label: string;
  /** The row's value for one variant, or undefined when the variant has none. */
  value: (doc: D) => number | undefined;
  /** Decimal places (default 0). */
  decimals?: number;
};

/** The last event of a kind (optionally with a label). */
export function lastEvent<K extends ResultEventKind>(doc: ResultDocument, kind: K, label?: string): EventOfKind<K> | undefined {
  return eventsOfKind(doc.events, kind, label).at(-1);
}

function vm(name: string): (doc: ResultDocument) => number | undefined {
  return (doc) => doc.vmstat[name];
}

/** Rows every comparison shows: fragmentation at the end of the run, then allocator counters. */
export function defaultCompareRows(docs: ResultDocument[]): CompareRow[] {
  const rows: CompareRow[] = [];
  const labels = new Set<string>();
  for (const d of docs) for (const e of eventsOfKind(d.events, 'alloc_pages')) labels.add(e.label ?? `alloc@${e.t_ns}`);
  for (const l of labels) {
    rows.push({
      label: `Alloc success % ${l}`, decimals: 2,
      value: (doc) => eventsOfKind(doc.events, 'alloc_pages').find((x) => (x.label ?? `alloc@${x.t_ns}`) === l)?.success_pct,
    });
  }
  for (const o of [9, 10]) rows.push({ label: `Free order-${o} blocks (end)`, value: (doc) => doc.final.free_blocks[o] });
  // 2 MiB units of free memory (an order-10 block holds two): what THP and hugetlb can use
  const huge = (fb: number[] | undefined) => (fb ? fb[9]! + 2 * fb[10]! : undefined);
  // mmtests' stress-highalloc table: passes, then times
  for (const pass of ['Pass 1', 'Pass 2', 'while Rested']) {
    rows.push({
      label: `Success % ${pass}`, decimals: 2,
      value: (doc) => doc.highalloc?.passes.find((p) => p.name === pass)?.success_pct,
    });
  }
  rows.push({ label: 'User (s)', decimals: 2, value: (doc) => doc.workloads?.user_s });
  rows.push({ label: 'System (s)', decimals: 2, value: (doc) => doc.workloads?.system_s });
  rows.push({ label: 'Elapsed (s)', decimals: 2, value: (doc) => (doc.workloads || doc.highalloc ? doc.duration_ns / 1e9 : undefined) });
  rows.push({
    label: 'Build elapsed (s)', decimals: 2,
    value: (doc) => {
      const b = doc.workloads?.kernel_build[0];
      return typeof b?.elapsed_s === 'number' ? b.elapsed_s : undefined;
    },
  });
  rows.push({ label: 'Free 2MiB blocks (order>=9, end)', value: (doc) => huge(doc.final.free_blocks) });
  rows.push({ label: 'compact_memory 2MiB blocks before', value: (doc) => huge(lastEvent(doc, 'compact_memory')?.free_blocks_before) });
  rows.push({ label: 'compact_memory 2MiB blocks after', value: (doc) => huge(lastEvent(doc, 'compact_memory')?.free_blocks_after) });
  for (const t of ['Unmovable', 'Movable', 'Reclaimable', 'HighAtomic']) rows.push({ label: `Pageblocks ${t} (end)`, value: (doc) => doc.final.pageblocks[t] });
  for (const name of ['nr_free_pages', 'pgalloc_dma', 'pgalloc_dma32', 'pgalloc_normal', 'pgfree', 'balloon_inflate', 'balloon_deflate', 'balloon_migrate']) {
    rows.push({ label: name, value: vm(name) });
  }
  if (docs.some((d) => d.highalloc || d.workloads)) rows.push(...mmtestsVmstatRows());
  type MigrationFigures = NonNullable<ResultDocument['migration']>;
  const mig = (k: keyof MigrationFigures) => (doc: ResultDocument) => {
    const v = doc.migration?.[k];
    return typeof v === 'number' ? v : undefined;
  };
  const hint = (k: 'hinted_pages' | 'skipped_pages') => (doc: ResultDocument) => doc.migration?.['free-page-hint'][k];
  rows.push({ label: 'Migration total-time (ms)', value: mig('total-time') });
  rows.push({ label: 'Migration downtime (ms)', value: mig('downtime') });
  rows.push({ label: 'Migration setup-time (ms)', value: mig('setup-time') });
  rows.push({ label: 'Migration transferred (MiB)', decimals: 1, value: (doc) => { const v = mig('transferred')(doc); return v === undefined ? undefined : v / 2 ** 20; } });
  rows.push({ label: 'Migration duplicate (zero) pages', value: mig('duplicate') });
  rows.push({ label: 'Migration normal pages', value: mig('normal') });
  rows.push({ label: 'Migration dirty-sync-count', value: mig('dirty-sync-count') });
  rows.push({ label: 'Migration hinted pages', value: hint('hinted_pages') });
  rows.push({ label: 'Migration skipped pages', value: hint('skipped_pages') });
  rows.push({ label: 'Balloon actual (MiB)', decimals: 1, value: (doc) => (doc.balloon.features.length ? (doc.balloon.actual_pages * 4096) / 2 ** 20 : undefined) });
  rows.push({ label: 'Host RSS (MiB)', decimals: 1, value: (doc) => doc.host.rss_bytes / 2 ** 20 });
  rows.push({ label: 'Virtual time (s)', decimals: 3, value: (doc) => doc.duration_ns / 1e9 });
  return rows;
}

function pct(base: number | undefined, v: number | undefined): string {
  if (base === undefined || v === undefined) return '';
  if (base === 0) return v === 0 ? '0.00%' : 'n/a';
  return `${(((v - base) / Math.abs(base)) * 100).toFixed(2)}%`;
}

/**
 * Formats the comparison: a two-line header (scenario, variant names), then one line
 * per row: label, and per variant `value (change%)`.
 */
export function formatCompare<D>(scenario: string, names: string[], docs: D[], rows: CompareRow<D>[]): string {
  const labelW = Math.max(28, ...rows.map((r) => r.label.length + 2));
  const cells = rows.map((r) => docs.map((d) => r.value(d)));
  const colW = Math.max(22, ...names.map((n) => n.length + 2), ...cells.flat().map((v) => (v === undefined ? 0 : v.toFixed(2).length + 12)));
  const lines: string[] = [];
  lines.push(' '.repeat(labelW) + names.map(() => scenario.slice(0, colW - 1).padStart(colW)).join(''));
  lines.push(' '.repeat(labelW) + names.map((n) => n.padStart(colW)).join(''));
  rows.forEach((r, i) => {
    const vals = cells[i]!;
    if (vals.every((v) => v === undefined)) return;
    const base = vals[0];
    const parts = vals.map((v) => {
      if (v === undefined) return '-'.padStart(colW);
      const s = v.toFixed(r.decimals ?? 0);
      const p = pct(base, v);
      return `${s} (${p.padStart(8)})`.padStart(colW);
    });
    lines.push(r.label.padEnd(labelW) + parts.join(''));
  });
  return lines.join('\n') + '\n';
}

/**
 * mmtests' vmstat block (compare-kernels' "MMTests Statistics: vmstat"): reclaim,
 * THP and compaction counters, with efficiency = reclaimed / scanned and velocity =
 * scanned per second of elapsed time.
 */
export function mmtestsVmstatRows(): CompareRow[] {
  const v = (doc: ResultDocument, k: string) => doc.vmstat[k] ?? 0;
  const secs = (doc: ResultDocument) => doc.duration_ns / 1e9;
  const pct = (a: number, b: number) => (b > 0 ? (a * 100) / b : 0);
  const rows: CompareRow[] = [
    { label: 'Page Ins', value: (d) => v(d, 'pgpgin') },
    { label: 'Page Outs', value: (d) => v(d, 'pgpgout') },
    { label: 'Swap Ins', value: (d) => v(d, 'pswpin') },
    { label: 'Swap Outs', value: (d) => v(d, 'pswpout') },
    { label: 'Direct pages scanned', value: (d) => v(d, 'pgscan_direct') },
    { label: 'Kswapd pages scanned', value: (d) => v(d, 'pgscan_kswapd') },
    { label: 'Kswapd pages reclaimed', value: (d) => v(d, 'pgsteal_kswapd') },
    { label: 'Direct pages reclaimed', value: (d) => v(d, 'pgsteal_direct') },
    { label: 'Kswapd efficiency %', decimals: 2, value: (d) => pct(v(d, 'pgsteal_kswapd'), v(d, 'pgscan_kswapd')) },
    { label: 'Kswapd velocity', decimals: 2, value: (d) => v(d, 'pgscan_kswapd') / secs(d) },
    { label: 'Direct efficiency %', decimals: 2, value: (d) => pct(v(d, 'pgsteal_direct'), v(d, 'pgscan_direct')) },
    { label: 'Direct velocity', decimals: 2, value: (d) => v(d, 'pgscan_direct') / secs(d) },
    { label: 'Percentage direct scans', decimals: 2, value: (d) => pct(v(d, 'pgscan_direct'), v(d, 'pgscan_direct') + v(d, 'pgscan_kswapd')) },
    { label: 'Page writes by reclaim', value: (d) => v(d, 'nr_vmscan_write') },
    { label: 'THP fault alloc', value: (d) => v(d, 'thp_fault_alloc') },
    { label: 'THP collapse alloc', value: (d) => v(d, 'thp_collapse_alloc') },
    { label: 'THP splits', value: (d) => v(d, 'thp_split_page') },
    { label: 'THP fault fallback', value: (d) => v(d, 'thp_fault_fallback') },
    { label: 'THP collapse fail', value: (d) => v(d, 'thp_collapse_alloc_failed') },
    { label: 'Compaction stalls', value: (d) => v(d, 'compact_stall') },
    { label: 'Compaction success', value: (d) => v(d, 'compact_success') },
    { label: 'Compaction failures', value: (d) => v(d, 'compact_fail') },
    { label: 'Compaction pages moved', value: (d) => v(d, 'pgmigrate_success') },
    { label: 'Compaction move failure', value: (d) => v(d, 'pgmigrate_fail') },
    { label: 'OOM kills', value: (d) => v(d, 'oom_kill') },
  ];
  return rows;
}
