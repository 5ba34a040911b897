/**
 * `balloonlab report --html`: one self-contained HTML file — inline CSS, the charts as
 * inline SVG, no script and no link to anything outside the file, so it opens offline
 * and can be mailed around. Sections: what ran, the comparison table (compare.ts's
 * mmtests layout, also for a single run), the time-series charts, the memory maps at
 * each snapshot, the events, and the scenario's text.
 */
import type { ResultDocument } from '../scenario/runner.js';
import type { Chart } from '../report/charts.js';
import { defaultCompareRows, formatCompareGroups } from '../report/compare.js';
import { formatSize, formatTime } from '../scenario/units.js';
import { VERSION } from '../version.js';
import type { PictureInput } from './plot.js';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const CSS = `
body { font-family: "DejaVu Sans", system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; } h3 { font-size: 1.05em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 12px; line-height: 1.35; }
figure { margin: 1em 0 2em; overflow-x: auto; } figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #555; }
table.events { border-collapse: collapse; font-size: 12px; } table.events td, table.events th { border-bottom: 1px solid #eee; padding: 2px 8px; text-align: left; vertical-align: top; }
nav a { margin-right: 1em; }
`;

function eventsTable(doc: ResultDocument): string {
  const rows = doc.events.map((e) => {
    const { t_ns, kind, label, ...rest } = e as { t_ns: number; kind: string; label?: string } & Record<string, unknown>;
    const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join('  ');
    return `<tr><td>${esc(formatTime(t_ns))}</td><td>${esc(kind)}${label ? ` (${esc(label)})` : ''}</td><td>${esc(fields.length > 600 ? `${fields.slice(0, 600)} …` : fields)}</td></tr>`;
  });
  return `<table class="events"><tr><th>time</th><th>event</th><th>fields</th></tr>${rows.join('\n')}</table>`;
}

function figure(c: { chart: Chart; svg: string }): string {
  return `<figure id="${esc(c.chart.name)}">${c.svg}<figcaption>${esc(c.chart.title)}</figcaption></figure>`;
}

/** The report's HTML text. */
export function reportHtml(input: Exclude<PictureInput, { host: object } | { sweep: object }>, charts: Array<{ chart: Chart & { variant?: string }; svg: string }>, sourceName: string): string {
  const runs: Array<{ name: string; doc: ResultDocument }> = input.compare ? input.compare.variants.map((v) => ({ name: v.name, doc: v.result })) : [{ name: input.run.scenario, doc: input.run }];
  const scenario = input.compare ? input.compare.scenario : input.run.scenario;
  const d0 = runs[0]!.doc;
  const table = formatCompareGroups(scenario, runs.map((r) => r.name), runs.map((r) => r.doc), defaultCompareRows(runs.map((r) => r.doc)));
  const isMap = (c: Chart) => c.name.includes('memory-map-');
  const parts: string[] = [];
  parts.push(`<h1>balloonlab report: ${esc(scenario)}</h1>`);
  parts.push(`<p>From <code>${esc(sourceName)}</code>; ${runs.length > 1 ? `${runs.length} variants (${runs.map((r) => esc(r.name)).join(', ')})` : 'one run'}; guest ${esc(formatSize(d0.guest.memory_bytes))}, ${d0.guest.vcpus} vCPU(s), seed ${d0.seed}; ${esc(formatTime(d0.duration_ns))} of virtual time; balloonlab ${esc(d0.balloonlab)} (report written by ${esc(VERSION)}).</p>`);
  const sections = [['table', 'Comparison table'], ['charts', 'Charts'], ['maps', 'Memory maps'], ['events', 'Events'], ...(input.scenarioText !== undefined ? [['scenario', 'Scenario']] : [])];
  parts.push(`<nav>${sections.map(([id, t]) => `<a href="#${id}">${t}</a>`).join('')}</nav>`);
  parts.push(`<h2 id="table">${runs.length > 1 ? 'Comparison table (mmtests compare-kernels layout; the first variant is the baseline)' : 'Figures of the run'}</h2><pre>${esc(table)}</pre>`);
  parts.push('<h2 id="charts">Charts</h2>');
  const groups = [{ title: runs.length > 1 ? 'Variants overlaid' : '', variant: undefined as string | undefined }, ...(runs.length > 1 ? runs.map((r) => ({ title: `Variant ${r.name}`, variant: r.name as string | undefined })) : [])];
  for (const g of groups) {
    const cs = charts.filter((c) => c.chart.variant === g.variant && !isMap(c.chart));
    if (cs.length === 0) continue;
    if (g.title) parts.push(`<h3>${esc(g.title)}</h3>`);
    parts.push(...cs.map(figure));
  }
  parts.push('<h2 id="maps">Memory maps</h2><p>One cell per 2 MiB pageblock in guest-RAM order (the PCI hole left out): on the left what most of its pages hold, on the right its migratetype; one map at each <code>snapshot</code> and one at the end of the run.</p>');
  for (const r of runs) {
    const ms = charts.filter((c) => isMap(c.chart) && (runs.length === 1 || c.chart.variant === r.name));
    if (runs.length > 1) parts.push(`<h3>Variant ${esc(r.name)}</h3>`);
    parts.push(...ms.map(figure));
  }
  parts.push('<h2 id="events">Events</h2>');
  for (const r of runs) {
    if (runs.length > 1) parts.push(`<h3>Variant ${esc(r.name)}</h3>`);
    parts.push(eventsTable(r.doc));
  }
  if (input.scenarioText !== undefined) parts.push(`<h2 id="scenario">Scenario (${esc(sourceName)})</h2><pre>${esc(input.scenarioText)}</pre>`);
  return `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>balloonlab report: ${esc(scenario)}</title>\n<style>${CSS}</style>\n</head>\n<body>\n${parts.join('\n')}\n</body>\n</html>\n`;
}
