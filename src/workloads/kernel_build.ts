/**
 * `kernel-build`: a `make -jN` Linux kernel build, as the page allocator sees it.
 *
 * make keeps N compiler processes (cc1) running until every compilation unit is
 * built. Each cc1: reads its source and headers through the page cache (new source
 * pages are read from disk the first time: clean page cache), grows its heap as it
 * works (anonymous memory, faulted in and written), rewrites part of that heap as it
 * goes (what dirty logging sees), writes its object file (dirty page cache, written
 * back later by reclaim), and exits, freeing its heap. The page cache outlives the
 * compilers: it belongs to the build's tree (one long-lived process per build).
 * Optionally the build first unpacks its tree (`untar`: the whole source written as
 * dirty page cache), as mmtests' stress-highalloc does.
 *
 * Where the defaults come from (docs/workloads.md has the measurements; the rest are
 * estimates documented in docs/experiments.md):
 * - units 2693: the C compiles of a 6.1 x86_64_defconfig build (`make -n vmlinux
 *   modules`, measured).
 * - compiler gcc12: each unit is one of the eight units whose cc1 was traced in a real
 *   Linux 6.1 guest (its mmap/munmap/brk sequence, 30-200 MiB of anonymous memory), with
 *   the CPU time and object size measured for it on this machine (0.5-9 s; the
 *   measurement shared the machine's two cores, so these lean long).
 * The ranges below apply with compiler: uniform, the model's earlier guesses:
 * - cc1 CPU 0.2-1.4 s per unit: a defconfig build takes ~20 CPU-minutes on a current
 *   core, ~0.5 s per unit, with a long tail (drivers, big files).
 * - cc1 heap 16-96 MiB: GCC's peak RSS on kernel files is tens of MiB (headers parsed
 *   for every unit dominate).
 * - source 1 GiB: the unpacked tree; each unit reads a share of it the first time.
 * - objects 1 GiB: the build directory of a defconfig build (objects, .cmd, vmlinux).
 * - rewrite 0.5: cc1 revisits about half of its heap after first touching it
 *   (garbage collection and tree rewriting).
 * - files: the tree's source files average SOURCE_FILE_PAGES pages (a 6.x tree is about
 *   75 000 files in 1.1 GiB, 15 KiB each), the objects OBJECT_FILE_PAGES pages (1 GiB of
 *   them over 2400 units, an object file and its .cmd each: ~220 KiB a file); files
 *   are counted by bytes, not by units (readFilePages fills the last file first), so a
 *   build of many small units makes as many files as one of few big ones. Each file
 *   costs its dentry, inode, xarray nodes and, written, its buffer_heads (dcache.ts).
 * Time is CPU time on a vCPU: each compiler's slices run on the guest's vCPUs
 * (src/guest/sched.ts), so jobs beyond the vCPUs wait their turn, and a slice takes
 * longer by the stalls its allocations took (direct reclaim, direct compaction: system
 * time) and by the I/O it waited for (swap-ins, dirty throttling: it sleeps). Kernel
 * threads' work (kswapd, kcompactd ...) preempts the compilers on their vCPUs.
 */
import { simAfter } from '../sim/clock.js';
import { type BurstResult, schedBurst } from '../guest/sched.js';
import { type Rng, rngBelow, rngFloat } from '../sim/rng.js';
import type { Guest } from '../guest/guest.js';
import { PageWrite } from '../guest/mm/mmzone.js';
import { forkProcess, faultAnonPages, faultRange, followPage, exitProcess, readFilePages, mmapAnon, mmapAt, munmapRange, madviseRange, brkGrow, brkShrink, findVma, PTE_SWAP, type Process } from '../guest/mm/process.js';
import { GCC_OP, GCC_KERNEL_UNITS, GCC_KERNEL_UNITS_GUEST_6_1 } from './gcc_profile.js';
import { PAGE_SIZE } from '../guest/mm/memmap.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** A job works in slices of this much CPU time. */
const SLICE_NS = 50_000_000;
/** Pids a build uses: its tree, then its compilers. */
export const PID_RANGE = 4000;
/** Pages of a source file (the tree's mean: 15 KiB). */
export const SOURCE_FILE_PAGES = 4;
/** Pages of an object file (the build directory's mean, ~220 KiB). */
export const OBJECT_FILE_PAGES = 55;

