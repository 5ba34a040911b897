/**
 * The standard charts of a run, as Vega-Lite specifications (plain JSON): free memory
 * by block order, pageblocks by migratetype, the balloon and the host's RSS, a
 * migration's progress, and the memory map at each snapshot. For a comparison, the
 * variants overlaid. Only data in, specs out: `balloonlab plot` renders them to SVG
 * and PNG (src/cli/render.ts), the HTML report inlines the SVG, and a browser can hand
 * the same specs to vega-embed (docs/pictures.md says why Vega-Lite).
 *
 * Units are the ones people read: time in seconds, memory in MiB.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { ResultDocument } from '../scenario/runner.js';
import { type MemoryMapRecord, MAP_CONTENT_NAMES, MapContent, NR_MAP_CONTENTS, memoryMapDecode } from './memory_map.js';
import { MIGRATETYPE_NAMES } from '../guest/mm/memmap.js';

/** One chart: a file name (without extension), what it shows, its spec. */
export type Chart = { name: string; title: string; spec: TopLevelSpec };

/** A comparison document (`compare --json`). */
export type CompareDocument = { scenario: string; variants: Array<{ name: string; result: ResultDocument }> };

const PAGE_MIB = 4096 / 2 ** 20;
const PAGEBLOCK_MIB = 2;
const FONT = 'DejaVu Sans';
const WIDTH = 640, HEIGHT = 260;

/** Shared look: the font resvg has (DejaVu Sans, Debian's fonts-dejavu-core), a white background. */
export const CONFIG = {
  font: FONT,
  background: 'white',
  title: { fontSize: 14, anchor: 'start' as const, subtitleColor: '#555' },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 280, titleLimit: 280 },
  // no aria-label per mark: a memory map's thousands of cells would carry one each
  aria: false,
};

/** Migratetype colours (pagetypeinfo's order). */
export const MIGRATETYPE_COLORS: readonly string[] = ['#d62728', '#2ca02c', '#1f77b4', '#ff7f0e', '#7f7f7f'];

/** Content colours, by MapContent: free memory in greens by order, the balloon purple. */
export const CONTENT_COLORS: readonly string[] = (() => {
  const c = new Array<string>(NR_MAP_CONTENTS);
  c[MapContent.free10] = '#1a9850';
  c[MapContent.free9] = '#66bd63';
  c[MapContent.free4to8] = '#a6d96a';
  c[MapContent.free0to3] = '#e6f5a0';
  c[MapContent.reported] = '#a6cee3';
  c[MapContent.hinted] = '#1f78b4';
  c[MapContent.balloon] = '#6a3d9a';
  c[MapContent.anon] = '#e31a1c';
  c[MapContent.file] = '#ff7f00';
  c[MapContent.slab] = '#8c510a';
  c[MapContent.pageTable] = '#f781bf';
  c[MapContent.kernel] = '#969696';
  c[MapContent.hugetlb] = '#cab2d6';
  c[MapContent.reserved] = '#252525';
  return c;
})();

export const ORDER_COLORS = ['#fde725', '#b5de2b', '#6ece58', '#35b779', '#1f9e89', '#26828e', '#31688e', '#3e4989', '#482878', '#440154', '#2b0033'];

type Row = Record<string, string | number | null>;

function seconds(tNs: number): number {
  return Math.round(tNs / 1e6) / 1e3;
}

function column(doc: ResultDocument, name: string): Array<number | null> | undefined {
  return doc.series?.columns[name];
}

/** Long-format rows of some columns: one row per (sample, column). */
function longRows(doc: ResultDocument, cols: Array<{ name: string; label: string; scale: number }>, extra: Row = {}): Row[] {
  const rows: Row[] = [];
  const t = doc.series.t_ns;
  for (const c of cols) {
    const v = column(doc, c.name);
    if (!v) continue;
    for (let i = 0; i < t.length; i++) {
      const x = v[i];
      if (x === null || x === undefined) continue;
      rows.push({ t: seconds(t[i]!), series: c.label, value: Math.round(x * c.scale * 1000) / 1000, ...extra });
    }
  }
  return rows;
}

const timeX = { field: 't', type: 'quantitative' as const, title: 'virtual time (s)' };

