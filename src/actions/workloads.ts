/**
 * Workloads started by a timeline entry and running on the clock from then on:
 * kernel builds (make -jN), mmtests' stress-highalloc, a balloon moved on a schedule,
 * and an idle guest's daemons (src/workloads has what each models).
 */
import { defineAction, type EventBase } from './action.js';
import { bool, int, num, oneOf, size, time } from './fields.js';
import { rngFork } from '../sim/rng.js';
import { formatSize, formatTime } from '../scenario/units.js';
import { type KernelBuildSummary, startKernelBuild, kernelBuildSummary } from '../workloads/kernel_build.js';
import { startStressHighalloc, highallocResult } from '../workloads/stress_highalloc.js';
import { startBalloonCycle } from '../workloads/balloon_cycle.js';
import { startIdle } from '../workloads/idle.js';
import { needBalloon } from './balloon.js';
import { ActionError } from './action.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** A kernel build finished. */
export type KernelBuildDoneEvent = EventBase & { kind: 'kernel_build_done'; label: string } & KernelBuildSummary;
/** stress-highalloc finished its three passes. */
export type StressHighallocDoneEvent = EventBase & { kind: 'stress_highalloc_done' } & ReturnType<typeof highallocResult>;

/** min <= max for a pair of fields (fmt writes a value as the scenario would). */
function ordered<A extends Record<string, unknown>>(a: A, min: keyof A & string, max: keyof A & string, fmt: (v: number) => string): { field: string; message: string } | null {
  const lo = a[min] as number, hi = a[max] as number;
  return lo > hi ? { field: min, message: `${fmt(lo)} is above ${max} (${fmt(hi)}): the range must run from min to max` } : null;
}

export const kernelBuild = defineAction({
  name: 'kernel_build',
  doc: 'make -jN of a Linux tree: compilers with growing heaps, page cache read and written, objects written back',
  fields: {
    jobs: int('make -jN', { min: 1, max: 256, default: 4 }),
    units: int('Compilation units (2693: the C compiles of a 6.1 x86_64_defconfig build, docs/workloads.md)', { min: 1, max: 1_000_000, default: 2693 }),
    compiler: oneOf('gcc12: each unit replays a GCC 12 compile measured on real 6.1 (cc1\'s traced mmaps, CPU time, object; docs/workloads.md); uniform: heap and CPU drawn from cc_heap_*/cc_cpu_*', ['gcc12', 'uniform'], { default: 'gcc12' }),
    source: size('Source tree read through the page cache', { default: GiB }),
    objects: size('Object output written', { default: GiB }),
    cc_heap_min: size('cc1\'s heap per unit, smallest', { default: 16 * MiB }),
    cc_heap_max: size('cc1\'s heap per unit, largest', { default: 96 * MiB }),
    cc_cpu_min: time('cc1\'s CPU time per unit, shortest', { default: 200_000_000 }),
    cc_cpu_max: time('cc1\'s CPU time per unit, longest', { default: 1_400_000_000 }),
    rewrite: num('Share of its heap cc1 writes again after faulting it', { min: 0, max: 100, default: 0.5 }),
    untar: bool('Unpack the tree first (dirty page cache of the source\'s size)', { default: false }),
  },
  refine: (a) => ordered(a, 'cc_heap_min', 'cc_heap_max', formatSize) ?? ordered(a, 'cc_cpu_min', 'cc_cpu_max', formatTime),
  model: (ctx, a) => {
    const guest = ctx.vm.guest;
    const b = startKernelBuild(guest, rngFork(ctx.rng), {
      jobs: a.jobs, units: a.units, sourceBytes: a.source, objectBytes: a.objects, ccHeapMinBytes: a.cc_heap_min, ccHeapMaxBytes: a.cc_heap_max,
      ccCpuMinNs: a.cc_cpu_min, ccCpuMaxNs: a.cc_cpu_max, rewrite: a.rewrite, untar: a.untar, firstPid: 20000 + ctx.builds.length * 4000, compiler: a.compiler,
    });
    const label = a.label ?? `kernel_build@${guest.sim.now}`;
    ctx.builds.push({ label, build: b });
    b.onDone = (done) => {
      const ev: KernelBuildDoneEvent = { t_ns: guest.sim.now, kind: 'kernel_build_done', label, ...kernelBuildSummary(done) };
      ctx.emit(ev);
    };
    return { jobs: a.jobs, units: a.units };
  },
});

