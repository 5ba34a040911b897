/**
 * A sweep's charts (`balloonlab plot SWEEP.json`), as Vega-Lite specs like charts.ts:
 * one per figure over the grid. The first parameter is the x axis, in the sweep's
 * order; the other parameters' values make one line each; a line joins the mean over
 * the seeds, a point marks each run. Runs that failed or have no value are left out.
 */
import type { Chart } from './charts.js';
import { CONFIG } from './charts.js';
import type { SweepResultDocument } from './sweep.js';
import { valueText } from '../scenario/sweep.js';

const WIDTH = 640, HEIGHT = 300;

/** Whether a parsed JSON document is a sweep's (`sweep --json`). */
export function isSweepDocument(x: unknown): x is SweepResultDocument {
  const d = x as { sweep?: unknown; runs?: unknown; figures?: unknown; parameters?: unknown };
  return typeof x === 'object' && x !== null && typeof d.sweep === 'string' && Array.isArray(d.runs) && Array.isArray(d.figures) && Array.isArray(d.parameters);
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

export function sweepCharts(doc: SweepResultDocument): Chart[] {
  const [first, ...others] = doc.parameters;
  if (!first) return [];
  const xOrder = first.values.map(valueText);
  const lineOf = (point: Record<string, unknown>) => others.map((p) => `${p.path}=${valueText(point[p.path])}`).join(' ') || doc.sweep;
  const lines = [...new Set(doc.runs.map((r) => lineOf(r.point)))];
  const seeds = doc.seeds ? `, ${doc.seeds.length} seeds each (line: their mean)` : '';
  return doc.figures.map((f): Chart => {
    const rows: Array<Record<string, string | number>> = [];
    for (const r of doc.runs) {
      const v = 'figures' in r ? r.figures[f.name] : null;
      if (typeof v === 'number') rows.push({ x: valueText(r.point[first.path]), line: lineOf(r.point), seed: r.seed, value: v });
    }
    const title = `${f.label} over ${first.path}${others.length ? `, one line per ${others.map((p) => p.path).join(' × ')}` : ''}`;
    const x = { field: 'x', type: 'ordinal' as const, title: first.path, sort: xOrder, axis: { labelAngle: 0 } };
    const color = { field: 'line', type: 'nominal' as const, title: others.length ? others.map((p) => p.path).join(' ') : null, sort: lines, scale: { scheme: 'category10' } };
    return {
      name: `sweep-${slug(f.name)}`, title,
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
        title: { text: title, subtitle: `sweep ${doc.sweep} over ${doc.base}${doc.variant ? ` (variant ${doc.variant})` : ''}: ${doc.runs.length} runs${seeds}` },
        width: WIDTH, height: HEIGHT, config: CONFIG,
        data: { values: rows },
        layer: [
          { mark: { type: 'line', strokeWidth: 2 }, encoding: { x, y: { aggregate: 'mean', field: 'value', type: 'quantitative', title: f.label }, color } },
          { mark: { type: 'point', filled: true, size: 40 }, encoding: { x, y: { field: 'value', type: 'quantitative' }, color } },
        ],
      },
    };
  });
}
