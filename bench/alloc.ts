/**
 * `balloonlab bench alloc`: order-0 allocation + free pairs per second with random
 * frees over an 8 GiB guest, and the page map's memory per page.
 *
 * Method: boot the guest, allocate a pool of order-0 pages, then repeatedly allocate
 * one page and free a randomly chosen pool page in its place. Allocations alternate
 * between movable and unmovable, so both pcp lists, refills from the buddy and
 * fallbacks stay in play. Each run times `pairs` pairs on a freshly booted guest; the
 * headline figure is the median of `runs` runs (after an untimed warm-up run) with a 64 MiB pool (16384 live pages,
 * spread over gigabytes of the guest by the allocator). The same run also measures a
 * 1 GiB pool (262144 live pages), where nearly every free touches a page record that
 * is out of cache and out of the TLB: that figure (`pairs_per_s_1gib_pool`) is the
 * memory-bound worst case, reported so the two can be compared. `pairs_per_s_in_vm`
 * is the 64 MiB-pool figure for a guest inside a machine (createVm), where every
 * allocation also tells the host's RAM backing that the page was written (the
 * init_on_alloc zeroing: residency, content class, dirty log).
 */
import { createGuest, defaultGuestConfig, type Guest } from '../src/guest/guest.js';
import { createVm } from '../src/machine/machine.js';
import { median } from './stats.js';
import { allocPages, freePages } from '../src/guest/mm/page_alloc.js';
import { GFP_HIGHUSER_MOVABLE, GFP_KERNEL } from '../src/guest/mm/gfp.js';
import { NO_PAGE, Owner, MEMMAP_BYTES_PER_PAGE, memmapBytes } from '../src/guest/mm/memmap.js';
import { createRng, rngBelow } from '../src/sim/rng.js';
import { checkPgdat } from '../src/guest/mm/check.js';

export type AllocBenchOptions = { memoryBytes: number; pairs: number; runs: number; poolPages: number; seed: number };

export const DEFAULT_ALLOC_BENCH: AllocBenchOptions = {
  memoryBytes: 8 * 1024 ** 3, pairs: 4_000_000, runs: 5, poolPages: 16384, seed: 1,
};

/** The large pool of the memory-bound figure. */
const LARGE_POOL_PAGES = 262144;

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
  /** Median with a 1 GiB pool: every free touches a cold page record (memory-bound). */
  pairs_per_s_1gib_pool: number;
  /** Median with the 64 MiB pool for a guest in a VM (the host sees each allocation's write). */
  pairs_per_s_in_vm: number;
  pairs_per_run: number;
  pool_pages: number;
  boot_ms: number;
  invariants_ok: boolean;
  node: string;
};


/** One timed run: boot, fill the pool, time the pairs. Returns [pairs per second, boot ms, invariants ok]. */
function timedRun(opts: AllocBenchOptions, poolPages: number, run: number, now: () => number, inVm = false): [number, number, boolean] {
  const b0 = now();
  const config = defaultGuestConfig({ memoryBytes: opts.memoryBytes, seed: opts.seed + run });
  const g: Guest = inVm ? createVm({ guest: config, balloon: null, memPrealloc: false }).guest : createGuest(config);
  const bootMs = now() - b0;
  const pgdat = g.pgdat;
  const pool = new Int32Array(poolPages);
  for (let i = 0; i < pool.length; i++) {
    const pfn = allocPages(pgdat, GFP_HIGHUSER_MOVABLE, 0, Owner.anon);
    if (pfn === NO_PAGE) throw new Error('bench alloc: pool allocation failed');
    pool[i] = pfn;
  }
  const rng = createRng(opts.seed * 7919 + run);
  const t0 = now();
  for (let i = 0; i < opts.pairs; i++) {
    const pfn = allocPages(pgdat, i & 1 ? GFP_KERNEL : GFP_HIGHUSER_MOVABLE, 0, i & 1 ? Owner.kernel : Owner.anon);
    const k = rngBelow(rng, pool.length);
    freePages(pgdat, pool[k]!, 0);
    pool[k] = pfn;
  }
  const dt = (now() - t0) / 1000;
  return [Math.round(opts.pairs / dt), bootMs, run === 0 ? checkPgdat(pgdat) === null : true];
}

export function benchAlloc(opts: AllocBenchOptions = DEFAULT_ALLOC_BENCH, now: () => number = () => performance.now()): AllocBenchResult {
  const rates: number[] = [];
  const large: number[] = [];
  const inVm: number[] = [];
  let bootMs = 0;
  let ok = true;
  // One untimed warm-up run per pool size, so the figures are steady-state (JIT-compiled) throughput.
  timedRun(opts, opts.poolPages, -1, now);
  timedRun(opts, LARGE_POOL_PAGES, -1, now);
  for (let run = 0; run < opts.runs; run++) {
    const [rate, boot, good] = timedRun(opts, opts.poolPages, run, now);
    rates.push(rate);
    bootMs = boot;
    ok &&= good;
    large.push(timedRun(opts, LARGE_POOL_PAGES, run, now)[0]);
    inVm.push(timedRun(opts, opts.poolPages, run, now, true)[0]);
  }
  const map = createGuest(defaultGuestConfig({ memoryBytes: opts.memoryBytes, seed: opts.seed })).pgdat.map;
  return {
    bench: 'alloc',
    pages: map.nrPages,
    memory_bytes: opts.memoryBytes,
    bytes_per_page: MEMMAP_BYTES_PER_PAGE,
    memmap_total_bytes_per_page: +(memmapBytes(map) / map.nrPages).toFixed(4),
    pairs_per_s: median(rates),
    pairs_per_s_runs: rates,
    pairs_per_s_1gib_pool: median(large),
    pairs_per_s_in_vm: median(inVm),
    pairs_per_run: opts.pairs,
    pool_pages: opts.poolPages,
    boot_ms: Math.round(bootMs),
    invariants_ok: ok,
    node: typeof process !== 'undefined' ? process.version : 'unknown',
  };
}