export type KernelBuildParams = {
  /** make -jN */
  jobs: number;
  /** Compilation units to build. */
  units: number;
  /** Source tree read through the page cache, and object output written. */
  sourceBytes: number;
  objectBytes: number;
  /** cc1's CPU time per unit, uniform in [min, max]. */
  ccCpuMinNs: number;
  ccCpuMaxNs: number;
  /** cc1's heap per unit, uniform in [min, max]. */
  ccHeapMinBytes: number;
  ccHeapMaxBytes: number;
  /** Share of its heap cc1 writes again after faulting it. */
  rewrite: number;
  /** Unpack the tree first (write sourceBytes of dirty page cache). */
  untar: boolean;
  /** Pid of the build's tree; compilers take the pids after it. */
  firstPid: number;
  /**
   * How a compiler uses memory and CPU: `gcc12` replays a unit measured on this machine
   * (gcc_profile.ts: GCC 12 on Linux 6.1 sources; its CPU time, its object size, and
   * cc1's anonymous mmap/munmap/brk sequence traced in a real 6.1 guest, at the
   * addresses that kernel chose relative to the first mapping); `uniform` draws a heap
   * size and a CPU time from the ranges above and grows the brk heap.
   */
  compiler: 'gcc12' | 'uniform';
};

export const KERNEL_BUILD_DEFAULTS: Readonly<KernelBuildParams> = {
  jobs: 4, units: 2693, sourceBytes: 1 * GiB, objectBytes: 1 * GiB, ccCpuMinNs: 200e6, ccCpuMaxNs: 1400e6,
  ccHeapMinBytes: 16 * MiB, ccHeapMaxBytes: 96 * MiB, rewrite: 0.5, untar: false, firstPid: 1000, compiler: 'gcc12',
};

/** The build's progress and what it cost. */
export type KernelBuild = {
  guest: Guest;
  params: KernelBuildParams;
  rng: Rng;
  tree: Process;
  startNs: number;
  /** When the last unit finished, or null while it runs. */
  endNs: number | null;
  unitsStarted: number;
  unitsDone: number;
  running: number;
  /** CPU time of the compilers (user), time stalled in the allocator (system), pages. */
  userNs: number;
  sysNs: number;
  heapPagesFaulted: number;
  pagesRewritten: number;
  sourcePagesRead: number;
  objectPagesWritten: number;
  /** Stop starting new units (killall make, or a unit failed). */
  stopped: boolean;
  /** A compiler was killed: make stopped there (no -k). */
  failed: boolean;
  nextPid: number;
  /** Called when the last unit finishes. */
  onDone: ((b: KernelBuild) => void) | null;
};

/** Starts a build now. */
export function startKernelBuild(guest: Guest, rng: Rng, params: Partial<KernelBuildParams> = {}): KernelBuild {
  const p = { ...KERNEL_BUILD_DEFAULTS, ...params };
  if (p.jobs < 1 || p.units < 1) throw new RangeError('kernel-build needs at least one job and one unit');
  const tree = forkProcess(guest.pgdat, p.firstPid, guest.config.seed);
  const b: KernelBuild = {
    guest, params: p, rng, tree, startNs: guest.sim.now, endNs: null, unitsStarted: 0, unitsDone: 0, running: 0,
    userNs: 0, sysNs: 0, heapPagesFaulted: 0, pagesRewritten: 0, sourcePagesRead: 0, objectPagesWritten: 0, stopped: false, failed: false,
    nextPid: p.firstPid + 1, onDone: null,
  };
  const begin = () => { for (let i = 0; i < p.jobs; i++) startUnit(b); };
  if (p.untar) {
    // tar xf: the tree is written (dirty page cache) at disk-ish speed, 256 MiB per second
    const pages = Math.ceil(p.sourceBytes / PAGE_SIZE);
    const chunk = (256 * MiB) / PAGE_SIZE / 10;
    let left = pages;
    const step = () => {
      const n = Math.min(chunk, left);
      b.objectPagesWritten += readFilePages(guest.pgdat, tree, n, true, SOURCE_FILE_PAGES);
      left -= n;
      if (left > 0) simAfter(guest.sim, 100_000_000, step);
      else begin();
    };
    step();
  } else begin();
  return b;
}

/** Stops the build: no new units; running ones finish (killall make leaves cc1 to die at its next step). */
export function stopKernelBuild(b: KernelBuild): void {
  b.stopped = true;
}

function between(rng: Rng, lo: number, hi: number): number {
  return lo + rngFloat(rng) * (hi - lo);
}

