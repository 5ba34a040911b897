/**
 * `stress-highalloc`: mmtests' test of how many huge pages a loaded, fragmented guest
 * can still allocate (Mel Gorman's vmr/bin/bench-stresshighalloc.sh with the
 * highalloc.stp allocator; RESEARCH.md §3.4 has the definition this follows).
 *
 * 1. Load: NUM_KERNELS = MemTotal (MB) / 400 kernel trees are unpacked and built with
 *    `make -j1`, plus a primary build, all at once (kernel_build.ts with untar).
 * 2. Warm-up: 10 x 30 s.
 * 3. Pass 1: while the builds run, try to allocate 95 % of MemTotal as order-9 blocks
 *    with GFP_HIGHUSER_MOVABLE | __GFP_NOWARN, one attempt per 125 ms (16 MB/s of
 *    requests: MS_DELAY = 2 MiB / (16 MiB/s)); successes are held until the pass
 *    ends, then all freed. The pass's result is "% Success" = successes * 100 /
 *    attempts.
 * 4. 5 s later, Pass 2: the same, still under load.
 * 5. Wait 180 s, stop the builds (killall make cc1), delete the trees, write a
 *    RAM-sized file with dd and read it back, sync and drop caches, set
 *    min_free_kbytes to 1024: then the pass "while Rested".
 * An attempt's time is the interval plus whatever it stalled in direct reclaim or
 * compaction, on a vCPU it shares with the builds (src/guest/sched.ts). mmtests gives up on a pass after 600 s for one success or 1200 s of
 * failure; the model has no such limits (its attempts never take that long).
 */
import { simAfter } from '../sim/clock.js';
import { type BurstResult, schedWakeup } from '../guest/sched.js';
import { type Rng, rngFork } from '../sim/rng.js';
import type { Guest } from '../guest/guest.js';
import { NO_PAGE, PAGE_SIZE, PAGEBLOCK_ORDER, PAGEBLOCK_NR_PAGES, MIGRATE_TYPES, Owner, getPageblockMigratetype } from '../guest/mm/memmap.js';
import { VmEvent } from '../guest/mm/vmstat_items.js';
import { mixedBlockCounts, balloonPagesByBlockType } from '../guest/mm/page_owner.js';
import { totalramPages } from '../guest/mm/mmzone.js';
import { allocPages, freePages, setupPerZoneWmarks } from '../guest/mm/page_alloc.js';
import { GFP_HIGHUSER_MOVABLE, __GFP_NOWARN } from '../guest/mm/gfp.js';
import { forkProcess, exitProcess, readFilePages } from '../guest/mm/process.js';
import { truncateInodePages, syncPagecache, dropCachesSysctlHandler } from '../guest/mm/filemap.js';
import { type KernelBuild, type KernelBuildParams, PID_RANGE, startKernelBuild, stopKernelBuild } from './kernel_build.js';

const MiB = 1024 * 1024;

export type StressHighallocParams = {
  /** Share of MemTotal requested per pass (HIGHALLOC_PERCENTAGE 95). */
  percent: number;
  /** Request rate (HIGHALLOC_ALLOC_RATE 16 MB/s). */
  mbPerSec: number;
  /** Allocation order (HUGETLB_ORDER: 9 on x86-64). */
  order: number;
  /** Warm-up before Pass 1 (10 x 30 s). */
  warmupNs: number;
  /** Wait between Pass 2 and stopping the load (180 s). */
  cooldownNs: number;
  /** Each build's tree and compiler; mmtests builds linux-3.0 (~430 MiB unpacked). */
  build: Partial<KernelBuildParams>;
  /** Builds: MemTotal/400MB plus the primary one, unless set. */
  builds: number | null;
};

export const STRESS_HIGHALLOC_DEFAULTS: Readonly<StressHighallocParams> = {
  percent: 95, mbPerSec: 16, order: PAGEBLOCK_ORDER, warmupNs: 300e9, cooldownNs: 180e9,
  build: { jobs: 1, units: 100000, sourceBytes: 430 * MiB, objectBytes: 400 * MiB, untar: true }, builds: null,
};

export type HighallocPass = {
  name: 'Pass 1' | 'Pass 2' | 'while Rested'; requested: number; attempted: number; succeeded: number; success_pct: number; start_ns: number; end_ns: number;
  /** Time the attempts stalled in direct reclaim and compaction. */
  stall_ns: number;
  /** The attempts' own vCPU time and the time they waited behind other wakeups on their vCPU. */
  run_ns: number;
  /** Why the pass came out as it did (passExplain). */
  explain: HighallocExplain;
};

/**
 * Where a pass's huge pages came from and why attempts failed, from the counters each
 * attempt moved, and, at the pass's end (blocks still held), the pageblocks: their
 * types, those of mixed migratetypes (page_owner's census), and the balloon's pages
 * by the type of pageblock they sit in. Migratetypes are indexed as the model's
 * enum: Unmovable, Movable, Reclaimable, HighAtomic (3.6: Reserve), Isolate.
 */
