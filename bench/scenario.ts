/**
 * `balloonlab bench scenario`: the wall time of the bundled experiments, every
 * variant, as `balloonlab compare` runs them: on a piscina pool of `jobs` worker
 * threads (compare's default: one per core), with the same worker (variant_worker.ts).
 * The budget is 60 s per experiment (all its variants) on a 2-core machine.
 *
 * Method: each scenario file is loaded and its variants run on the pool (they are
 * deterministic; a second run gives the same virtual figures). Per experiment: the
 * wall time of the whole set (what a user waits for), each variant's own wall time
 * inside its worker, their sum (what the set costs one thread: `sequential_ms`), and
 * the process's CPU time over the set (all threads), which a machine shared with other
 * work does not inflate as it does the wall time. `runs` > 1 repeats each experiment
 * and reports medians.
 */
import { readFileSync } from 'node:fs';
import { cpuUsage } from 'node:process';
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { loadScenarioText } from '../src/scenario/runner.js';
import type { VariantTask, VariantOutcome } from '../src/cli/variant_worker.js';
import { median } from './stats.js';

export const BUNDLED_EXPERIMENTS = [
  'scenarios/balloon-compaction.yaml',
  'scenarios/migration-idle.yaml',
  'scenarios/migration-kernel-build.yaml',
  'scenarios/stress-highalloc-balloon.yaml',
] as const;

export type ScenarioBenchResult = {
  bench: 'scenario';
  jobs: number;
  scenarios: Array<{
    file: string;
    variants: Array<{ name: string; wall_ms: number; virtual_s: number }>;
    /** The whole set on the pool. */
    wall_ms: number;
    /** The variants' own wall times summed: the set one after another. */
    sequential_ms: number;
    cpu_s: number;
    within_60s: boolean;
  }>;
  total_wall_ms: number;
  runs: number;
};

export async function benchScenario(root: URL, runs = 1, files: readonly string[] = BUNDLED_EXPERIMENTS, jobs = availableParallelism(), progress?: (line: string) => void): Promise<ScenarioBenchResult> {
  const pool = new Piscina<VariantTask, VariantOutcome>({ filename: new URL('../src/cli/variant_worker.js', import.meta.url).href, minThreads: jobs, maxThreads: jobs, idleTimeout: 1000 });
  const out: ScenarioBenchResult['scenarios'] = [];
  try {
    for (const file of files) {
      const sf = loadScenarioText(readFileSync(new URL(file, root), 'utf8'), file);
      const list = sf.variants.length ? sf.variants : [{ name: sf.base.name, scenario: sf.base }];
      const walls: number[] = [], cpus: number[] = [];
      const own: number[][] = list.map(() => []);
      const virtualS: number[] = list.map(() => 0);
      for (let r = 0; r < runs; r++) {
        const cpu0 = cpuUsage();
        const t0 = performance.now();
        await Promise.all(list.map(async (v, i) => {
          const o = await pool.run({ scenario: v.scenario, source: `${file} (variant ${v.name})`, check: false, reproducible: false } satisfies VariantTask);
          if (!o.ok) throw new Error(`${file} ${v.name}: ${o.message}`);
          own[i]!.push(o.doc.wall_ms);
          virtualS[i] = o.doc.duration_ns / 1e9;
          progress?.(`bench scenario: ${file} ${v.name}: ${(o.doc.wall_ms / 1000).toFixed(1)} s wall in its worker for ${virtualS[i]} s virtual`);
        }));
        walls.push(performance.now() - t0);
        const c = cpuUsage(cpu0);
        cpus.push((c.user + c.system) / 1e6);
        progress?.(`bench scenario: ${file}: ${(walls.at(-1)! / 1000).toFixed(1)} s wall for ${list.length} variant${list.length > 1 ? 's' : ''} on ${Math.min(jobs, list.length)} worker${Math.min(jobs, list.length) > 1 ? 's' : ''}`);
      }
      const variants = list.map((v, i) => ({ name: v.name, wall_ms: Math.round(median(own[i]!)), virtual_s: virtualS[i]! }));
      const wall = Math.round(median(walls));
      out.push({ file, variants, wall_ms: wall, sequential_ms: variants.reduce((s, v) => s + v.wall_ms, 0), cpu_s: Math.round(median(cpus) * 100) / 100, within_60s: wall < 60_000 });
    }
  } finally {
    await pool.destroy();
  }
  return { bench: 'scenario', jobs, scenarios: out, total_wall_ms: out.reduce((s, x) => s + x.wall_ms, 0), runs };
}
