/**
 * How many runs `compare` and `sweep` start at once without running the machine out
 * of memory. The model holds about 30 bytes per guest page (the page map, the host's
 * view of guest RAM, a migration's bitmaps and the destination's copy): a 2 TiB guest
 * needs ~16 GiB (docs/experiments.md, `bench scale`), and two of them at once would not
 * fit where one does. A run starts when the estimates of the runs in flight and its own
 * fit in the budget, or when nothing else runs (a run bigger than the budget runs alone).
 */
import { totalmem } from 'node:os';
import type { Scenario } from '../scenario/schema.js';

/** Bytes the model holds per guest page, rounded up from bench scale's peak RSS (15.9 GB at 2^29 pages). */
export const MODEL_BYTES_PER_PAGE = 32;
/** What a run holds besides its guests' pages (the code, the result document). */
const RUN_BASE_BYTES = 256 * 2 ** 20;

/** A run's memory, estimated from its guests' RAM (every VM of a host scenario). */
export function scenarioMemoryEstimate(s: Scenario): number {
  const guests = s.vms ? s.vms.reduce((n, v) => n + v.scenario.guest.memory, 0) : s.guest.memory;
  return RUN_BASE_BYTES + (guests / 4096) * MODEL_BYTES_PER_PAGE;
}

/** The budget runs share: three quarters of the machine's memory. */
export function memoryBudget(): number {
  return 0.75 * totalmem();
}

/**
 * Runs `start(i)` for i in 0..n-1, in order, at most `jobs` at once and, beyond the
 * first, only while their `estimate`s fit in `budget`. Results in input order; the
 * first rejection rejects the whole (runs in flight finish first).
 */
export function runWithinMemory<T>(n: number, jobs: number, estimate: (i: number) => number, budget: number, start: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  return new Promise<T[]>((resolve, reject) => {
    let next = 0, running = 0, used = 0, failed: unknown = null, done = 0;
    const pump = () => {
      while (failed === null && next < n && running < jobs && (running === 0 || used + estimate(next) <= budget)) {
        const i = next++;
        const e = estimate(i);
        running++;
        used += e;
        start(i).then((v) => { out[i] = v; }, (err: unknown) => { if (failed === null) failed = err; }).finally(() => {
          running--;
          used -= e;
          done++;
          if (failed !== null && running === 0) reject(failed);
          else if (done === n) resolve(out);
          else pump();
        });
      }
    };
    if (n === 0) resolve(out);
    else pump();
  });
}
