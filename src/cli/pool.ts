/**
 * The worker-thread pool the runs of a sweep go to, on this machine (`sweep --jobs N`)
 * and in a queue worker (`worker --jobs N`): piscina running variant_worker.ts, one
 * thread per job. A task carries a validated scenario (plain data), never code; what
 * comes back is the result document or the error as data.
 */
import { Piscina } from 'piscina';
import type { VariantTask, VariantOutcome } from './variant_worker.js';

export type RunTask = Omit<VariantTask, 'port' | 'seed'>;

export type RunPool = { run: (t: RunTask) => Promise<VariantOutcome>; destroy: () => Promise<void> };

export function createRunPool(threads: number): RunPool {
  const pool = new Piscina<VariantTask, VariantOutcome>({ filename: new URL('./variant_worker.js', import.meta.url).href, minThreads: threads, maxThreads: threads, idleTimeout: 1000 });
  return {
    run: (t) => pool.run(t),
    destroy: () => pool.destroy(),
  };
}
