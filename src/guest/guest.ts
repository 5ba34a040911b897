/**
 * A guest: its memory (the node with its zones and page map), the layout of its
 * physical memory, its vCPUs, and the simulation it lives in.
 */
import { wbWorkfn } from './mm/page_writeback.js';
import { type Sim, createSim, simAfter } from '../sim/clock.js';
import { installReclaim, installKcompactd } from './mm/slowpath.js';
import { khugepagedScan, KHUGEPAGED_SCAN_SLEEP_NS } from './mm/khugepaged.js';
import { deferredSplitShrinker } from './mm/huge_memory.js';
import { type Rng, createRng, rngFork } from '../sim/rng.js';
import { type CostTable, defaultCostTable } from '../sim/cost.js';
import { createMemMap, MAX_ORDER, MIGRATE_TYPES, PAGE_SIZE } from './mm/memmap.js';
import { type PgData, createPgData, NR_MODEL_ZONES, NR_PCP_LISTS } from './mm/mmzone.js';
import { type MemLayout, GuestConfigError, memLayout } from './mm/layout.js';
import { type BootParams, DEFAULT_BOOT, bootMemory } from './mm/boot.js';
import type { ProcessTable } from './mm/mm_types.js';
import { type Sched, Kthread, createSched, schedKthread, schedKthreadBurst, schedSliceNs } from './sched.js';
import { type KernelVersion, kernelProfile } from './mm/kernel_era.js';

export type GuestConfig = {
  /** Guest RAM in bytes (a multiple of 4 MiB, at least 128 MiB). */
  memoryBytes: number;
  /** Virtual CPUs (each has per-cpu page lists). */
  vcpus: number;
  /** The kernel it runs (kernel_era.ts; default 6.1). */
  kernel?: KernelVersion;
  /** Seed of every random choice. */
  seed: number;
  /** Boot options (KASLR, kernel image size, min_free_kbytes, THP). */
  boot: BootParams;
  /** Size of the swap device in bytes (0: no swap). */
  swapBytes: number;
};

export type Guest = {
  config: GuestConfig;
  sim: Sim;
  /** The guest's random stream (boot, workloads). */
  rng: Rng;
  layout: MemLayout;
  pgdat: PgData;
  /** The guest's processes (src/guest/mm/process.ts). */
  procs: ProcessTable;
  /** Its vCPUs: what runs on them and for how long (sched.ts). */
  sched: Sched;
};

export function defaultGuestConfig(overrides: Partial<GuestConfig> = {}): GuestConfig {
  return { memoryBytes: 1024 * 1024 * 1024, vcpus: 1, seed: 1, boot: { ...DEFAULT_BOOT }, swapBytes: 0, ...overrides };
}

/**
 * The flusher thread (wb_workfn): every dirty_writeback_centisecs (5 s; 0 turns the
 * periodic run off, as the kernel does), and at once when a writer passes the
 * background threshold (at most one run pending).
 */
function installFlusher(pgdat: PgData, sim: Sim, sched: Sched): void {
  pgdat.nowNs = () => sim.now;
  let pending = false;
  const run = () => { pending = false; schedKthread(sched, Kthread.flusher, () => wbWorkfn(pgdat)); };
  pgdat.hooks.wakeFlusher = () => { if (!pending) { pending = true; simAfter(sim, 0, run); } };
  const periodic = () => {
    const every = pgdat.sysctl.dirtyWritebackCentisecs * 1e7;
    if (every > 0) schedKthread(sched, Kthread.flusher, () => wbWorkfn(pgdat));
    simAfter(sim, every > 0 ? every : 5e9, periodic);
  };
  simAfter(sim, pgdat.sysctl.dirtyWritebackCentisecs * 1e7 || 5e9, periodic);
}

/** Creates and boots a guest on `sim`, charging work from `costs` (the machine's table). */
export function createGuest(config: GuestConfig, sim: Sim = createSim(), costs: CostTable = defaultCostTable()): Guest {
  if (!Number.isInteger(config.vcpus) || config.vcpus < 1 || config.vcpus > 256) throw new GuestConfigError('vcpus must be a whole number from 1 to 256');
  const layout = memLayout(config.memoryBytes);
  const rng = createRng(config.seed);
  // list heads: free lists and pcp lists of every zone and cpu, LRU, compaction, balloon ...
  const map = createMemMap(layout.nrPages, 1024 + NR_MODEL_ZONES * (MAX_ORDER * MIGRATE_TYPES + NR_PCP_LISTS * config.vcpus));
  const pgdat = createPgData(map, config.vcpus, costs, kernelProfile(config.kernel ?? '6.1'));
  // tunables the era does not have are off (vm.watermark_boost_factor 5.0, vm.compaction_proactiveness 5.9)
  if (!pgdat.kernel.watermarkBoost) pgdat.sysctl.watermarkBoostFactor = 0;
  if (!pgdat.kernel.proactiveCompaction) pgdat.sysctl.compactionProactiveness = 0;
  bootMemory(pgdat, layout, config.boot, rngFork(rng));
  pgdat.swap.totalPages = Math.floor(config.swapBytes / PAGE_SIZE);
  // hugepage_init registers the THP shrinkers: the deferred split's (the huge zero page is not modelled)
  pgdat.shrinkers.push(deferredSplitShrinker());
  const sched = createSched(sim, pgdat, config.vcpus);
  // kswapd runs as a kernel thread: woken by the event that needed it, it runs right
  // after it, at the same instant, and its work takes time on a vCPU (sched.ts).
  installReclaim(pgdat, (fn) => simAfter(sim, 0, () => schedKthread(sched, Kthread.kswapd, fn)), (fn) => simAfter(sim, 0, () => schedKthread(sched, Kthread.kcompactd, fn)));
  // kcompactd and its proactive checks (4.6, 5.9); a 3.6 kswapd compacts by itself
  if (pgdat.kernel.proactiveCompaction) installKcompactd(pgdat, (ns, fn) => simAfter(sim, ns, () => schedKthread(sched, Kthread.kcompactd, fn)), (fn) => schedKthreadBurst(sched, Kthread.kcompactd, fn), schedSliceNs(config.vcpus));
  const khugepaged = () => { schedKthread(sched, Kthread.khugepaged, () => khugepagedScan(pgdat)); simAfter(sim, KHUGEPAGED_SCAN_SLEEP_NS, khugepaged); };
  simAfter(sim, KHUGEPAGED_SCAN_SLEEP_NS, khugepaged);
  installFlusher(pgdat, sim, sched);
  return { config, sim, rng, layout, pgdat, procs: pgdat.tasks.procs, sched };
}