function startUnit(b: KernelBuild): void {
  const { guest, params: p } = b;
  if (b.stopped || b.unitsStarted >= p.units) return;
  b.unitsStarted++;
  b.running++;
  // compilers take pids firstPid+1 .. firstPid+PID_RANGE-1 in turn (finished ones free theirs)
  const pid = b.nextPid;
  b.nextPid = b.nextPid >= p.firstPid + PID_RANGE - 1 ? p.firstPid + 1 : b.nextPid + 1;
  const cc = forkProcess(guest.pgdat, pid, guest.config.seed);
  // gcc12: one of the units traced in a real 6.1 guest, with its host-measured CPU time and object
  const traced = p.compiler === 'gcc12' ? GCC_KERNEL_UNITS_GUEST_6_1[rngBelow(b.rng, GCC_KERNEL_UNITS_GUEST_6_1.length)]! : null;
  const host = traced === null ? undefined : GCC_KERNEL_UNITS.find((u) => u.unit === traced.unit);
  const cpu = host !== undefined ? (host.userS + host.sysS) * 1e9 : between(b.rng, p.ccCpuMinNs, p.ccCpuMaxNs);
  const heap = traced !== null ? 0 : Math.ceil(between(b.rng, p.ccHeapMinBytes, p.ccHeapMaxBytes) / PAGE_SIZE);
  const slices = Math.max(1, Math.ceil(cpu / SLICE_NS));
  const replay = traced === null ? null : { ops: traced.ops, next: 0, base: -1 };
  const pg = guest.pgdat;
  // the unit's share of the tree is read from disk the first time
  const srcPages = Math.ceil(p.sourceBytes / PAGE_SIZE / p.units);
  let slice = 0, faulted = 0;
  // Each slice is a burst on a vCPU (src/guest/sched.ts): the compilers share the vCPUs,
  // and a slice's stalls (direct reclaim, compaction) keep its vCPU busy as system time.
  const work = (): number => {
    if (!guest.procs.has(pid)) return 0; // killed (OOM)
    if (slice === 0) b.sourcePagesRead += readFilePages(pg, b.tree, srcPages, false, SOURCE_FILE_PAGES);
    if (replay !== null) {
      // this slice's share of the traced operations, in order
      const upto = Math.round((replay.ops.length / 3) * (slice + 1) / slices) * 3;
      const got = replayOps(b, cc, replay, upto);
      faulted += got;
      b.heapPagesFaulted += got;
      rewrite(b, cc, Math.round((cc.rssAnon * p.rewrite) / slices));
    } else {
      const want = Math.round((heap * (slice + 1)) / slices) - faulted;
      if (want > 0) {
        const got = faultAnonPages(pg, cc, want);
        faulted += got;
        b.heapPagesFaulted += got;
      }
      rewrite(b, cc, Math.round((heap * p.rewrite) / slices));
    }
    slice++;
    if (slice >= slices) {
      // write the object, exit
      const objectPages = host !== undefined ? Math.ceil(host.objectBytes / PAGE_SIZE) : Math.ceil(p.objectBytes / PAGE_SIZE / p.units);
      b.objectPagesWritten += readFilePages(pg, b.tree, objectPages, true, OBJECT_FILE_PAGES);
    }
    // the last slice is what is left of the unit's CPU time
    return slice < slices ? SLICE_NS : cpu - (slices - 1) * SLICE_NS;
  };
  const after = (r: BurstResult) => {
    cc.cpu = r.cpu;
    b.sysNs += r.sysNs;
    if (!guest.procs.has(pid)) { finishUnit(b, cc, true); return; }
    if (slice < slices) { schedBurst(guest.sched, cc.cpu, work, after); return; }
    b.userNs += cpu;
    finishUnit(b, cc, false);
  };
  // a fork's first burst: the idle or least loaded vCPU (selectTaskRq)
  schedBurst(guest.sched, cc.cpu, work, after);
}

/**
 * Replays a traced unit's anonymous memory operations up to index `upto` (exclusive,
 * a multiple of 3): each mmap at the address the real kernel chose relative to the
 * first (the first placed top-down by the model's own layout, so its alignment is the
 * model's ASLR draw), touched in ascending order at once (GCC hands out a quire's
 * pages in ascending order and maps the next only when they are used up; glibc's
 * mmapped chunks are written by their users); munmap and MADV_DONTNEED of the traced
 * ranges; brk growth touched, brk shrinks unmapped. Returns the pages faulted.
 */
