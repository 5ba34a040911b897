/**
 * `balloonlab bench scale`: how the model grows with the guest. For each size (64 GiB,
 * 256 GiB and 2 TiB by default) a fresh process runs the phases of
 * scenarios/scale-2tib.yaml scaled to the guest — boot; a process faulting a quarter
 * of RAM; the balloon inflated to half of RAM (1 TiB at 2 TiB) and waited for; a
 * free-page-hint round; a pre-copy migration with hints — and reports each phase's
 * wall time and the process's peak resident memory at the end of it. One process per
 * size, so each peak is that size's own.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadScenarioText, runScenario } from '../src/scenario/runner.js';
import { formatSize } from '../src/scenario/units.js';

const GiB = 1024 ** 3;
export const DEFAULT_SCALE_SIZES = [64 * GiB, 256 * GiB, 2048 * GiB] as const;

export type ScalePhase = { name: string; wall_ms: number; peak_rss_mib: number };
export type ScaleRun = { memory_bytes: number; memory: string; phases: ScalePhase[]; total_wall_ms: number; peak_rss_mib: number; virtual_s: number; check_ok: boolean };
export type ScaleBenchResult = { bench: 'scale'; runs: ScaleRun[] };

/** The scale scenario for a guest of `bytes`: what scenarios/scale-2tib.yaml does at 2 TiB. */
export function scaleScenarioText(bytes: number): string {
  const s = (f: number) => formatSize(Math.floor((bytes * f) / (4 * 1024 ** 2)) * 4 * 1024 ** 2);
  return [
    `name: scale-${formatSize(bytes)}`,
    `guest: { memory: ${formatSize(bytes)}, vcpus: 4 }`,
    'balloon: { free_page_hint: true }',
    'timeline:',
    `  - { at: 1s, action: process_fault, pid: 100, size: ${s(0.25)}, label: fill }`,
    `  - { at: 2s, action: balloon, value: ${s(0.5)}, wait: 3600s, label: inflate }`,
    '  - { at: 3s, action: free_page_hint, command: start, wait: 600s, label: hint }',
    '  - { at: 3s, action: free_page_hint, command: done }',
    '  - { at: 10s, action: migrate, max_bandwidth: 100GiB, downtime_limit: 2s, wait: 7200s, label: migrate }',
    '  - { at: 10s, action: check }',
  ].join('\n') + '\n';
}

/** One size, in this process: the phases' wall times and peak RSS (maxRSS so far). */
export function runScalePhases(bytes: number, now: () => number = () => performance.now()): ScaleRun {
  const s = loadScenarioText(scaleScenarioText(bytes), `scale-${formatSize(bytes)}`).base;
  const phases: ScalePhase[] = [];
  const rss = () => Math.round(process.resourceUsage().maxRSS / 1024);
  const t0 = now();
  let last = t0;
  const mark = (name: string) => { const t = now(); phases.push({ name, wall_ms: Math.round(t - last), peak_rss_mib: rss() }); last = t; };
  const names = ['fill', 'inflate 1/2 of RAM', 'hint round', '', 'migration', 'check'];
  const { doc } = runScenario(s, {
    onBoot: () => mark('boot'),
    onEntry: (i) => { if (names[i]) mark(names[i]!); },
  });
  const check = doc.events.find((e) => e.kind === 'check');
  return {
    memory_bytes: bytes, memory: formatSize(bytes), phases, total_wall_ms: Math.round(now() - t0), peak_rss_mib: rss(),
    virtual_s: doc.duration_ns / 1e9, check_ok: check !== undefined && doc.migration?.destination_check === 'ok',
  };
}

/** Every size in its own process (dist/bench/scale_child.js), one after the other; `progress` hears of each. */
export async function benchScale(sizes: readonly number[] = DEFAULT_SCALE_SIZES, progress?: (line: string) => void): Promise<ScaleBenchResult> {
  const child = fileURLToPath(new URL('./scale_child.js', import.meta.url));
  const runs: ScaleRun[] = [];
  for (const bytes of sizes) {
    progress?.(`bench scale: ${formatSize(bytes)} ...`);
    const run = await new Promise<ScaleRun>((resolve, reject) => {
      const p = fork(child, [String(bytes)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--max-inlined-bytecode-size-cumulative=3000'] });
      let got: ScaleRun | null = null;
      p.on('message', (m) => { got = m as ScaleRun; });
      p.on('exit', (code) => (got ? resolve(got) : reject(new Error(`bench scale: the ${formatSize(bytes)} run exited with ${code}`))));
    });
    progress?.(`bench scale: ${run.memory}: ${run.phases.map((ph) => `${ph.name} ${(ph.wall_ms / 1000).toFixed(1)} s`).join(', ')}; peak RSS ${run.peak_rss_mib} MiB`);
    runs.push(run);
  }
  return { bench: 'scale', runs };
}
