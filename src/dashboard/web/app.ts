/// <reference lib="dom" />
/**
 * The dashboard page: picks a scenario, starts the model worker (worker.ts), and draws
 * what it sends — the memory map on a canvas (only the cells that changed since the
 * last frame), two Vega charts fed row by row, and the event log — with play, pause,
 * step, a speed control and the QMP-shaped controls, which reach the running machine
 * through the shared control block (protocol.ts).
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { CONFIG, CONTENT_COLORS, MIGRATETYPE_COLORS, ORDER_COLORS, BALLOON_COLS } from '../../report/charts.js';
import { MAP_CONTENT_NAMES, MAP_CONTENT_SHIFT, MAP_MIGRATETYPE_MASK } from '../../report/memory_map.js';
import { MIGRATETYPE_NAMES } from '../../guest/mm/memmap.js';
import { type WorkerMessage, type FrameMessage, RunState, CommandOp, CTL_BYTES, CTL_STATE, CTL_CMD_SEQ, CTL_CMD_DONE, CTL_CMD_OP, CTL_F_ARG, CTL_F_SPEED } from './protocol.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** What tests and curious users can read (window.balloonlab). */
type DashboardState = { running: boolean; done: boolean; framesDrawn: number; cellsDrawn: number; fps: number; t_ns: number; balloonActual: number; events: string[]; errors: string[] };
const state: DashboardState = { running: false, done: false, framesDrawn: 0, cellsDrawn: 0, fps: 0, t_ns: 0, balloonActual: 0, events: [], errors: [] };
(window as unknown as { balloonlab: DashboardState }).balloonlab = state;

let worker: Worker | null = null;
let ctl = new SharedArrayBuffer(CTL_BYTES);
let i32 = new Int32Array(ctl), f64 = new Float64Array(ctl);
const pendingCommands: Array<{ op: CommandOp; arg: number }> = [];

// ---------------------------------------------------------------- memory map canvas

let prevCodes: Uint8Array | null = null;
let pending: FrameMessage | null = null;
let cols = 64, cell = 8;

function layoutMap(pageblocks: number): void {
  cols = pageblocks <= 512 ? 32 : pageblocks <= 4096 ? 64 : 128;
  cell = Math.max(2, Math.floor(640 / cols));
  const canvas = $<HTMLCanvasElement>('map');
  canvas.width = cols * cell;
  canvas.height = Math.ceil(pageblocks / cols) * cell;
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  prevCodes = null;
  $('map-scale').textContent = `one cell per 2 MiB pageblock, ${cols * 2} MiB per row; the corner square is the pageblock's migratetype`;
}

/** Draws the cells whose code changed; returns how many. */
function drawMap(codes: Uint8Array): number {
  const ctx = $<HTMLCanvasElement>('map').getContext('2d')!;
  let n = 0;
  const corner = Math.max(1, Math.floor(cell / 3));
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!;
    if (prevCodes && prevCodes[i] === c) continue;
    const x = (i % cols) * cell, y = Math.floor(i / cols) * cell;
    ctx.fillStyle = CONTENT_COLORS[c >>> MAP_CONTENT_SHIFT] ?? '#000';
    ctx.fillRect(x, y, cell - (cell > 3 ? 1 : 0), cell - (cell > 3 ? 1 : 0));
    ctx.fillStyle = MIGRATETYPE_COLORS[c & MAP_MIGRATETYPE_MASK] ?? '#000';
    ctx.fillRect(x, y, corner, corner);
    n++;
  }
  prevCodes = codes;
  return n;
}

function legend(): void {
  const item = (color: string, name: string) => `<span class="key"><i style="background:${color}"></i>${name}</span>`;
  $('legend').innerHTML = `<div>${MAP_CONTENT_NAMES.map((n, i) => item(CONTENT_COLORS[i]!, n)).join('')}</div>` +
    `<div>migratetype: ${MIGRATETYPE_NAMES.map((n, i) => item(MIGRATETYPE_COLORS[i]!, n)).join('')}</div>`;
}

// ---------------------------------------------------------------- charts (Vega-Lite, fed row by row)

const views: { free: vega.View | null; balloon: vega.View | null; migration: vega.View | null } = { free: null, balloon: null, migration: null };
let chartRows: { free: object[]; balloon: object[]; migration: object[] } = { free: [], balloon: [], migration: [] };
let lastChartUpdate = 0;

function orderLabel(o: number): string {
  return `order ${o} (${o <= 8 ? `${4 << o} KiB` : `${1 << (o - 8)} MiB`})`;
}