function subtitle(doc: ResultDocument, variant?: string): string {
  return `${doc.scenario}${variant ? ` (${variant})` : ''}, ${Math.round(doc.guest.memory_bytes / 2 ** 20)} MiB guest, seed ${doc.seed}`;
}

/** Free memory by the order of the free blocks holding it, stacked (order 10 at the bottom). */
export function freeByOrderChart(doc: ResultDocument, variant?: string): Chart {
  const cols = Array.from({ length: 11 }, (_, o) => ({ name: `free_pages.order.${o}`, label: `order ${o} (${o <= 8 ? `${4 << o} KiB` : `${1 << (o - 8)} MiB`})`, scale: PAGE_MIB }));
  const rows = longRows(doc, cols).map((r) => ({ ...r, order: Number(String(r.series).split(' ')[1]) }));
  const title = 'Free memory by block order (MiB): large orders at the bottom';
  return {
    name: 'free-by-order', title,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: { text: title, subtitle: subtitle(doc, variant) },
      width: WIDTH, height: HEIGHT, config: CONFIG,
      data: { values: rows },
      mark: { type: 'area', interpolate: 'step-after' },
      encoding: {
        x: timeX,
        y: { field: 'value', type: 'quantitative', stack: 'zero', title: 'free memory (MiB)' },
        color: { field: 'series', type: 'nominal', title: 'free block order', sort: { field: 'order', order: 'descending' }, scale: { domain: cols.map((c) => c.label).reverse(), range: ORDER_COLORS.slice().reverse() } },
        order: { field: 'order', type: 'quantitative', sort: 'descending' },
      },
    },
  };
}

/** Pageblocks by migratetype (in MiB of 2 MiB pageblocks), stacked. */
export function pageblocksChart(doc: ResultDocument, variant?: string): Chart {
  const cols = MIGRATETYPE_NAMES.map((m) => ({ name: `pageblocks.${m}`, label: m, scale: PAGEBLOCK_MIB }));
  const title = 'Pageblocks by migratetype (MiB of 2 MiB pageblocks)';
  return {
    name: 'pageblocks', title,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: { text: title, subtitle: subtitle(doc, variant) },
      width: WIDTH, height: HEIGHT, config: CONFIG,
      data: { values: longRows(doc, cols) },
      mark: { type: 'area', interpolate: 'step-after' },
      encoding: {
        x: timeX,
        y: { field: 'value', type: 'quantitative', stack: 'zero', title: 'pageblocks (MiB)' },
        color: { field: 'series', type: 'nominal', title: 'migratetype', scale: { domain: [...MIGRATETYPE_NAMES], range: [...MIGRATETYPE_COLORS] } },
      },
    },
  };
}

export const BALLOON_COLS = [
  { name: 'balloon.target_pages', label: 'balloon target', scale: PAGE_MIB },
  { name: 'balloon.actual_pages', label: 'balloon actual', scale: PAGE_MIB },
  { name: 'host.rss_bytes', label: 'host RSS', scale: 1 / 2 ** 20 },
  { name: 'vmstat.nr_free_pages', label: 'guest free (nr_free_pages)', scale: PAGE_MIB },
];

/** Rows of the free-pages total: from the order columns (vmstat.nr_free_pages has a column only when it moved). */
function withFreeTotal(doc: ResultDocument): ResultDocument {
  if (column(doc, 'vmstat.nr_free_pages')) return doc;
  const n = doc.series.t_ns.length;
  const total = new Array<number>(n).fill(0);
  for (let o = 0; o < 11; o++) {
    const c = column(doc, `free_pages.order.${o}`);
    if (c) for (let i = 0; i < n; i++) total[i] = total[i]! + (c[i] ?? 0);
  }
  return { ...doc, series: { ...doc.series, columns: { ...doc.series.columns, 'vmstat.nr_free_pages': total } } };
}

/** The balloon's target and actual size, the host's RSS and the guest's free memory, in MiB. */
export function balloonRssChart(doc: ResultDocument, variant?: string): Chart {
  const title = 'Balloon size, host RSS and guest free memory (MiB)';
  return {
    name: 'balloon-rss', title,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: { text: title, subtitle: subtitle(doc, variant) },
      width: WIDTH, height: HEIGHT, config: CONFIG,
      data: { values: longRows(withFreeTotal(doc), BALLOON_COLS) },
      mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2 },
      encoding: {
        x: timeX,
        y: { field: 'value', type: 'quantitative', title: 'MiB' },
        color: { field: 'series', type: 'nominal', title: null, scale: { domain: BALLOON_COLS.map((c) => c.label), range: ['#6a3d9a', '#cab2d6', '#e31a1c', '#1a9850'] } },
      },
    },
  };
}

