/**
 * The differential report: one scenario run on a real guest and on the model guest,
 * side by side — what the balloon device saw (when both drive balloonlab's device),
 * every timeline entry's event with MemTotal/MemFree/MemAvailable after it, and the
 * guests' state at the end. Numbers carry their relative difference (real against
 * model); everything else is marked equal or not.
 */
import type { Scenario } from '../../scenario/schema.js';
import { type ResultDocument, runScenario } from '../../scenario/runner.js';
import { formatSize, formatTime } from '../../scenario/units.js';
import { procMeminfo, procVmstat, procBuddyinfo, procPagetypeinfo, procZoneinfo, procSlabinfo } from '../../report/proc.js';
import { parseMeminfo, diffProbe, DIFF_SLAB_CACHES } from '../../report/proc_parse.js';
import type { Guest } from '../../guest/guest.js';
import type { Vm } from '../../machine/machine.js';
import { type DeviceView, type Distribution, type HintRound, deviceView } from '../../report/balloon_trace.js';
import { BALLOON_STAT_NAMES, VIRTIO_BALLOON_CMD_ID_STOP, VIRTIO_BALLOON_CMD_ID_DONE } from '../../virtio/virtio_balloon.js';
import type { RealEvent, RealRunResult } from './runner.js';
import { MAX_ORDER, MIGRATETYPE_NAMES } from '../../guest/mm/memmap.js';

/** vmstat entries that are levels (nr_*), not event counts: shown as they are, not as moves. */
const VMSTAT_LEVELS = new Set(['vmstat.nr_free_pages', 'vmstat.nr_anon_pages', 'vmstat.nr_anon_transparent_hugepages', 'vmstat.nr_file_pages', 'vmstat.nr_dirty', 'vmstat.nr_writeback', 'vmstat.nr_slab_reclaimable', 'vmstat.nr_slab_unreclaimable']);

/** The model half of a differential run. */
export type ModelSide = {
  doc: ResultDocument;
  device: DeviceView | null;
  /** The diff probe after each entry (proc_parse.ts diffProbe). */
  probes: Array<Record<string, number>>;
  /** /proc/meminfo at the start and the end. */
  memtotal_start_kib: number;
  meminfo: Record<string, number>;
  wall_ms: number;
};

/** The model guest's diff probe: its /proc texts read back with the parser the real side uses. */
function modelProbe(g: Guest): Record<string, number> {
  return diffProbe({ meminfo: procMeminfo(g), vmstat: procVmstat(g), buddyinfo: procBuddyinfo(g), pagetypeinfo: procPagetypeinfo(g), zoneinfo: procZoneinfo(g), slabinfo: procSlabinfo(g) });
}

/** Runs the scenario on the model as the differential needs it: trace on, real-only entries skipped, the diff probe after each entry. */
export function runModelSide(s: Scenario, onBoot?: (vm: Vm) => void, wallClock: () => number = () => performance.now()): ModelSide {
  const w0 = wallClock();
  const probes: Array<Record<string, number>> = [];
  let memtotal0 = 0;
  const r = runScenario(s, {
    trace: true, skipUnrunnable: true, wallClock,
    onBoot: (vm) => { memtotal0 = parseMeminfo(procMeminfo(vm.guest)).MemTotal ?? 0; onBoot?.(vm); },
    onEntry: (_i, _ev, vm) => { probes.push(modelProbe(vm.guest)); },
  });
  // The model's device is created with the machine: its whole trace is the timeline's.
  const dev = r.vm.host.balloon;
  return {
    doc: r.doc, device: dev ? deviceView(dev, 0) : null, probes, memtotal_start_kib: memtotal0,
    meminfo: parseMeminfo(procMeminfo(r.guest)), wall_ms: Math.round(wallClock() - w0),
  };
}

export type DiffRow = { what: string; real: string; model: string; delta: string };

/** A number's relative difference, real against model, or '' when either is not a number. */
function delta(real: number | undefined, model: number | undefined): string {
  if (real === undefined || model === undefined) return '';
  if (real === model) return '=';
  if (model === 0) return 'n/a';
  const d = ((real - model) / Math.abs(model)) * 100;
  return `${d > 0 ? '+' : ''}${d.toFixed(1)}%`;
}

function dist(d: Distribution): string {
  return d.count === 0 ? '-' : `${d.count} bufs, ${d.total} total (min ${d.min} / median ${d.median} / max ${d.max})`;
}

const hex = (n: number) => '0x' + n.toString(16);