function liveSpecs(): { free: TopLevelSpec; balloon: TopLevelSpec; migration: TopLevelSpec } {
  const labels = Array.from({ length: 11 }, (_, o) => orderLabel(o));
  const x = { field: 't', type: 'quantitative' as const, title: 'virtual time (s)' };
  return {
    free: {
      title: 'Free memory by block order (MiB)', width: 430, height: 190, config: CONFIG, data: { name: 'rows' }, autosize: { type: 'pad', resize: true },
      mark: { type: 'area', interpolate: 'step-after' },
      encoding: {
        x, y: { field: 'value', type: 'quantitative', stack: 'zero', title: 'free memory (MiB)' },
        color: { field: 'series', type: 'nominal', title: 'free block order', scale: { domain: labels.slice().reverse(), range: ORDER_COLORS.slice().reverse() } },
        order: { field: 'order', type: 'quantitative', sort: 'descending' },
      },
    },
    balloon: {
      title: 'Balloon size, host RSS and guest free memory (MiB)', width: 430, height: 190, config: CONFIG, data: { name: 'rows' }, autosize: { type: 'pad', resize: true },
      mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2 },
      encoding: {
        x, y: { field: 'value', type: 'quantitative', title: 'MiB' },
        color: { field: 'series', type: 'nominal', title: null, scale: { domain: BALLOON_COLS.map((c) => c.label), range: ['#6a3d9a', '#cab2d6', '#e31a1c', '#1a9850'] } },
      },
    },
    migration: {
      title: 'Migration: RAM remaining and transferred (MiB)', width: 430, height: 150, config: CONFIG, data: { name: 'rows' }, autosize: { type: 'pad', resize: true },
      mark: { type: 'line', strokeWidth: 2 },
      encoding: {
        x, y: { field: 'value', type: 'quantitative', title: 'MiB' },
        color: { field: 'series', type: 'nominal', title: null, scale: { domain: ['remaining (dirty, to send)', 'transferred'], range: ['#e31a1c', '#1f78b4'] } },
      },
    },
  };
}

async function resetCharts(): Promise<void> {
  views.free?.finalize(); views.balloon?.finalize(); views.migration?.finalize();
  chartRows = { free: [], balloon: [], migration: [] };
  $('chart-migration').style.display = 'none';
  lastChartT = -1;
  const specs = liveSpecs();
  views.free = new vega.View(vega.parse(compile(specs.free).spec), { renderer: 'canvas', container: '#chart-free', hover: false });
  views.balloon = new vega.View(vega.parse(compile(specs.balloon).spec), { renderer: 'canvas', container: '#chart-balloon', hover: false });
  views.migration = new vega.View(vega.parse(compile(specs.migration).spec), { renderer: 'canvas', container: '#chart-migration', hover: false });
  await Promise.all([views.free.runAsync(), views.balloon.runAsync(), views.migration.runAsync()]);
}

let lastChartT = -1;
function addChartRows(f: FrameMessage): void {
  const t = Math.round(f.t_ns / 1e6) / 1e3, mib = 4096 / 2 ** 20;
  // one row set per instant (several entries at one virtual time each post a frame): a stacked area needs one x per sample
  if (t <= lastChartT) return;
  lastChartT = t;
  f.freeByOrder.forEach((p, o) => chartRows.free.push({ t, series: orderLabel(o), order: o, value: p * mib }));
  chartRows.balloon.push(
    { t, series: BALLOON_COLS[0]!.label, value: f.balloonTarget * mib }, { t, series: BALLOON_COLS[1]!.label, value: f.balloonActual * mib },
    { t, series: BALLOON_COLS[2]!.label, value: f.rssBytes / 2 ** 20 }, { t, series: BALLOON_COLS[3]!.label, value: f.freePages * mib },
  );
  if (f.migration) {
    if (chartRows.migration.length === 0) $('chart-migration').style.display = '';
    chartRows.migration.push({ t, series: 'remaining (dirty, to send)', value: f.migration.remaining / 2 ** 20 }, { t, series: 'transferred', value: f.migration.transferred / 2 ** 20 });
  }
}

function updateCharts(force: boolean): void {
  const now = performance.now();
  if (!force && now - lastChartUpdate < 250) return;
  lastChartUpdate = now;
  for (const k of ['free', 'balloon', 'migration'] as const) {
    const v = views[k];
    if (!v) continue;
    v.data('rows', chartRows[k].slice());
    void v.runAsync();
  }
}

// ---------------------------------------------------------------- the frame loop

let fpsFrames = 0, fpsStart = performance.now();
function animate(): void {
  if (pending) {
    const f = pending;
    pending = null;
    state.cellsDrawn = drawMap(f.codes);
    state.framesDrawn++;
    fpsFrames++;
    state.t_ns = f.t_ns;
    state.balloonActual = f.balloonActual;
    $('clock').textContent = `${(f.t_ns / 1e9).toFixed(2)} s of ${(f.end_ns / 1e9).toFixed(1)} s${f.phase ? `  ${f.phase}` : ''}`;
    updateCharts(false);
  }
  const now = performance.now();
  if (now - fpsStart >= 1000) {
    state.fps = Math.round((fpsFrames * 1000) / (now - fpsStart));
    $('fps').textContent = `${state.fps} fps`;
    fpsFrames = 0; fpsStart = now;
  }
  requestAnimationFrame(animate);
}

function log(text: string): void {
  state.events.push(text);
  const el = $('log');
  el.textContent += `${text}\n`;
  el.scrollTop = el.scrollHeight;
}

