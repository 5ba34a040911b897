/**
 * Side-by-side comparison of variants, in the layout of mmtests' compare-kernels:
 * one column per variant, the first one the baseline, the change against the
 * baseline in parentheses. Rows are declared as extractors over result documents,
 * so each capability adds its own rows (highalloc passes, migration figures, ...).
 */
import type { ResultDocument } from '../scenario/runner.js';
import type { FreePageHintSummary } from './free_page_hint.js';
import { type EraActivity, type KernelVersion, kernelProfile, profileDifferences, profileValue } from '../guest/mm/kernel_era.js';
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

/**
 * A /proc/vmstat figure by its 6.1 name, also from a document of another era: Linux
 * 3.6 counts reclaim per zone (pgscan_direct_dma32 ...), calls pgmigrate_success
 * compact_pages_moved and thp_split_page thp_split, and has no oom_kill or
 * balloon_* lines (the result document has those figures elsewhere).
 */
export function vmstatValue(doc: ResultDocument, name: string): number | undefined {
  const v = doc.vmstat;
  if (v[name] !== undefined) return v[name];
  const zones = ['dma', 'dma32', 'normal', 'movable'].map((z) => v[`${name}_${z}`]);
  if (zones.some((x) => x !== undefined)) return zones.reduce<number>((a, x) => a + (x ?? 0), 0);
  switch (name) {
    case 'pgmigrate_success': return v.compact_pages_moved;
    case 'pgmigrate_fail': return v.compact_pagemigrate_failed;
    case 'thp_split_page': return v.thp_split;
    case 'oom_kill': return doc.kernel?.oom_kills;
    case 'balloon_inflate': return doc.balloon.features.length ? doc.balloon.inflated : undefined;
    case 'balloon_deflate': return doc.balloon.features.length ? doc.balloon.deflated : undefined;
    case 'balloon_migrate': return doc.balloon.features.length ? doc.balloon.migrated : undefined;
    default: return undefined;
  }
}

function vm(name: string): (doc: ResultDocument) => number | undefined {
  return (doc) => vmstatValue(doc, name);
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
  rows.push(...highallocExplainRows());
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
  for (const t of ['Unmovable', 'Movable', 'Reclaimable']) rows.push({ label: `Pageblocks ${t} (end)`, value: (doc) => doc.final.pageblocks[t] });
  rows.push({ label: 'Pageblocks HighAtomic|Reserve (end)', value: (doc) => doc.final.pageblocks.HighAtomic ?? doc.final.pageblocks.Reserve });
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
  rows.push({ label: 'Migration destination check ok', value: (doc) => (doc.migration ? (doc.migration.destination_check === 'ok' ? 1 : 0) : undefined) });
  rows.push(...freePageHintRows());
  rows.push({ label: 'Balloon actual (MiB)', decimals: 1, value: (doc) => (doc.balloon.features.length ? (doc.balloon.actual_pages * 4096) / 2 ** 20 : undefined) });
  rows.push({ label: 'Host RSS (MiB)', decimals: 1, value: (doc) => doc.host.rss_bytes / 2 ** 20 });
  rows.push({ label: 'Virtual time (s)', decimals: 3, value: (doc) => doc.duration_ns / 1e9 });
  return rows;
}

/**
 * Free page hinting's figures (the result's balloon.free_page_hint, present when the
 * scenario names the design: scenarios/hint-designs.yaml): the first answered request's
 * share of free memory and latency, v33's buffer and zone lock holds, what the guest's
 * other allocations met while it hinted, and the zeroing the hint allocations cost.
 */
export function freePageHintRows(): CompareRow[] {
  const f = (label: string, get: (h: FreePageHintSummary) => number | undefined, decimals = 0): CompareRow => ({
    label, decimals, value: (doc) => { const h = doc.balloon.free_page_hint; return h ? get(h) : undefined; },
  });
  const v33 = (h: FreePageHintSummary, v: number | undefined) => (h.design === 'v33' ? v : undefined);
  return [
    f('Hint: free memory hinted (%)', (h) => h.first?.share_pct, 1),
    f('Hint: latency (ms)', (h) => (h.first ? h.first.latency_ns / 1e6 : undefined), 2),
    f('Hint: reports', (h) => h.reports),
    f('Hint: buffer (pages)', (h) => v33(h, h.first?.buffer_pages)),
    f('Hint: zone lock held (ms)', (h) => v33(h, h.totals.lock_hold_ns / 1e6), 3),
    f('Hint: longest lock hold (us)', (h) => v33(h, h.totals.max_lock_hold_ns / 1e3), 1),
    f('Hinting: allocs waiting on zone lock', (h) => h.during_hinting.alloc_lock_waits),
    f('Hinting: zone lock wait (ms)', (h) => h.during_hinting.alloc_lock_wait_ns / 1e6, 3),
    f('Hinting: direct reclaim stalls', (h) => h.during_hinting.allocstalls),
    f('Hinting: OOM kills', (h) => h.during_hinting.oom_kills),
    f('Hinting: blocks taken back (shrinker)', (h) => h.during_hinting.blocks_shrunk),
    f('Hint: pages zeroed (init_on_alloc)', (h) => h.totals.zeroed_pages),
    f('Hint: zeroing (ms)', (h) => h.totals.zero_ns / 1e6, 1),
  ];
}