function idList(ids: number[]): string {
  return ids.length ? ids.map((i) => (i === VIRTIO_BALLOON_CMD_ID_STOP ? 'STOP' : i === VIRTIO_BALLOON_CMD_ID_DONE ? 'DONE' : hex(i))).join(' ') : '-';
}

/** How a round's ranges were ordered by address. */
function rangeOrder(ranges: Array<{ addr: number }>): string {
  if (ranges.length < 2) return ranges.length ? 'single' : '-';
  let up = 0, down = 0;
  for (let i = 1; i < ranges.length; i++) { if (ranges[i]!.addr > ranges[i - 1]!.addr) up++; else down++; }
  return down === 0 ? 'ascending' : up === 0 ? 'descending' : `mixed (${up} up, ${down} down)`;
}

/** A round's range sizes as "count×pages" groups. */
function rangeSizes(ranges: Array<{ pages: number }>): string {
  const m = new Map<number, number>();
  for (const r of ranges) m.set(r.pages, (m.get(r.pages) ?? 0) + 1);
  return [...m.entries()].sort((a, b) => b[0] - a[0]).map(([p, n]) => `${n}×${p}p`).join(' ') || '-';
}

type Ev = RealEvent | ResultDocument['events'][number];

function qmpText(q: unknown): string {
  const t = JSON.stringify(q);
  return t.length > 120 ? t.slice(0, 117) + '...' : t;
}

/** One entry's event in a line, the same way for both sides. */
export function entryText(ev: Ev | undefined): string {
  if (!ev) return '-';
  if ('error' in ev) return `ERROR ${ev.error}`;
  const waitText = (w: unknown) => {
    const x = w as { reached: boolean; waited_ns: number } | undefined;
    return x ? `; wait ${x.reached ? 'reached' : 'NOT reached'} in ${formatTime(x.waited_ns)}` : '';
  };
  switch (ev.kind) {
    case 'balloon': return `target ${ev.target_pages} pages${'wait' in ev ? waitText(ev.wait) : ''}${'error' in ev.qmp ? `; ${qmpText(ev.qmp)}` : ''}`;
    case 'snapshot': {
      const pb = ev.pageblocks;
      return `free ${ev.nr_free_pages}p; order 9/10 blocks ${ev.free_blocks[9]}/${ev.free_blocks[10]}; pageblocks U/M/R ${pb.Unmovable}/${pb.Movable}/${pb.Reclaimable}${ev.balloon_actual_pages !== undefined ? `; balloon ${ev.balloon_actual_pages}p` : ''}`;
    }
    case 'free_page_hint': return `${ev.command} -> ${ev.status}, id ${hex(ev.cmd_id)}, hinted ${ev.hinted_pages}p${'wait' in ev ? waitText(ev.wait) : ''}`;
    case 'guest_stats': {
      const st = (ev.qmp as { return?: { stats?: Record<string, number> } }).return?.stats;
      if (!st) return qmpText(ev.qmp);
      return ['free-memory', 'total-memory', 'available-memory', 'disk-caches'].map((k) => `${k.replace('-memory', '')}=${Math.round((st['stat-' + k] ?? -1) / 1024)}k`).join(' ') + ` minflt=${st['stat-minor-faults']}`;
    }
    case 'compact_memory': {
      const huge = (fb: number[]) => fb[9]! + 2 * fb[10]!;
      return `2MiB blocks ${huge(ev.free_blocks_before)} -> ${huge(ev.free_blocks_after)}; migrate scanned ${ev.compact_migrate_scanned}, pgmigrate_success ${ev.pgmigrate_success}`;
    }
    case 'shell': return `exit ${ev.status}`;
    case 'migrate': {
      const q = 'query-migrate' in ev ? ev['query-migrate'] as Record<string, unknown> | undefined : undefined;
      const mb = (b: number | string) => (typeof b === 'number' ? formatSize(b) + '/s' : b);
      return `max-bandwidth ${mb(ev['max-bandwidth'])}, downtime-limit ${ev['downtime-limit']}ms, link ${mb(ev.link_bandwidth)}, hints ${ev.free_page_hint ? 'on' : 'off'}${'wait' in ev ? waitText(ev.wait) : ''}${q ? `; ${String(q.status)} in ${String(q['total-time'])}ms` : ''}`;
    }
    case 'process_fault': if (ev.faulted_pages === undefined) return `faulting ${ev.requested_pages}p (not done when the run ended)`;
      return `faulted ${ev.faulted_pages}/${ev.requested_pages}p, thp_fault_alloc ${ev.thp_fault_alloc}, fallback ${ev.thp_fault_fallback}, rss ${ev.rss_pages}p${'killed' in ev && ev.killed ? '; KILLED' : ''}`;
    case 'process_free': return `freed ${ev.freed_pages}p${'candidates' in ev && ev.candidates !== undefined ? ` of ${ev.candidates}` : ''}, rss ${ev.rss_pages}p`;
    case 'process_exit': return `freed ${ev.freed_pages}p`;
    case 'process_layout': return `${ev.present_pages}p in ${ev.pfn_runs} pfn runs (1: ${ev.runs_1}, 2-63: ${ev.runs_2_63}, 64-511: ${ev.runs_64_511}, 512-4095: ${ev.runs_512_4095}, 4096+: ${ev.runs_4096}); pfns even/odd ${ev.even_pfns}/${ev.odd_pfns}`;
    case 'alloc_pages': return `order ${ev.order}: ${ev.succeeded}/${ev.requested} (${ev.success_pct}%)`;
    case 'free_pages': return `freed ${ev.freed} blocks, ${ev.pages} pages`;
    case 'skipped': return `skipped (${ev.reason})`;
    default: {
      const { t_ns: _t, kind: _k, label: _l, ...rest } = ev as Record<string, unknown>;
      return qmpText(rest);
    }
  }
}

