/**
 * The charts of a host run (`vms:`, src/scenario/host_runner.ts) as Vega-Lite specs,
 * like charts.ts for one guest: the host's memory over time (free, swap used, the
 * guests' RAM and their logical size, RAM minus balloon), each VM's resident set, and
 * for a comparison of policies the host's swap and the overcommit achieved (the
 * guests' logical sizes over host memory), variants overlaid.
 */
import type { HostResultDocument } from '../scenario/host_runner.js';
import { type Chart, CONFIG } from './charts.js';

const MIB = 2 ** 20;
const WIDTH = 640, HEIGHT = 260;
const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const timeX = { field: 't', type: 'quantitative' as const, title: 'virtual time (s)' };

type Row = Record<string, string | number>;

/** The columns of host.series after its time: [free, swap used, guests' RAM, guests' logical size], bytes. */
const HOST_COLS = ['host free', 'host swap used', 'guests\' RAM (-m)', 'guests\' RAM minus balloons'] as const;

function subtitle(doc: HostResultDocument, variant?: string): string {
  return `${doc.scenario}${variant ? ` (${variant})` : ''}, ${doc.vms.length} VMs on ${Math.round(doc.host.memory_bytes / MIB)} MiB (${Math.round(doc.host.swap_bytes / MIB)} MiB swap), policy ${doc.host.policy}`;
}

function line(name: string, title: string, sub: string, rows: Row[], yTitle: string, colour: { field: string; title: string | null; domain?: string[] }): Chart {
  return {
    name, title,
    spec: {
      $schema: SCHEMA,
      title: { text: title, subtitle: sub },
      width: WIDTH, height: HEIGHT, config: CONFIG,
      data: { values: rows },
      mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2 },
      encoding: {
        x: timeX,
        y: { field: 'value', type: 'quantitative', title: yTitle },
        color: { field: colour.field, type: 'nominal', title: colour.title, ...(colour.domain ? { sort: colour.domain } : {}), scale: { scheme: 'category10' } },
      },
    },
  };
}

/** host.series as long rows (MiB), one series per column. */
function hostRows(doc: HostResultDocument, extra: Row = {}): Row[] {
  const rows: Row[] = [];
  for (const [t, ...v] of doc.host.series) HOST_COLS.forEach((c, i) => rows.push({ t: t / 1e9, series: c, value: v[i]! / MIB, ...extra }));
  return rows;
}

/** The charts of one host run: host memory, and each VM's RSS. */
export function hostCharts(doc: HostResultDocument, variant?: string): Chart[] {
  const vmRows: Row[] = [];
  for (const vm of doc.vms) for (const [t, b] of vm.rss_series) vmRows.push({ t: t / 1e9, series: vm.name, value: b / MIB });
  return [
    line('host-memory', 'Host memory: free, swap used, the guests\' RAM and their size minus balloons (MiB)', subtitle(doc, variant), hostRows(doc), 'MiB', { field: 'series', title: null, domain: [...HOST_COLS] }),
    line('host-vm-rss', 'Each VM\'s resident guest RAM on the host (MiB)', subtitle(doc, variant), vmRows, 'RSS (MiB)', { field: 'series', title: 'VM', domain: doc.vms.map((v) => v.name) }),
  ];
}

/** A comparison of host runs (one per policy): swap and overcommit overlaid, then each run's own charts. */
export function hostCompareCharts(scenario: string, variants: Array<{ name: string; doc: HostResultDocument }>): Array<Chart & { variant?: string }> {
  const names = variants.map((v) => v.name);
  const sub = `${scenario}: ${names.join(' vs ')}`;
  const swap: Row[] = [], over: Row[] = [];
  for (const { name, doc } of variants) {
    for (const [t, , swapUsed, , logical] of doc.host.series) {
      swap.push({ t: t / 1e9, variant: name, value: swapUsed / MIB });
      over.push({ t: t / 1e9, variant: name, value: logical / doc.host.memory_bytes });
    }
  }
  const out: Array<Chart & { variant?: string }> = [
    line('compare-host-swap', 'Host swap used (MiB), policies overlaid', sub, swap, 'swap used (MiB)', { field: 'variant', title: 'variant', domain: names }),
    line('compare-overcommit', 'Overcommit achieved: the guests\' RAM minus balloons over host memory, policies overlaid', sub, over, 'guests\' logical RAM / host RAM', { field: 'variant', title: 'variant', domain: names }),
  ];
  for (const { name, doc } of variants) for (const c of hostCharts(doc, name)) out.push({ ...c, name: `${name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-${c.name}`, variant: name });
  return out;
}
