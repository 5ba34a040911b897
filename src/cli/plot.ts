/**
 * `balloonlab plot` and `balloonlab report`: the pictures of a run (docs/pictures.md).
 * Both take a result document (`run --json`), a comparison (`compare --json`) or a
 * scenario file, which they run first (every variant, when it has variants).
 */
import { mkdirSync, writeFileSync, statSync, existsSync } from 'node:fs';
import { join, basename } from 'node:path';
import type { Command } from 'commander';
import type { Scenario, ScenarioFile } from '../scenario/schema.js';
import type { ResultDocument } from '../scenario/runner.js';
import { type Chart, type CompareDocument, compareCharts, isCompareDocument, resultCharts } from '../report/charts.js';
import type { HostResultDocument } from '../scenario/host_runner.js';
import { hostCharts, hostCompareCharts } from '../report/host_charts.js';
import type { SweepResultDocument } from '../report/sweep.js';
import { isSweepDocument, sweepCharts } from '../report/sweep_charts.js';

/** What main.ts lends the picture commands (so they share its errors, runs and file handling). */
export type PictureHelpers = {
  usageError: (msg: string) => Error;
  readScenarioFile: (file: string) => ScenarioFile;
  readTextFile: (file: string, what: string) => string;
  runScenario: (s: Scenario, label: string, source: string) => ResultDocument;
  /** A host scenario (`vms:`). */
  runHostScenario: (s: Scenario, label: string, source: string) => HostResultDocument;
  checkOutputPath: (option: string, target: string | undefined) => void;
  writeOutput: (target: string, text: string) => void;
};

/** What the commands draw from: one run or a comparison, and the scenario text when there is one. */
export type PictureInput =
  | { run: ResultDocument; compare?: undefined; host?: undefined; sweep?: undefined; scenarioText?: string; source: string }
  | { run?: undefined; compare: CompareDocument; host?: undefined; sweep?: undefined; scenarioText?: string; source: string }
  /** A host run (`vms:`), or a comparison of host runs: one entry per variant. */
  | { run?: undefined; compare?: undefined; host: { scenario: string; variants: Array<{ name: string; doc: HostResultDocument }> }; sweep?: undefined; scenarioText?: string; source: string }
  /** A sweep's document (`sweep --json`): a chart per figure over the grid. */
  | { run?: undefined; compare?: undefined; host?: undefined; sweep: SweepResultDocument; scenarioText?: string; source: string };

function isHostDoc(d: unknown): d is HostResultDocument {
  return typeof d === 'object' && d !== null && (d as { kind?: unknown }).kind === 'host';
}

/** Reads a result/compare document, or runs a scenario file (all its variants, when it has any). */
export function loadPictureInput(file: string, h: PictureHelpers): PictureInput {
  if (/\.ya?ml$/i.test(file)) {
    const sf = h.readScenarioFile(file);
    const scenarioText = h.readTextFile(file, 'scenario file');
    if (sf.base.vms) {
      const runs = sf.variants.length === 0 ? [{ name: sf.base.name, doc: h.runHostScenario(sf.base, sf.base.name, file) }]
        : sf.variants.map((v) => ({ name: v.name, doc: h.runHostScenario(v.scenario, v.name, `${file} (variant ${v.name})`) }));
      return { host: { scenario: sf.base.name, variants: runs }, scenarioText, source: file };
    }
    if (sf.variants.length === 0) return { run: h.runScenario(sf.base, sf.base.name, file), scenarioText, source: file };
    const variants = sf.variants.map((v) => ({ name: v.name, result: h.runScenario(v.scenario, v.name, `${file} (variant ${v.name})`) }));
    return { compare: { scenario: sf.base.name, variants }, scenarioText, source: file };
  }
  const text = h.readTextFile(file, 'result document');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw h.usageError(`${file}: not JSON (${(e as Error).message}); give a result document (run --json), a comparison (compare --json) or a scenario (.yaml)`);
  }
  if (isSweepDocument(doc)) return { sweep: doc, source: file };
  if (isHostDoc(doc)) return { host: { scenario: doc.scenario, variants: [{ name: doc.scenario, doc }] }, source: file };
  if (isCompareDocument(doc) && doc.variants.length > 0 && doc.variants.every((v) => isHostDoc(v?.result))) {
    return { host: { scenario: doc.scenario, variants: doc.variants.map((v) => ({ name: v.name, doc: v.result as unknown as HostResultDocument })) }, source: file };
  }
  const hasSeries = (d: unknown) => typeof d === 'object' && d !== null && 'series' in d && 'memory_maps' in d;
  if (isCompareDocument(doc)) {
    const bad = doc.variants.findIndex((v) => !hasSeries(v?.result));
    if (bad >= 0) throw h.usageError(`${file}: variants[${bad}].result has no series or memory_maps (written by an older balloonlab? run compare --json again)`);
    return { compare: doc, source: file };
  }
  if (!hasSeries(doc)) throw h.usageError(`${file}: not a result document with series and memory_maps (run --json or compare --json of this balloonlab), nor a scenario (.yaml)`);
  return { run: doc as ResultDocument, source: file };
}