/** The rows of the side-by-side table. */
export function diffRows(real: RealRunResult, model: ModelSide): DiffRow[] {
  const rows: DiffRow[] = [];
  const row = (what: string, r: string, m: string, d = r === m ? '=' : '≠') => { rows.push({ what, real: r, model: m, delta: d }); };
  const num = (what: string, r: number | undefined, m: number | undefined, fmt: (x: number) => string = String) => {
    rows.push({ what, real: r === undefined ? '-' : fmt(r), model: m === undefined ? '-' : fmt(m), delta: delta(r, m) });
  };
  const rd = real.device, md = model.device;
  if (rd && md) {
    row('negotiated features', rd.features.join(',') || '-', md.features.join(',') || '-');
    row('inflate PFNs per buffer', dist(rd.timeline_trace.inflate), dist(md.timeline_trace.inflate));
    row('deflate PFNs per buffer', dist(rd.timeline_trace.deflate), dist(md.timeline_trace.deflate));
    num('actual updates (driver rounds)', rd.timeline_trace.actual_updates, md.timeline_trace.actual_updates);
    num('stats buffers during the timeline', rd.timeline_trace.stats_buffers, md.timeline_trace.stats_buffers);
    row('stats tags', rd.trace.stats_tags.join(',') || '-', md.trace.stats_tags.join(',') || '-');
    const rr = rd.timeline_trace.hint_rounds, mr = md.timeline_trace.hint_rounds;
    num('hint rounds', rr.length, mr.length);
    for (let i = 0; i < Math.max(rr.length, mr.length); i++) {
      const x = (h: HintRound | undefined, f: (h: HintRound) => string) => (h ? f(h) : '-');
      row(`hint round ${i}: ids echoed`, x(rr[i], (h) => idList(h.echoed)), x(mr[i], (h) => idList(h.echoed)));
      num(`hint round ${i}: pages hinted`, rr[i]?.ranges.reduce((a, b) => a + b.pages, 0), mr[i]?.ranges.reduce((a, b) => a + b.pages, 0));
      row(`hint round ${i}: range sizes`, x(rr[i], (h) => rangeSizes(h.ranges)), x(mr[i], (h) => rangeSizes(h.ranges)));
      row(`hint round ${i}: order by address`, x(rr[i], (h) => rangeOrder(h.ranges)), x(mr[i], (h) => rangeOrder(h.ranges)));
    }
    row('reports: buffers/blocks/pages', `${rd.timeline_trace.reports.buffers}/${rd.timeline_trace.reports.blocks}/${rd.timeline_trace.reports.pages}`, `${md.timeline_trace.reports.buffers}/${md.timeline_trace.reports.blocks}/${md.timeline_trace.reports.pages}`);
    num('device inflate PFNs', rd.counters.inflatePfns, md.counters.inflatePfns);
    num('device deflate PFNs', rd.counters.deflatePfns, md.counters.deflatePfns);
    row('final actual (logical size)', formatSize(rd.actual_bytes), formatSize(md.actual_bytes));
    row('NEEDS_RESET', rd.needs_reset ?? 'no', md.needs_reset ?? 'no');
  }
  let lastFull = -1;
  const re = real.timeline.events, me = model.doc.events.filter((e) => e.kind !== 'kernel_build_done' && e.kind !== 'stress_highalloc_done' && e.kind !== 'migration_completed');
  for (let i = 0; i < Math.max(re.length, me.length); i++) {
    const r = re[i], m = me[i];
    const name = `[${i}] ${(r ?? m)!.kind === 'skipped' ? (m as { action: string }).action : (r ?? m)!.kind}${(r ?? m)?.label ? ` (${(r ?? m)!.label})` : ''}`;
    row(name, entryText(r), entryText(m));
    const rp = real.timeline.probes[i], mp = model.probes[i];
    if (!rp && !mp) continue;
    for (const k of ['MemTotal', 'MemFree', 'MemAvailable']) num(`    ${k} after (kB)`, rp?.[k], mp?.[k]);
    // the whole state at snapshots, after compaction and at the last entry; meminfo elsewhere
    const kind = (r ?? m)!.kind;
    const full = kind === 'snapshot' || kind === 'compact_memory' || i === Math.max(re.length, me.length) - 1;
    if (!full) continue;
    for (const t of MIGRATETYPE_NAMES) {
      const a = rp?.[`free.${t}`], b = mp?.[`free.${t}`];
      if (a || b) num(`    free pages ${t}`, a, b);
    }
    for (const t of MIGRATETYPE_NAMES) {
      const a = rp?.[`blocks.${t}`], b = mp?.[`blocks.${t}`];
      if (a || b) num(`    pageblocks ${t}`, a, b);
    }
    for (let o = 0; o < MAX_ORDER; o++) num(`    free blocks order ${o}`, rp?.[`order.${o}`], mp?.[`order.${o}`]);
    // zoneinfo: the zones either side has, their free pages and watermarks (managed and the rest at the first full probe)
    const zoneKeys = [...new Set([...Object.keys(rp ?? {}), ...Object.keys(mp ?? {})].filter((k) => k.startsWith('zone.')))];
    for (const k of zoneKeys) {
      const field = k.split('.')[2]!;
      if (lastFull >= 0 && !['free', 'min', 'low', 'high'].includes(field)) continue;
      num(`    ${k.slice(5)}`, rp?.[k], mp?.[k]);
    }
    for (const k of VMSTAT_LEVELS) if (rp?.[k] !== undefined || mp?.[k] !== undefined) num(`    ${k.slice(7)}`, rp?.[k], mp?.[k]);
    // slab objects of the page cache's caches, where the real side read slabinfo (the qemu guest)
    for (const c of DIFF_SLAB_CACHES) if (rp?.[`slab.${c}`] !== undefined) num(`    slabinfo ${c} active_objs`, rp[`slab.${c}`], mp?.[`slab.${c}`]);
    // vmstat counters that moved since the previous full probe, on either side
    const moved = (p: Array<Record<string, number>>, k: string) => (p[i]?.[k] ?? 0) - (lastFull < 0 ? 0 : p[lastFull]?.[k] ?? 0);
    const keys = new Set([...Object.keys(rp ?? {}), ...Object.keys(mp ?? {})].filter((k) => k.startsWith('vmstat.') && !VMSTAT_LEVELS.has(k)));
    for (const k of [...keys].sort()) {
      const a = rp ? moved(real.timeline.probes, k) : undefined, b = mp ? moved(model.probes, k) : undefined;
      if (a || b) num(`    ${k.slice(7)} (+ since ${lastFull < 0 ? 'boot' : `[${lastFull}]`})`, a, b);
    }
    lastFull = i;
  }
  num('MemTotal at start (kB)', real.guest.memtotal_start_kib, model.memtotal_start_kib);
  for (const k of ['MemTotal', 'MemFree', 'MemAvailable']) num(`${k} at end (kB)`, real.guest.meminfo[k], model.meminfo[k]);
  for (const k of ['balloon_inflate', 'balloon_deflate', 'balloon_migrate']) num(`guest ${k}`, real.guest.vmstat[k], model.doc.vmstat[k]);
  const rq = real.timeline.events.find((e): e is RealEvent & { 'query-migrate': Record<string, unknown> } => e.kind === 'migrate' && 'query-migrate' in e)?.['query-migrate'];
  const mq = model.doc.migration;
  if (rq || mq) {
    const ram = (rq?.ram ?? {}) as Record<string, number>;
    const rn = (v: unknown) => (typeof v === 'number' ? v : undefined);
    row('migration status', String(rq?.status ?? '-'), String(mq?.status ?? '-'));
    num('migration total-time (ms)', rn(rq?.['total-time']), mq?.['total-time']);
    num('migration downtime (ms)', rn(rq?.downtime), mq?.downtime ?? undefined);
    num('migration setup-time (ms)', rn(rq?.['setup-time']), mq?.['setup-time']);
    for (const k of ['transferred', 'duplicate', 'normal', 'normal-bytes', 'dirty-sync-count'] as const) num(`migration ${k}`, rn(ram[k]), mq?.[k]);
  }
  row('timeline time', `${formatTime(real.timings.timeline_ms * 1e6)} wall`, `${formatTime(model.doc.duration_ns)} virtual, ${model.wall_ms} ms wall`, '');
  return rows;
}