/** Migratetype indexes of the model's enum (HighallocExplain's arrays). */
const MT = { unmovable: 0, movable: 1, reclaimable: 2, reserve: 3 } as const;

/**
 * Why each stress-highalloc pass came out as it did (HighallocExplain): where the huge
 * pages came from, why attempts failed, and the pageblocks at the pass's end.
 */
export function highallocExplainRows(): CompareRow[] {
  const rows: CompareRow[] = [];
  for (const [pass, short] of [['Pass 1', 'P1'], ['Pass 2', 'P2'], ['while Rested', 'Rested']] as const) {
    const ex = (doc: ResultDocument) => doc.highalloc?.passes.find((p) => p.name === pass)?.explain;
    const f = (label: string, get: (e: NonNullable<ReturnType<typeof ex>>) => number) => rows.push({ label: `${short} ${label}`, value: (d) => { const e = ex(d); return e ? get(e) : undefined; } });
    f('from free lists', (e) => e.from_free_lists);
    f('after compaction', (e) => e.after_compaction);
    f('after reclaim', (e) => e.after_reclaim);
    f('by a fallback', (e) => e.by_fallback);
    f('failed: compaction', (e) => e.failed_compaction);
    f('failed: deferred', (e) => e.failed_deferred);
    f('failed: not compacted', (e) => e.failed_skipped);
    f('compaction stalls', (e) => e.compact_stalls);
    f('pages migrated', (e) => e.pages_migrated);
    f('direct reclaimed', (e) => e.direct_reclaimed);
    f('mixed Movable blocks', (e) => e.mixed_blocks[MT.movable] ?? 0);
    f('mixed Unmovable blocks', (e) => e.mixed_blocks[MT.unmovable] ?? 0);
    f('balloon in Movable blocks', (e) => e.balloon_pages_by_block[MT.movable] ?? 0);
    f('balloon in Unmovable blocks', (e) => e.balloon_pages_by_block[MT.unmovable] ?? 0);
  }
  return rows;
}

/**
 * For two variants: the kernel-profile mechanisms that differ between their kernels
 * (kernel_era.ts KERNEL_MECHANISMS), each with the code it was read from, and, where
 * a counter tells, how often it acted in each run.
 */
export function formatEraDiff(a: { name: string; doc: ResultDocument }, b: { name: string; doc: ResultDocument }): string {
  const ka = kernelProfile(a.doc.kernel.version as KernelVersion), kb = kernelProfile(b.doc.kernel.version as KernelVersion);
  const diffs = profileDifferences(ka, kb);
  const lines = [`Kernel differences: ${a.name} (Linux ${ka.version}) vs ${b.name} (Linux ${kb.version})`];
  if (diffs.length === 0) return lines.concat('  none: both run the same kernel profile').join('\n') + '\n';
  for (const m of diffs) {
    const act = m.activity;
    const acted = act ? `   acted: ${a.name} ${a.doc.kernel.activity[act]}, ${b.name} ${b.doc.kernel.activity[act]} (${act})` : '';
    lines.push(`- ${m.field}: ${JSON.stringify(profileValue(ka, m.field))} vs ${JSON.stringify(profileValue(kb, m.field))}${acted}`);
    lines.push(`    ${m.what}`);
    lines.push(`    ${ka.version}: ${m.source[ka.version as '3.6' | '6.1']}; ${kb.version}: ${m.source[kb.version as '3.6' | '6.1']}`);
  }
  const keys = Object.keys(a.doc.kernel.activity) as Array<keyof EraActivity>;
  lines.push(`Mechanism activity (${a.name} / ${b.name}): ${keys.map((k) => `${k} ${a.doc.kernel.activity[k]}/${b.doc.kernel.activity[k]}`).join(', ')}`);
  return lines.join('\n') + '\n';
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
 * formatCompare for variants named `group/name`: one table per group (in the order the
 * groups first appear), each with the group as its first header line and its own first
 * variant as its baseline, separated by a blank line. Names without a `/` are one
 * table, exactly formatCompare's.
 */
export function formatCompareGroups<D>(scenario: string, names: string[], docs: D[], rows: CompareRow<D>[]): string {
  const groupOf = (n: string) => { const i = n.lastIndexOf('/'); return i < 0 ? null : n.slice(0, i); };
  if (names.every((n) => groupOf(n) === null)) return formatCompare(scenario, names, docs, rows);
  const order: string[] = [];
  const members = new Map<string, number[]>();
  names.forEach((n, i) => {
    const g = groupOf(n) ?? scenario;
    if (!members.has(g)) { members.set(g, []); order.push(g); }
    members.get(g)!.push(i);
  });
  return order.map((g) => {
    const idx = members.get(g)!;
    return formatCompare(g, idx.map((i) => { const n = names[i]!; return n.slice(n.lastIndexOf('/') + 1); }), idx.map((i) => docs[i]!), rows);
  }).join('\n');
}

/**
 * mmtests' vmstat block (compare-kernels' "MMTests Statistics: vmstat"): reclaim,
 * THP and compaction counters, with efficiency = reclaimed / scanned and velocity =
 * scanned per second of elapsed time.
 */
export function mmtestsVmstatRows(): CompareRow[] {
  const v = (doc: ResultDocument, k: string) => vmstatValue(doc, k) ?? 0;
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
