/**
 * The host scenario's speed budget (issue 18): eight 4 GiB guests, 30 minutes of
 * virtual time per variant, four policy variants (none, reporting, mom, proxmox) of
 * scenarios/host-overcommit.yaml, under 60 s wall on a 2-core machine with two worker
 * threads — run as `balloonlab compare --jobs 2` runs them (the same piscina worker).
 *
 * Reports the wall time of the whole set, each variant's own wall time (inside its
 * worker), and the process's CPU time over the set (all threads): on a machine shared
 * with other work the wall time grows with the load while the CPU time does not.
 */
import { readFileSync } from 'node:fs';
import { cpuUsage } from 'node:process';
import { Piscina } from 'piscina';
import { loadScenarioText } from '../src/scenario/runner.js';
import type { VariantTask, VariantOutcome } from '../src/cli/variant_worker.js';

export const HOST_BENCH_FILE = 'scenarios/host-overcommit.yaml';
export const HOST_BENCH_VARIANTS = ['none', 'reporting', 'mom', 'proxmox'] as const;

export type HostBenchResult = {
  bench: 'host';
  file: string;
  jobs: number;
  variants: Array<{ name: string; wall_ms: number; virtual_s: number; vms: number }>;
  wall_ms: number;
  cpu_s: number;
  within_60s: boolean;
};

export async function benchHost(root: URL, jobs = 2, variants: readonly string[] = HOST_BENCH_VARIANTS, progress?: (line: string) => void): Promise<HostBenchResult> {
  const sf = loadScenarioText(readFileSync(new URL(HOST_BENCH_FILE, root), 'utf8'), HOST_BENCH_FILE);
  const chosen = variants.map((n) => {
    const v = sf.variants.find((x) => x.name === n);
    if (!v) throw new RangeError(`${HOST_BENCH_FILE} has no variant ${n}`);
    return v;
  });
  const pool = new Piscina<VariantTask, VariantOutcome>({ filename: new URL('../src/cli/variant_worker.js', import.meta.url).href, minThreads: jobs, maxThreads: jobs, idleTimeout: 1000 });
  const cpu0 = cpuUsage();
  const t0 = performance.now();
  try {
    const out = await Promise.all(chosen.map(async (v) => {
      const r = await pool.run({ scenario: v.scenario, source: `${HOST_BENCH_FILE} (variant ${v.name})`, check: false, reproducible: false } satisfies VariantTask);
      if (!r.ok) throw new Error(`${v.name}: ${r.message}`);
      const doc = r.doc as { wall_ms: number; duration_ns: number; vms?: unknown[] };
      progress?.(`bench host: ${v.name}: ${(doc.wall_ms / 1000).toFixed(1)} s wall in its worker for ${doc.duration_ns / 1e9} s virtual`);
      return { name: v.name, wall_ms: Math.round(doc.wall_ms), virtual_s: doc.duration_ns / 1e9, vms: doc.vms?.length ?? 1 };
    }));
    const wall = Math.round(performance.now() - t0);
    const c = cpuUsage(cpu0);
    return { bench: 'host', file: HOST_BENCH_FILE, jobs, variants: out, wall_ms: wall, cpu_s: Math.round((c.user + c.system) / 1e4) / 100, within_60s: wall < 60_000 };
  } finally {
    await pool.destroy();
  }
}