export type HighallocExplain = {
  /** Successes straight from the free lists (no compaction, no direct reclaim). */
  from_free_lists: number;
  /** Successes after direct compaction succeeded. */
  after_compaction: number;
  /** Successes after direct reclaim (without a compaction success). */
  after_reclaim: number;
  /** Successes that took a block by a migratetype fallback. */
  by_fallback: number;
  /** Failures where compaction was deferred (in some zone, at some point of the attempt: 6.1 counts those as compact_stall and compact_fail too). */
  failed_deferred: number;
  /** Other failures after a compaction run that failed (compact_fail). */
  failed_compaction: number;
  /** Failures where compaction did not run at all (skipped: too little free memory, or the fragmentation index said reclaim). */
  failed_skipped: number;
  /** compact_stall, direct reclaim stalls (allocstall), pages reclaimed directly, pages migrated: over the pass. */
  compact_stalls: number;
  reclaim_stalls: number;
  direct_reclaimed: number;
  pages_migrated: number;
  /** At the pass's end: pageblocks per type, mixed pageblocks per type, balloon pages per pageblock type. */
  blocks: number[];
  mixed_blocks: number[];
  balloon_pages_by_block: number[];
};

export type StressHighalloc = {
  guest: Guest;
  params: StressHighallocParams;
  builds: KernelBuild[];
  passes: HighallocPass[];
  /** Phase the test is in (for progress and reports). */
  phase: 'load' | 'pass1' | 'pass2' | 'cooldown' | 'rested-prep' | 'rested' | 'done';
  endNs: number | null;
  onDone: ((s: StressHighalloc) => void) | null;
};

/** Starts the whole test now. */
export function startStressHighalloc(guest: Guest, rng: Rng, params: Partial<StressHighallocParams> = {}): StressHighalloc {
  const p = { ...STRESS_HIGHALLOC_DEFAULTS, ...params, build: { ...STRESS_HIGHALLOC_DEFAULTS.build, ...params.build } };
  const memTotalMb = (totalramPages(guest.pgdat) * PAGE_SIZE) / MiB;
  const n = p.builds ?? Math.floor(memTotalMb / 400) + 1;
  const s: StressHighalloc = { guest, params: p, builds: [], passes: [], phase: 'load', endNs: null, onDone: null };
  for (let i = 0; i < n; i++) s.builds.push(startKernelBuild(guest, rngFork(rng), { ...p.build, firstPid: 1000 + i * PID_RANGE }));
  const sim = guest.sim;
  simAfter(sim, p.warmupNs, () => {
    s.phase = 'pass1';
    runPass(s, 'Pass 1', () => simAfter(sim, 5e9, () => {
      s.phase = 'pass2';
      runPass(s, 'Pass 2', () => {
        s.phase = 'cooldown';
        simAfter(sim, p.cooldownNs, () => prepareRested(s, () => {
          s.phase = 'rested';
          runPass(s, 'while Rested', () => {
            s.phase = 'done';
            s.endNs = sim.now;
            s.onDone?.(s);
          });
        }));
      });
    }));
  });
  return s;
}