export function inputCharts(input: PictureInput): Array<Chart & { variant?: string }> {
  if (input.sweep) return sweepCharts(input.sweep);
  if (input.host) {
    const v = input.host.variants;
    return v.length === 1 ? hostCharts(v[0]!.doc) : hostCompareCharts(input.host.scenario, v);
  }
  return input.compare ? compareCharts(input.compare) : resultCharts(input.run);
}

const FORMATS = ['svg', 'png'] as const;

export function addPictureCommands(program: Command, h: PictureHelpers): void {
  program.command('plot')
    .description('Draw the standard charts of a run (free memory by order, pageblocks by migratetype, balloon and RSS, migration, the memory map at each snapshot) as SVG or PNG files; a comparison overlays its variants.')
    .argument('<input>', 'a result document (run --json), a comparison (compare --json), a sweep\'s document (sweep --json: a chart per figure), or a scenario file (.yaml: run first, every variant)')
    .option('--out <dir>', 'directory for the files (made if missing)', 'plots')
    .option('--format <list>', 'svg, png, or both comma-separated (svg,png)', 'svg')
    .option('--scale <n>', 'PNG pixels per SVG pixel', '2')
    .action(async (file: string, o: { out: string; format: string; scale: string }) => {
      const formats = o.format.split(',').map((x) => x.trim());
      for (const f of formats) if (!(FORMATS as readonly string[]).includes(f)) throw h.usageError(`--format: unknown format "${f}" (allowed: svg, png, or svg,png)`);
      const scale = Number(o.scale);
      if (!Number.isFinite(scale) || scale <= 0 || scale > 8) throw h.usageError(`--scale: expected a number from 0 to 8, got "${o.scale}"`);
      if (existsSync(o.out) && !statSync(o.out).isDirectory()) throw h.usageError(`--out: ${o.out} is not a directory`);
      mkdirSync(o.out, { recursive: true });
      h.checkOutputPath('--out', join(o.out, 'x'));
      const input = loadPictureInput(file, h);
      // vega, vega-lite and resvg load only for the commands that draw (the CLI starts 0.4 s faster)
      const { chartSvg, svgToPng } = await import('./render.js');
      for (const c of inputCharts(input)) {
        const svg = await chartSvg(c);
        for (const f of formats) {
          const target = join(o.out, `${c.name}.${f}`);
          if (f === 'svg') h.writeOutput(target, svg);
          else writeFileSync(target, svgToPng(svg, scale));
          process.stdout.write(`${target}  ${c.title}\n`);
        }
      }
    });

  program.command('report')
    .description('Write one self-contained HTML file (opens offline: no script, nothing fetched) with the comparison table, the charts, the memory maps at each snapshot, the events and the scenario text.')
    .argument('<input>', 'a scenario file (.yaml: run first, every variant), a result document (run --json) or a comparison (compare --json)')
    .requiredOption('--html <file>', 'the HTML file to write')
    .action(async (file: string, o: { html: string }) => {
      h.checkOutputPath('--html', o.html);
      const input = loadPictureInput(file, h);
      if (input.sweep) throw h.usageError(`report: ${file} is a sweep's document; draw its charts (one per figure) with balloonlab plot`);
      if (input.host) throw h.usageError(`report: ${file} is a host scenario (vms:); the HTML report covers single-guest runs for now: draw a host run's charts with balloonlab plot`);
      const { chartSvg } = await import('./render.js');
      const { reportHtml } = await import('./report_html.js');
      const svgs: Array<{ chart: Chart & { variant?: string }; svg: string }> = [];
      for (const c of inputCharts(input)) svgs.push({ chart: c, svg: await chartSvg(c) });
      h.writeOutput(o.html, reportHtml(input, svgs, basename(file)));
      process.stdout.write(`${o.html}  ${svgs.length} charts\n`);
    });

  program.command('dashboard')
    .description('Serve the live dashboard on this machine (the model runs in the browser, in a Web Worker): pick a scenario, play/pause/step it, watch the memory map, the charts and the events, act on it with QMP-shaped controls.')
    .argument('[scenario]', 'a scenario file to open first (default: the bundled balloon-basic)')
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'port (0: any free one)', '8177')
    .action(async (file: string | undefined, o: { host: string; port: string }) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw h.usageError(`--port: expected a port from 0 to 65535, got "${o.port}"`);
      let scenarioText: string | undefined;
      if (file !== undefined) { h.readScenarioFile(file); scenarioText = h.readTextFile(file, 'scenario file'); }
      const { startDashboard } = await import('./dashboard_server.js');
      const { url } = await startDashboard({ host: o.host, port, ...(file !== undefined ? { scenarioFile: file, scenarioText } : {}) });
      process.stdout.write(`balloonlab dashboard: ${url}  (Ctrl-C stops it)\n`);
      await new Promise(() => {});
    });
}