export function formatTable(header: [string, string, string, string], rows: DiffRow[]): string {
  const cells = [header, ...rows.map((r) => [r.what, r.real, r.model, r.delta] as [string, string, string, string])];
  const w = [0, 0, 0, 0];
  for (const r of cells) r.forEach((c, i) => { w[i] = Math.max(w[i]!, c.length); });
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`;
  return [line(header), `|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`, ...cells.slice(1).map(line)].join('\n') + '\n';
}

/** One side's events, a line each, then what the device and the guest say at the end. */
export function formatRealSide(r: RealRunResult, title: string): string {
  const out: string[] = [`== ${title} ==`];
  const vmm = (r as { qemu?: { version: string; uname: string; cmdline: string[]; device: string | null } }).qemu;
  if (vmm) out.push(`  ${vmm.version}, TCG; guest kernel ${vmm.uname} (${vmm.cmdline.join(' ')}); ${vmm.device ?? 'no balloon device'}`);
  r.timeline.events.forEach((e, i) => out.push(`  [${i}] ${formatTime(e.t_ns).padStart(9)}  ${e.kind}${e.label ? ` (${e.label})` : ''}  ${entryText(e)}`));
  for (const p of r.timeline.problems) out.push(`  PROBLEM ${p}`);
  const d = r.device;
  if (d) {
    out.push(`device: features ${d.features.join(',') || '-'}; NEEDS_RESET ${d.needs_reset ?? 'no'}; hint status ${d.free_page_hint_status}; actual ${formatSize(d.actual_bytes)} (target ${formatSize(d.target_bytes)})`);
    out.push(`  counters ${Object.entries(d.counters).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    out.push(`  inflate ${dist(d.trace.inflate)}; deflate ${dist(d.trace.deflate)}`);
    out.push(`  stats ${d.trace.stats_buffers} buffers, tags ${d.trace.stats_tags.map((x) => BALLOON_STAT_NAMES[x] ?? String(x)).join(' ') || '-'}`);
    out.push(`  hint ids echoed: ${idList(d.trace.hint_ids_echoed)}; reports ${d.trace.reports.buffers} buffers, ${d.trace.reports.pages} pages`);
  }
  const v = r.guest.vmstat, m = r.guest.meminfo;
  out.push(`guest (/proc): balloon_inflate ${v.balloon_inflate ?? '-'} balloon_deflate ${v.balloon_deflate ?? '-'} balloon_migrate ${v.balloon_migrate ?? '-'}; MemTotal ${m.MemTotal} kB (at start ${r.guest.memtotal_start_kib} kB) MemFree ${m.MemFree} kB MemAvailable ${m.MemAvailable} kB`);
  out.push(`timing: boot ${(r.timings.boot_ms / 1000).toFixed(1)} s, timeline ${(r.timings.timeline_ms / 1000).toFixed(1)} s, total ${(r.timings.total_ms / 1000).toFixed(1)} s (wall)`);
  return out.join('\n') + '\n';
}

/** The report `balloonlab real-guest` prints: the real side, then (with --diff) the table. */
export function formatRealReport(real: RealRunResult, model?: ModelSide): string {
  let s = `real-guest ${real.scenario}  engine ${real.engine}  memory ${formatSize(real.memory_bytes)}\n\n`;
  s += formatRealSide(real, `real guest (${real.engine})`);
  if (model) {
    s += `\n== side by side: real (${real.engine}) and model ==\n`;
    s += formatTable(['', `real (${real.engine})`, 'model', 'Δ real/model'], diffRows(real, model));
  }
  return s;
}