export const stressHighalloc = defineAction({
  name: 'stress_highalloc',
  doc: 'mmtests\' stress-highalloc: kernel builds as load, then Pass 1, Pass 2 and "while Rested" of order-9 allocations',
  fields: {
    percent: num('Share of MemTotal requested per pass (HIGHALLOC_PERCENTAGE)', { min: 1, max: 100, default: 95 }),
    mb_per_sec: num('Request rate (HIGHALLOC_ALLOC_RATE, MB/s)', { min: 0.001, max: 1e6, default: 16 }),
    warmup: time('Load before Pass 1', { default: 300e9 }),
    cooldown: time('Wait after Pass 2 before the load stops', { default: 180e9 }),
    builds: int('Parallel builds; default MemTotal/400MB + 1 as mmtests', { min: 0, max: 64, optional: true }),
    build_units: int('Compilation units per build', { min: 1, default: 100000 }),
    build_source: size('Each build\'s unpacked tree', { default: 430 * MiB }),
    build_objects: size('Each build\'s object output', { default: 400 * MiB }),
    cc_heap_min: size('cc1\'s heap per unit, smallest', { default: 16 * MiB }),
    cc_heap_max: size('cc1\'s heap per unit, largest', { default: 96 * MiB }),
    compiler: oneOf('gcc12 (measured, docs/workloads.md) or uniform (cc_heap_* and the uniform CPU range)', ['gcc12', 'uniform'], { default: 'gcc12' }),
  },
  refine: (a) => ordered(a, 'cc_heap_min', 'cc_heap_max', formatSize),
  model: (ctx, a) => {
    if (ctx.highalloc) throw new ActionError('only one stress_highalloc run per scenario');
    const guest = ctx.vm.guest;
    const h = startStressHighalloc(guest, rngFork(ctx.rng), {
      percent: a.percent, mbPerSec: a.mb_per_sec, warmupNs: a.warmup, cooldownNs: a.cooldown, builds: a.builds ?? null,
      build: { units: a.build_units, sourceBytes: a.build_source, objectBytes: a.build_objects, ccHeapMinBytes: a.cc_heap_min, ccHeapMaxBytes: a.cc_heap_max, compiler: a.compiler },
    });
    ctx.highalloc = h;
    h.onDone = (done) => {
      const ev: StressHighallocDoneEvent = { t_ns: guest.sim.now, kind: 'stress_highalloc_done', ...highallocResult(done) };
      ctx.emit(ev);
    };
    return { builds: h.builds.length };
  },
});

export const balloonCycle = defineAction({
  name: 'balloon_cycle',
  doc: 'The host moves the balloon target one `step` every `period`, up to `size` of balloon and back down, until `until`',
  fields: {
    size: size('Largest balloon', { min: 4096 }),
    step: size('Balloon change per period (at least a page)', { min: 4096 }),
    period: time('Time between steps', { min: 1, default: 60e9 }),
    until: time('When the cycling stops (default: the end of the run)', { optional: true }),
  },
  refine: (a) => (a.step > a.size ? { field: 'step', message: `${formatSize(a.step)} is above size (${formatSize(a.size)}): one step cannot be larger than the whole balloon` } : null),
  model: (ctx, a) => {
    const dev = needBalloon(ctx);
    if (a.size >= dev.ramSize) throw new ActionError(`size ${formatSize(a.size)} is not below the guest's RAM (${formatSize(dev.ramSize)}): the balloon cannot take all of it`);
    const steps = startBalloonCycle(dev, ctx.vm.sim, a.size, a.step, a.period, a.until ?? Infinity);
    return { size: a.size, step: a.step, period_ns: a.period, steps_per_cycle: steps };
  },
});

export const idle = defineAction({
  name: 'idle',
  doc: 'Light daemon activity: every second a /proc walk\'s dentries and inodes and a helper\'s anonymous memory come and go, and the journal grows',
  fields: { until: time('When the activity stops (default: the end of the run)', { optional: true }) },
  model: (ctx, a) => {
    startIdle(ctx.vm.guest, rngFork(ctx.rng), a.until ?? Infinity);
    return {};
  },
});