/** A migration's fine series (series.migration) as long rows, MiB; with the pass boundaries. */
function migrationRows(doc: ResultDocument, extra: Row = {}): { rows: Row[]; passes: Row[] } | null {
  const ms = doc.series?.migration;
  if (!ms || ms.t_ns.length === 0) return null;
  const rows: Row[] = [], passes: Row[] = [];
  const rem = ms.columns.remaining_bytes!, sent = ms.columns.transferred_bytes!, it = ms.columns.iteration!;
  for (let i = 0; i < ms.t_ns.length; i++) {
    const t = seconds(ms.t_ns[i]!);
    rows.push({ t, series: 'remaining (dirty, to send)', value: Math.round(rem[i]! / 2 ** 20 * 1000) / 1000, ...extra });
    rows.push({ t, series: 'transferred', value: Math.round(sent[i]! / 2 ** 20 * 1000) / 1000, ...extra });
    if (i === 0 || it[i] !== it[i - 1]) passes.push({ t, pass: `pass ${it[i]! + 1}`, ...extra });
  }
  return { rows, passes };
}

/** A migration's progress: what is left and what was sent (MiB), with a rule at each new pass over RAM. */
export function migrationChart(doc: ResultDocument, variant?: string): Chart | null {
  const r = migrationRows(doc);
  if (!r) return null;
  const { rows, passes } = r;
  const title = 'Migration: RAM remaining and transferred (MiB); rules mark passes over RAM';
  const m = doc.migration;
  return {
    name: 'migration', title,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: { text: title, subtitle: `${subtitle(doc, variant)}${m ? `; ${m.status}, total-time ${m['total-time']} ms, downtime ${m.downtime ?? '-'} ms, ${m['dirty-sync-count']} bitmap syncs` : ''}` },
      width: WIDTH, height: HEIGHT, config: CONFIG,
      layer: [
        {
          data: { values: rows },
          mark: { type: 'line', interpolate: 'linear', strokeWidth: 2 },
          encoding: {
            x: timeX,
            y: { field: 'value', type: 'quantitative', title: 'MiB' },
            color: { field: 'series', type: 'nominal', title: null, scale: { range: ['#e31a1c', '#1f78b4'] } },
          },
        },
        {
          data: { values: passes },
          mark: { type: 'rule', strokeDash: [3, 3], color: '#555' },
          encoding: { x: { field: 't', type: 'quantitative' } },
        },
        {
          data: { values: passes },
          mark: { type: 'text', align: 'left', dx: 3, dy: 2, baseline: 'top', color: '#333', fontSize: 10 },
          encoding: { x: { field: 't', type: 'quantitative' }, y: { value: 0 }, text: { field: 'pass' } },
        },
      ],
    },
  };
}

/** The variants' migrations overlaid (their fine series): colour by variant, dash by quantity. */
function compareMigrationChart(cmp: CompareDocument): Chart | null {
  const rows: Row[] = [];
  for (const v of cmp.variants) rows.push(...(migrationRows(v.result, { variant: v.name })?.rows ?? []));
  if (rows.length === 0) return null;
  const title = 'Migration: RAM remaining and transferred (MiB), variants overlaid';
  return {
    name: 'compare-migration', title,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: { text: title, subtitle: `${cmp.scenario}: ${cmp.variants.map((v) => v.name).join(' vs ')}` },
      width: WIDTH, height: HEIGHT, config: CONFIG,
      data: { values: rows },
      mark: { type: 'line', strokeWidth: 2 },
      encoding: {
        x: timeX,
        y: { field: 'value', type: 'quantitative', title: 'MiB' },
        color: { field: 'variant', type: 'nominal', title: 'variant', sort: cmp.variants.map((v) => v.name), scale: { scheme: 'category10' } },
        strokeDash: { field: 'series', type: 'nominal', title: null, scale: { domain: ['remaining (dirty, to send)', 'transferred'], range: [[1, 0], [6, 3]] } },
        detail: { field: 'series', type: 'nominal' },
      },
    },
  };
}

