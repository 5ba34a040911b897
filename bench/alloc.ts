/**
 * `balloonlab bench alloc`: order-0 allocation + free pairs per second with random
 * frees over an 8 GiB guest, and the page map's memory per page.
 *
 * Method: boot the guest, allocate a pool of order-0 pages (1 GiB), then repeatedly
 * allocate one page and free a randomly chosen pool page in its place, so frees land
 * all over memory and the pcp lists, merging and splitting all work. Each run times
 * `pairs` pairs on a fresh guest; the figure is the median of `runs` runs.
 */
import { createGuest, defaultGuestConfig } from '../src/guest/guest.js';
import { allocPages, freePages } from '../src/guest/mm/page_alloc.js';
import { GFP_HIGHUSER_MOVABLE, GFP_KERNEL } from '../src/guest/mm/gfp.js';
import { NO_PAGE, Owner, MEMMAP_BYTES_PER_PAGE, memmapBytes } from '../src/guest/mm/memmap.js';
import { createRng, rngBelow } from '../src/sim/rng.js';
import { checkPgdat } from '../src/guest/mm/check.js';

export type AllocBenchOptions = { memoryBytes: number; pairs: number; runs: number; poolPages: number; seed: number };

export const DEFAULT_ALLOC_BENCH: AllocBenchOptions = {
  memoryBytes: 8 * 1024 ** 3, pairs: 4_000_000, runs: 5, poolPages: 262144, seed: 1,
};

export type AllocBenchResult = {
  bench: 'alloc';
  pages: number;
  memory_bytes: number;
  /** Per-page page-map state (the struct page equivalent). */
  bytes_per_page: number;
  /** Everything the page map holds (per-page arrays, pageblock bytes, list heads) over pages. */
  memmap_total_bytes_per_page: number;
  pairs_per_s: number;
  pairs_per_s_runs: number[];
  pairs_per_run: number;
  pool_pages: number;
  boot_ms: number;
  invariants_ok: boolean;
  node: string;
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function benchAlloc(opts: AllocBenchOptions = DEFAULT_ALLOC_BENCH, now: () => number = () => performance.now()): AllocBenchResult {
  const rates: number[] = [];
  let bootMs = 0;
  let pages = 0, perPage = 0, total = 0;
  let ok = true;
  for (let run = 0; run < opts.runs; run++) {
    const b0 = now();
    const g = createGuest(defaultGuestConfig({ memoryBytes: opts.memoryBytes, seed: opts.seed + run }));
    bootMs = now() - b0;
    const pgdat = g.pgdat;
    pages = pgdat.map.nrPages;
    perPage = MEMMAP_BYTES_PER_PAGE;
    total = memmapBytes(pgdat.map) / pages;
    const pool = new Int32Array(opts.poolPages);
    for (let i = 0; i < pool.length; i++) {
      const pfn = allocPages(pgdat, GFP_HIGHUSER_MOVABLE, 0, Owner.anon);
      if (pfn === NO_PAGE) throw new Error('bench alloc: pool allocation failed');
      pool[i] = pfn;
    }
    const rng = createRng(opts.seed * 7919 + run);
    const t0 = now();
    for (let i = 0; i < opts.pairs; i++) {
      // NOTE: alternate movable and unmovable allocations so both pcp lists and fallbacks stay in play
      const pfn = allocPages(pgdat, i & 1 ? GFP_KERNEL : GFP_HIGHUSER_MOVABLE, 0, i & 1 ? Owner.kernel : Owner.anon);
      const k = rngBelow(rng, pool.length);
      freePages(pgdat, pool[k]!, 0);
      pool[k] = pfn;
    }
    const dt = (now() - t0) / 1000;
    rates.push(Math.round(opts.pairs / dt));
    if (run === 0) ok = checkPgdat(pgdat) === null;
  }
  return {
    bench: 'alloc',
    pages,
    memory_bytes: opts.memoryBytes,
    bytes_per_page: perPage,
    memmap_total_bytes_per_page: +total.toFixed(4),
    pairs_per_s: median(rates),
    pairs_per_s_runs: rates,
    pairs_per_run: opts.pairs,
    pool_pages: opts.poolPages,
    boot_ms: Math.round(bootMs),
    invariants_ok: ok,
    node: typeof process !== 'undefined' ? process.version : 'unknown',
  };
}