function onWorker(m: WorkerMessage): void {
  if (m.type === 'boot') {
    layoutMap(m.pageblocks);
    log(`booted ${m.name}: ${Math.round(m.memoryBytes / 2 ** 20)} MiB, ${m.pageblocks} pageblocks, runs to ${(m.end_ns / 1e9).toFixed(1)} s`);
  } else if (m.type === 'frame') {
    pending = m;
    addChartRows(m);
  } else if (m.type === 'event') {
    log(m.text);
  } else if (m.type === 'done') {
    state.done = true; state.running = false;
    updateCharts(true);
    log(`done: ${(m.duration_ns / 1e9).toFixed(2)} s simulated, ${m.events} events`);
    $('play').textContent = 'play';
  } else if (m.type === 'error') {
    state.errors.push(m.message);
    log(`error: ${m.message}`);
  }
}

async function start(name: string, text: string): Promise<void> {
  worker?.terminate();
  state.done = false; state.running = true; state.framesDrawn = 0; state.events.length = 0;
  $('log').textContent = '';
  await resetCharts();
  ctl = new SharedArrayBuffer(CTL_BYTES);
  i32 = new Int32Array(ctl); f64 = new Float64Array(ctl);
  f64[CTL_F_SPEED] = Number($<HTMLSelectElement>('speed').value);
  i32[CTL_STATE] = $<HTMLInputElement>('start-paused').checked ? RunState.PAUSED : RunState.PLAYING;
  $('play').textContent = i32[CTL_STATE] === RunState.PLAYING ? 'pause' : 'play';
  worker = new Worker('/worker.js');
  worker.onmessage = (e: MessageEvent<WorkerMessage>) => onWorker(e.data);
  worker.onerror = (e) => { state.errors.push(e.message); log(`worker error: ${e.message}`); };
  worker.postMessage({ type: 'start', scenarioText: text, name, ctl });
}

function setState(s: RunState): void {
  Atomics.store(i32, CTL_STATE, s);
  Atomics.notify(i32, CTL_STATE);
  $('play').textContent = s === RunState.PLAYING ? 'pause' : 'play';
}

/** Hands the next queued command to the worker once it has taken the previous one. */
function pumpCommands(): void {
  if (pendingCommands.length === 0 || Atomics.load(i32, CTL_CMD_SEQ) !== Atomics.load(i32, CTL_CMD_DONE)) return;
  const c = pendingCommands.shift()!;
  i32[CTL_CMD_OP] = c.op;
  f64[CTL_F_ARG] = c.arg;
  Atomics.add(i32, CTL_CMD_SEQ, 1);
  Atomics.notify(i32, CTL_STATE);
}

function command(op: CommandOp, arg = 0): void {
  pendingCommands.push({ op, arg });
  pumpCommands();
}

async function main(): Promise<void> {
  legend();
  if (!crossOriginIsolated) log('warning: the page is not cross-origin isolated; SharedArrayBuffer needs the server\'s COOP/COEP headers');
  const list = (await (await fetch('/api/scenarios')).json()) as { scenarios: string[]; initial: string | null };
  const sel = $<HTMLSelectElement>('scenario');
  sel.innerHTML = list.scenarios.map((s) => `<option value="${s}">${s}</option>`).join('');
  if (list.initial) sel.value = list.initial;
  $('run').onclick = async () => {
    const name = sel.value;
    const text = await (await fetch(`/api/scenario?name=${encodeURIComponent(name)}`)).text();
    $<HTMLTextAreaElement>('text').value = text;
    await start(name, text);
  };
  $('run-text').onclick = () => void start('edited scenario', $<HTMLTextAreaElement>('text').value);
  $<HTMLInputElement>('file').onchange = async (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (!f) return;
    const text = await f.text();
    $<HTMLTextAreaElement>('text').value = text;
    await start(f.name, text);
  };
  $('play').onclick = () => setState(Atomics.load(i32, CTL_STATE) === RunState.PLAYING ? RunState.PAUSED : RunState.PLAYING);
  $('step').onclick = () => setState(RunState.STEP);
  $<HTMLSelectElement>('speed').onchange = (e) => { f64[CTL_F_SPEED] = Number((e.target as HTMLSelectElement).value); };
  $('set-target').onclick = () => {
    const mib = Number($<HTMLInputElement>('target').value);
    if (!(mib > 0)) { log('balloon: the guest size must be a positive number of MiB'); return; }
    command(CommandOp.BALLOON, Math.round(mib * 2 ** 20));
  };
  $('migrate').onclick = () => command(CommandOp.MIGRATE);
  $('hint-start').onclick = () => command(CommandOp.HINT_START);
  $('hint-stop').onclick = () => command(CommandOp.HINT_STOP);
  $('hint-done').onclick = () => command(CommandOp.HINT_DONE);
  setInterval(pumpCommands, 20);
  requestAnimationFrame(animate);
  if (list.initial) $('run').click();
}

void main();