/** One pass of highalloc.stp: attempts every MS_DELAY, successes held, all freed at the end. */
function runPass(s: StressHighalloc, name: HighallocPass['name'], then: () => void): void {
  const { guest, params: p } = s;
  const pg = guest.pgdat;
  const blockBytes = PAGE_SIZE << p.order;
  const attempts = Math.floor(((totalramPages(pg) * PAGE_SIZE) / blockBytes) * (p.percent / 100));
  const delayNs = Math.round((blockBytes / (p.mbPerSec * MiB)) * 1e9);
  const held: number[] = [];
  const explain: HighallocExplain = {
    from_free_lists: 0, after_compaction: 0, after_reclaim: 0, by_fallback: 0, failed_compaction: 0, failed_deferred: 0, failed_skipped: 0,
    compact_stalls: 0, reclaim_stalls: 0, direct_reclaimed: 0, pages_migrated: 0, blocks: [], mixed_blocks: [], balloon_pages_by_block: [],
  };
  const pass: HighallocPass = { name, requested: attempts, attempted: 0, succeeded: 0, success_pct: 0, start_ns: guest.sim.now, end_ns: 0, stall_ns: 0, run_ns: 0, explain };
  const ev = pg.events;
  const stalls = () => ev[VmEvent.allocstall_dma]! + ev[VmEvent.allocstall_dma32]! + ev[VmEvent.allocstall_normal]! + ev[VmEvent.allocstall_movable]!;
  s.passes.push(pass);
  let done = 0, cpu = 0;
  // Each attempt is the allocating task waking from its msleep: it runs at once on a
  // vCPU (preempting a compiler there), and its stalls keep that vCPU busy.
  const tryAlloc = (): number => {
    const c0 = ev[VmEvent.compact_stall]!, ok0 = ev[VmEvent.compact_success]!, fail0 = ev[VmEvent.compact_fail]!, r0 = stalls();
    const d0 = pg.compactDeferredEvents, fb0 = pg.era.fallbacks, steal0 = ev[VmEvent.pgsteal_direct]!, mig0 = ev[VmEvent.compact_pages_moved]!;
    const pfn = allocPages(pg, GFP_HIGHUSER_MOVABLE | __GFP_NOWARN, p.order, Owner.kernel);
    const compacted = ev[VmEvent.compact_success]! > ok0, reclaimed = stalls() > r0;
    explain.compact_stalls += ev[VmEvent.compact_stall]! - c0;
    explain.reclaim_stalls += stalls() - r0;
    explain.direct_reclaimed += ev[VmEvent.pgsteal_direct]! - steal0;
    explain.pages_migrated += ev[VmEvent.compact_pages_moved]! - mig0;
    if (pfn !== NO_PAGE) {
      if (compacted) explain.after_compaction++;
      else if (reclaimed) explain.after_reclaim++;
      else explain.from_free_lists++;
      if (pg.era.fallbacks > fb0) explain.by_fallback++;
    } else if (pg.compactDeferredEvents > d0) explain.failed_deferred++;
    else if (ev[VmEvent.compact_fail]! > fail0) explain.failed_compaction++;
    else explain.failed_skipped++;
    if (pfn !== NO_PAGE) { held.push(pfn); pass.succeeded++; }
    done++;
    pass.attempted = done;
    return pg.costs.pageAllocBuddy;
  };
  const after = (r: BurstResult) => {
    cpu = r.cpu;
    pass.stall_ns += r.sysNs;
    pass.run_ns += r.latencyNs - r.sysNs;
    if (done < attempts) { simAfter(guest.sim, delayNs, attempt); return; }
    explain.blocks = new Array<number>(MIGRATE_TYPES).fill(0);
    explain.mixed_blocks = new Array<number>(MIGRATE_TYPES).fill(0);
    for (const z of pg.zones) {
      if (!z.presentPages) continue;
      mixedBlockCounts(pg, z).forEach((n, i) => { explain.mixed_blocks[i]! += n; });
      for (let b = z.zoneStartPfn; b < z.zoneStartPfn + z.spannedPages; b += PAGEBLOCK_NR_PAGES) explain.blocks[getPageblockMigratetype(pg.map, b)]!++;
    }
    explain.balloon_pages_by_block = balloonPagesByBlockType(pg);
    for (const b of held) freePages(pg, b, p.order);
    pass.success_pct = attempts ? Math.round((pass.succeeded * 10000) / attempts) / 100 : 0;
    pass.end_ns = guest.sim.now;
    then();
  };
  const attempt = () => { schedWakeup(guest.sched, cpu, -1, tryAlloc, after); };
  attempt();
}

/** killall make cc1; rm -rf the trees; dd a RAM-sized file and read it back; sync; drop caches; min_free_kbytes=1024. */
function prepareRested(s: StressHighalloc, then: () => void): void {
  s.phase = 'rested-prep';
  const { guest } = s;
  const pg = guest.pgdat;
  for (const b of s.builds) {
    stopKernelBuild(b);
    for (let pid = b.params.firstPid + 1; pid < b.params.firstPid + PID_RANGE; pid++) {
      const cc = guest.procs.get(pid);
      if (cc) exitProcess(pg, guest.procs, cc);
    }
    truncateInodePages(pg, b.tree);
    exitProcess(pg, guest.procs, b.tree);
  }
  // dd if=/dev/zero of=file bs=1M count=MemTotal, then read it back, at ~512 MiB/s
  const dd = forkProcess(guest.pgdat, 900, guest.config.seed);
  const total = totalramPages(pg);
  const chunk = (512 * MiB) / PAGE_SIZE / 10;
  let left = 2 * total;
  const step = () => {
    const n = Math.min(chunk, left);
    readFilePages(pg, dd, n, left > total);
    left -= n;
    if (left > 0) { simAfter(guest.sim, 100_000_000, step); return; }
    truncateInodePages(pg, dd);
    exitProcess(pg, guest.procs, dd);
    syncPagecache(pg);
    dropCachesSysctlHandler(pg, 3);
    pg.sysctl.minFreeKbytes = 1024;
    setupPerZoneWmarks(pg);
    simAfter(guest.sim, 1e9, then);
  };
  step();
}

/** The result document's `highalloc`. */
export function highallocResult(s: StressHighalloc): { passes: Array<Pick<HighallocPass, 'name' | 'requested' | 'succeeded' | 'success_pct' | 'explain'> & { stall_ms: number }> } {
  return { passes: s.passes.map((p) => ({ name: p.name, requested: p.requested, succeeded: p.succeeded, success_pct: p.success_pct, stall_ms: Math.round(p.stall_ns / 1e6), explain: p.explain })) };
}

/** Where the test is, for progress lines: the phase, and in a pass how far it got ("Pass 1 412/1501"). */
export function highallocPhase(s: StressHighalloc): string {
  const cur = s.passes.at(-1);
  if ((s.phase === 'pass1' || s.phase === 'pass2' || s.phase === 'rested') && cur) return `stress-highalloc ${cur.name} ${cur.attempted}/${cur.requested}`;
  return `stress-highalloc ${s.phase === 'load' ? 'warm-up' : s.phase}`;
}