/** Most cells a memory map draws; above it, runs of pageblocks are merged (each cell shows their commonest class). */
export const MAX_MAP_CELLS = 16384;

/** The memory map as cells: per cell its row, column, content and migratetype. */
export function memoryMapCells(r: MemoryMapRecord, pageblockMib = PAGEBLOCK_MIB): { cells: Row[]; perCell: number; cols: number; cellMib: number } {
  const { migratetype, content } = memoryMapDecode(r);
  const n = migratetype.length;
  const perCell = Math.max(1, Math.ceil(n / MAX_MAP_CELLS));
  const nCells = Math.ceil(n / perCell);
  const cols = nCells <= 512 ? 32 : nCells <= 4096 ? 64 : 128;
  const cellMib = pageblockMib * perCell;
  const cells: Row[] = [];
  const cc = new Uint32Array(NR_MAP_CONTENTS), mc = new Uint32Array(8);
  for (let k = 0; k < nCells; k++) {
    cc.fill(0); mc.fill(0);
    for (let i = k * perCell; i < Math.min(n, (k + 1) * perCell); i++) { cc[content[i]!]!++; mc[migratetype[i]!]!++; }
    let c = 0, m = 0;
    for (let i = 1; i < NR_MAP_CONTENTS; i++) if (cc[i]! > cc[c]!) c = i;
    for (let i = 1; i < 8; i++) if (mc[i]! > mc[m]!) m = i;
    const row = Math.floor(k / cols);
    cells.push({ x: k % cols, row: row * cols * cellMib, content: MAP_CONTENT_NAMES[c] ?? `content ${c}`, migratetype: MIGRATETYPE_NAMES[m] ?? `type ${m}`, mib: k * cellMib });
  }
  return { cells, perCell, cols, cellMib };
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) || 'map';
}

/** The memory map at one snapshot: what the pages hold (left) and the pageblocks' migratetypes (right). */
export function memoryMapChart(doc: ResultDocument, r: MemoryMapRecord, index: number, variant?: string): Chart {
  const { cells, perCell, cols, cellMib } = memoryMapCells(r);
  const rows = Math.ceil(cells.length / cols);
  const step = Math.max(3, Math.min(10, Math.floor(420 / Math.max(cols, rows))));
  const present = new Set(cells.map((c) => c.content));
  const contentDomain = MAP_CONTENT_NAMES.filter((n) => present.has(n));
  const contentRange = contentDomain.map((n) => CONTENT_COLORS[MAP_CONTENT_NAMES.indexOf(n)]!);
  const what = perCell === 1 ? 'one cell per 2 MiB pageblock' : `one cell per ${cellMib} MiB (${perCell} pageblocks, the commonest class)`;
  const title = `Memory map at ${seconds(r.t_ns)} s (${r.label}): ${what}`;
  const axisX = { field: 'x', type: 'ordinal' as const, axis: null };
  const axisY = { field: 'row', type: 'ordinal' as const, title: 'guest RAM offset (MiB)', axis: { labelOverlap: true as const } };
  const panel = (field: 'content' | 'migratetype', legendTitle: string, domain: string[], range: string[], panelTitle: string) => ({
    title: { text: panelTitle, fontSize: 12 },
    width: { step }, height: { step },
    mark: { type: 'rect' as const },
    encoding: {
      x: axisX, y: axisY,
      color: { field, type: 'nominal' as const, title: legendTitle, scale: { domain, range } },
    },
  });
  return {
    name: `memory-map-${index}-${slug(r.label)}`, title,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: { text: title, subtitle: `${subtitle(doc, variant)}; ${cols * cellMib} MiB per row, PCI hole left out` },
      config: CONFIG,
      data: { values: cells },
      hconcat: [
        panel('content', 'what the pages hold', contentDomain, contentRange, 'content (the class of most of its pages)'),
        panel('migratetype', 'pageblock migratetype', [...MIGRATETYPE_NAMES], [...MIGRATETYPE_COLORS], 'migratetype'),
      ],
      resolve: { scale: { color: 'independent' } },
    },
  };
}