function replayOps(b: KernelBuild, cc: Process, r: { ops: readonly number[]; next: number; base: number }, upto: number): number {
  const pg = b.guest.pgdat;
  let faulted = 0;
  for (; r.next < upto && b.guest.procs.has(cc.pid); r.next += 3) {
    const op = r.ops[r.next]!, pages = r.ops[r.next + 1]!, offset = r.ops[r.next + 2]!;
    if (op === GCC_OP.mmap) {
      let m = r.base < 0 ? mmapAnon(pg, cc, pages, 'default') : mmapAt(pg, cc, r.base + offset, pages, 'default');
      if (m === null && r.base >= 0) m = mmapAnon(pg, cc, pages, 'default'); // the traced place is taken: anywhere
      if (m === null) continue;
      if (r.base < 0) r.base = m.start - offset;
      faulted += faultRange(pg, cc, m.vma, m.start, pages);
    } else if (op === GCC_OP.munmap && r.base >= 0) {
      munmapRange(pg, cc, r.base + offset, pages);
    } else if (op === GCC_OP.madviseDontneed && r.base >= 0) {
      madviseRange(pg, cc, r.base + offset, pages, 'dontneed');
    } else if (op === GCC_OP.brk) {
      if (pages > 0) { const h = brkGrow(cc, pages); faulted += faultRange(pg, cc, h, h.end - pages, pages); }
      else if (pages < 0) brkShrink(pg, cc, -pages);
    }
  }
  return faulted;
}

/** Running totals of the mappings' sizes for rewrite (reused; grown as needed). */
let rewriteEnds = new Float64Array(64);

/** cc1 writes `n` pages of its memory again (random addresses of its mappings, each page as likely as any other; a page swapped out meanwhile is faulted back in). */
function rewrite(b: KernelBuild, cc: Process, n: number): void {
  if (n <= 0) return;
  const pg = b.guest.pgdat;
  // the mappings' running totals once per call: a draw k falls in the first mapping
  // whose running total passes it (a binary search: a traced cc1 has hundreds)
  const vmas = cc.mm.vmas, nv = vmas.length;
  if (rewriteEnds.length < nv) rewriteEnds = new Float64Array(Math.max(nv, rewriteEnds.length * 2));
  const ends = rewriteEnds;
  let total = 0;
  for (let i = 0; i < nv; i++) { const v = vmas[i]!; total += v.end - v.start; ends[i] = total; }
  if (total === 0) return;
  for (let i = 0; i < n; i++) {
    const k = rngBelow(b.rng, total);
    if (vmas.length !== nv) return; // exited meanwhile (killed by a fault's OOM)
    let lo = 0, hi = nv - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ends[mid]! > k) hi = mid; else lo = mid + 1;
    }
    const v = vmas[lo]!;
    const vpn = v.end - (ends[lo]! - k);
    let pfn = followPage(cc, vpn);
    if (pfn === PTE_SWAP) {
      const w = findVma(cc.mm, vpn);
      if (w === null || faultRange(pg, cc, w, vpn, 1) === 0) return;
      pfn = followPage(cc, vpn);
    }
    if (pfn < 0) continue;
    pg.hooks.pageWrite?.(pfn, 1, PageWrite.data);
    b.pagesRewritten++;
  }
}

function finishUnit(b: KernelBuild, cc: Process, killed: boolean): void {
  const { guest } = b;
  if (guest.procs.has(cc.pid)) exitProcess(guest.pgdat, guest.procs, cc);
  b.running--;
  if (!killed) b.unitsDone++;
  // a compiler killed (by the OOM killer) fails its target: make stops starting new
  // ones, as GNU make does without -k, and the build ends when the running ones finish
  if (killed && !b.stopped) { b.stopped = true; b.failed = true; }
  if (!b.stopped && b.unitsStarted < b.params.units) startUnit(b);
  else if (b.running === 0 && b.endNs === null) {
    b.endNs = guest.sim.now;
    b.onDone?.(b);
  }
}

/** A build's figures in the result document (workloads.kernel_build, kernel_build_done events). */
export type KernelBuildSummary = {
  jobs: number; units: number; units_done: number; failed: boolean; elapsed_s: number | null; user_s: number; system_s: number;
  heap_pages_faulted: number; pages_rewritten: number; source_pages_read: number; object_pages_written: number;
};

/** The build's figures for reports. */
export function kernelBuildSummary(b: KernelBuild): KernelBuildSummary {
  return {
    jobs: b.params.jobs, units: b.params.units, units_done: b.unitsDone, failed: b.failed,
    elapsed_s: b.endNs === null ? null : Math.round((b.endNs - b.startNs) / 1e6) / 1000,
    user_s: Math.round(b.userNs / 1e6) / 1000, system_s: Math.round(b.sysNs / 1e6) / 1000,
    heap_pages_faulted: b.heapPagesFaulted, pages_rewritten: b.pagesRewritten,
    source_pages_read: b.sourcePagesRead, object_pages_written: b.objectPagesWritten,
  };
}
