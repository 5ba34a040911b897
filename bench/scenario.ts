/**
 * `balloonlab bench scenario`: the wall time of the bundled experiments, every
 * variant, as `balloonlab compare` runs them. The budget is 60 s per
 * experiment (all its variants) on a 2-core machine.
 *
 * Method: each scenario file is loaded and every variant run once (they are
 * deterministic; a second run gives the same virtual figures), timing each variant
 * with the wall clock. `runs` > 1 repeats the whole set and reports medians.
 */
import { readFileSync } from 'node:fs';
import { loadScenarioText, runScenario } from '../src/scenario/runner.js';
import { median } from './stats.js';

export const BUNDLED_EXPERIMENTS = [
  'scenarios/balloon-compaction.yaml',
  'scenarios/migration-idle.yaml',
  'scenarios/migration-kernel-build.yaml',
  'scenarios/stress-highalloc-balloon.yaml',
] as const;

export type ScenarioBenchResult = {
  bench: 'scenario';
  scenarios: Array<{ file: string; variants: Array<{ name: string; wall_ms: number; virtual_s: number }>; wall_ms: number; within_60s: boolean }>;
  total_wall_ms: number;
  runs: number;
};

export function benchScenario(root: URL, runs = 1, files: readonly string[] = BUNDLED_EXPERIMENTS, now: () => number = () => performance.now(), progress?: (line: string) => void): ScenarioBenchResult {
  const out: ScenarioBenchResult['scenarios'] = [];
  for (const file of files) {
    const sf = loadScenarioText(readFileSync(new URL(file, root), 'utf8'), file);
    const list = sf.variants.length ? sf.variants : [{ name: sf.base.name, scenario: sf.base }];
    const variants = list.map((v) => {
      const times: number[] = [];
      let virtualS = 0;
      for (let r = 0; r < runs; r++) {
        const t0 = now();
        const { doc } = runScenario(v.scenario, {});
        times.push(now() - t0);
        virtualS = doc.duration_ns / 1e9;
        progress?.(`bench scenario: ${file} ${v.name}: ${(times.at(-1)! / 1000).toFixed(1)} s wall for ${virtualS} s virtual`);
      }
      return { name: v.name, wall_ms: Math.round(median(times)), virtual_s: virtualS };
    });
    const wall = variants.reduce((s, v) => s + v.wall_ms, 0);
    out.push({ file, variants, wall_ms: wall, within_60s: wall < 60_000 });
  }
  return { bench: 'scenario', scenarios: out, total_wall_ms: out.reduce((s, x) => s + x.wall_ms, 0), runs };
}