/** Every chart of one run: the time series, then a memory map per snapshot and at the end. */
export function resultCharts(doc: ResultDocument, variant?: string): Chart[] {
  const out: Chart[] = [];
  if (!doc.series) return out;
  out.push(freeByOrderChart(doc, variant), pageblocksChart(doc, variant), balloonRssChart(doc, variant));
  const m = migrationChart(doc, variant);
  if (m) out.push(m);
  (doc.memory_maps?.maps ?? []).forEach((r, i) => out.push(memoryMapChart(doc, r, i, variant)));
  return out;
}

/** Overlaid line chart of some columns across variants: colour by variant, dash by quantity. */
function overlay(cmp: CompareDocument, name: string, title: string, yTitle: string, cols: Array<{ name: string; label: string; scale: number }>, prep: (d: ResultDocument) => ResultDocument = (d) => d): Chart | null {
  const rows: Row[] = [];
  for (const v of cmp.variants) if (v.result.series) rows.push(...longRows(prep(v.result), cols, { variant: v.name }));
  if (rows.length === 0) return null;
  const present = cols.map((c) => c.label).filter((l) => rows.some((r) => r.series === l));
  const dashes = [[1, 0], [6, 3], [2, 2], [8, 2, 2, 2], [3, 6]];
  return {
    name, title,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: { text: title, subtitle: `${cmp.scenario}: ${cmp.variants.map((v) => v.name).join(' vs ')}` },
      width: WIDTH, height: HEIGHT, config: CONFIG,
      data: { values: rows },
      mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2 },
      encoding: {
        x: timeX,
        y: { field: 'value', type: 'quantitative', title: yTitle },
        color: { field: 'variant', type: 'nominal', title: 'variant', sort: cmp.variants.map((v) => v.name), scale: { scheme: 'category10' } },
        strokeDash: { field: 'series', type: 'nominal', title: null, scale: { domain: present, range: dashes.slice(0, present.length) } },
        detail: { field: 'series', type: 'nominal' },
      },
    },
  };
}

/** The charts of a comparison: the variants overlaid, then each variant's own charts. */
export function compareCharts(cmp: CompareDocument): Array<Chart & { variant?: string }> {
  const out: Array<Chart & { variant?: string }> = [];
  const big = (d: ResultDocument): ResultDocument => {
    const n = d.series.t_ns.length;
    const sum = (from: number) => {
      const s = new Array<number>(n).fill(0);
      for (let o = from; o < 11; o++) { const c = column(d, `free_pages.order.${o}`); if (c) for (let i = 0; i < n; i++) s[i] = s[i]! + (c[i] ?? 0); }
      return s;
    };
    return { ...d, series: { ...d.series, columns: { ...d.series.columns, 'x.free_all': sum(0), 'x.free_huge': sum(9) } } };
  };
  const charts = [
    overlay(cmp, 'compare-free', 'Free memory, all and in blocks of 2 MiB or more (MiB), variants overlaid', 'free memory (MiB)',
      [{ name: 'x.free_all', label: 'all free', scale: PAGE_MIB }, { name: 'x.free_huge', label: 'in order-9/10 blocks', scale: PAGE_MIB }], big),
    overlay(cmp, 'compare-pageblocks', 'Pageblocks by migratetype (MiB of 2 MiB pageblocks), variants overlaid', 'pageblocks (MiB)',
      MIGRATETYPE_NAMES.slice(0, 3).map((m) => ({ name: `pageblocks.${m}`, label: m, scale: PAGEBLOCK_MIB }))),
    overlay(cmp, 'compare-balloon-rss', 'Balloon size and host RSS (MiB), variants overlaid', 'MiB', BALLOON_COLS.slice(1, 3)),
    compareMigrationChart(cmp),
  ];
  // overlay() gives null when no variant has the columns (no migration: no migration chart)
  for (const c of charts) if (c) out.push(c);
  for (const v of cmp.variants) for (const c of resultCharts(v.result, v.name)) out.push({ ...c, name: `${slug(v.name)}-${c.name}`, variant: v.name });
  return out;
}

/** Whether a parsed JSON document is a comparison (`compare --json`) rather than one run. */
export function isCompareDocument(x: unknown): x is CompareDocument {
  return typeof x === 'object' && x !== null && Array.isArray((x as { variants?: unknown }).variants);
}
