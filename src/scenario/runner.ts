/**
 * The scenario runner: boots the guest, schedules the timeline's actions on the
 * simulation clock, runs to the end, and builds the result document (CLI.md).
 *
 * Deterministic: the only sources of variation are the scenario and its seed. Wall
 * time is measured only through the clock the caller passes in (the core has no
 * access to a real clock), and is left out of the document when no clock is given.
 */
import { simAt, simAfter, simRunUntil } from '../sim/clock.js';
import { type Guest } from '../guest/guest.js';
import { type SchedSummary, schedSummary } from '../guest/sched.js';
import { type Vm, type VmConfig, createVm, assertVm } from '../machine/machine.js';
import { type BalloonDevice, type BalloonDeviceOptions, FREE_PAGE_HINT_STATUS_NAMES } from '../host/virtio_balloon.js';
import type { VirtioBalloon } from '../guest/drivers/virtio_balloon.js';
import { ramRssBytes } from '../host/ram.js';
import { DEFAULT_BOOT } from '../guest/mm/boot.js';
import { type EraActivity, kernelProfile } from '../guest/mm/kernel_era.js';
import { vmstatObject, globalZonePageState } from '../guest/mm/vmstat.js';
import { VmEvent, ZoneStat } from '../guest/mm/vmstat_items.js';
import { freeBlocksPerOrder, pageblockCounts } from '../report/proc.js';
import { type Scenario, ScenarioError, validateScenarioFile, type ScenarioFile, parseYamlText } from './schema.js';
import { formatTime } from './units.js';
import { VERSION } from '../version.js';
import type { CostOverrides } from '../sim/cost.js';
import { type KernelBuildSummary, kernelBuildSummary } from '../workloads/kernel_build.js';
import { highallocResult, highallocPhase } from '../workloads/stress_highalloc.js';
import { BALLOON_FEATURE_NAMES } from '../virtio/virtio_balloon.js';
import { hasFeature } from '../virtio/transport.js';
import { ActionError, actionSides } from '../actions/action.js';
import { type ResultEvent, actionDef } from '../actions/index.js';
import { migrationResult } from '../actions/migration.js';
import { startTimeline, entryError, HOLD_POLL_NS } from './timeline.js';
import { type ResultSeries, createSampler, samplerTake, samplerSeries, samplerWatchMigration, defaultSampleInterval } from './sampler.js';
import { type MemoryMapRecord, MEMORY_MAP_LEGEND, memoryMapRecord } from '../report/memory_map.js';
import { type FreePageHintSummary, freePageHintSummary } from '../report/free_page_hint.js';

export type { ResultEvent } from '../actions/index.js';

/** The result document of `balloonlab run --json` (CLI.md). */
export type ResultDocument = {
  balloonlab: string;
  scenario: string;
  seed: number;
  guest: { memory_bytes: number; vcpus: number };
  /** The scenario's `costs:` overrides (ns per unit), when it has any; the run used the defaults otherwise. */
  costs?: CostOverrides;
  duration_ns: number;
  wall_ms: number;
  vmstat: Record<string, number>;
  /**
   * The guest's kernel (guest.kernel) and how often its era-specific mechanisms acted
   * (kernel_era.ts EraActivity); oom_kills also for kernels whose /proc/vmstat has no
   * oom_kill (it arrived in 4.13).
   */
  kernel: { version: string; activity: EraActivity; oom_kills: number; compact_deferred: number };
  balloon: {
    target_pages: number; actual_pages: number; inflated: number; deflated: number; migrated: number;
    /** Features the driver and device agreed on (none without a balloon device). */
    features: string[];
    /** [t_ns, actual pages] sampled over the run. */
    actual_series: Array<[number, number]>;
    /** What the driver did (rounds, out-of-puff back-offs, OOM deflates, hint rounds ...) and the device saw. */
    driver: Record<string, unknown> | null;
    device: Record<string, unknown> | null;
    /** Free page hinting's figures, when the scenario names its design (free_page_hint: upstream | v33; report/free_page_hint.ts). */
    free_page_hint?: FreePageHintSummary;
    /** With several balloon devices (balloon.devices): each one's target, actual, driver and device figures. */
    devices?: Array<{ id: string; target_pages: number; actual_pages: number; driver: Record<string, unknown>; device: Record<string, unknown> }>;
  };
  /** The last migration, when the scenario migrated (CLI.md's fields). */
  migration?: ReturnType<typeof migrationResult>;
  /** stress-highalloc's passes, when the scenario ran it. */
  highalloc?: ReturnType<typeof highallocResult>;
  /** Workload figures: kernel builds (user, system and elapsed time, pages). */
  workloads?: { kernel_build: Array<{ label: string } & KernelBuildSummary>; user_s: number; system_s: number };
  /** The host's backing of guest RAM; `accel: 'tcg'` when the scenario ran under TCG (absent under KVM, the default). */
  host: { rss_bytes: number; rss_series: Array<[number, number]>; first_touches: number; refaults: number; discarded_pages: number; accel?: 'tcg' };
  /** The vCPUs: user, system and idle time per vCPU, the run-queue wait, kernel threads' time (src/guest/sched.ts). */
  cpu: SchedSummary;
  /** The allocator at the end of the run (what a snapshot would record then). */
  final: { nr_free_pages: number; free_blocks: number[]; pageblocks: Record<string, number> };
  events: ResultEvent[];
  /** Time series sampled every `sample.interval` (src/scenario/sampler.ts; docs/pictures.md). */
  series: ResultSeries;
  /** The memory map (one byte per pageblock, src/report/memory_map.ts) at each snapshot and at the end. */
  memory_maps: { legend: typeof MEMORY_MAP_LEGEND; maps: MemoryMapRecord[] };
};

export type RunOptions = {
  /** Overrides the scenario's seed. */
  seed?: number;
  /** Run the invariant checker after boot and after every action. */
  check?: boolean;
  /** Stop at this virtual time (ns) instead of the scenario's duration (proc --at). */
  until?: number;
  /** Called as virtual time advances (at every entry and every sample, ~500 a run): now, end, what is running. */
  onProgress?: (now: number, end: number, phase: string) => void;
  /** A wall clock in milliseconds (performance.now); without it wall_ms is 0. */
  wallClock?: () => number;
  /** The scenario's file, for error messages (`file: timeline[3] (...): ...`). */
  source?: string;
  /** Keep the balloon device's trace (vm.host.balloon.trace) for a differential report. */
  trace?: boolean;
  /** Record entries the model cannot run (real-guest actions) as `skipped` events instead of refusing the scenario. */
  skipUnrunnable?: boolean;
  /** Called after each entry's event is recorded, with the machine. */
  onEntry?: (i: number, ev: ResultEvent, vm: Vm) => void;
  /** Called once the machine has booted, before the timeline. */
  onBoot?: (vm: Vm) => void;
};

export type RunResult = { doc: ResultDocument; guest: Guest; vm: Vm };

/** Parses YAML scenario text; `where` names the file in messages. */
export function loadScenarioText(text: string, where: string): ScenarioFile {
  return validateScenarioFile(parseYamlText(text, where), where);
}

/** The virtual time a scenario ends at: its duration, or just past its last action. */
export function scenarioEnd(s: Scenario): number {
  if (s.duration !== undefined) return s.duration;
  let last = 0;
  for (const a of s.timeline) last = Math.max(last, a.at);
  return last;
}

/** The machine a scenario describes: its guest, its balloon device and driver, its host options. */
export function scenarioVmConfig(s: Scenario, seed: number): VmConfig {
  const b = s.balloon;
  const k = kernelProfile(s.guest.kernel);
  return {
    guest: {
      memoryBytes: s.guest.memory,
      vcpus: s.guest.vcpus,
      kernel: s.guest.kernel,
      seed,
      swapBytes: s.guest.swap,
      boot: {
        ...DEFAULT_BOOT,
        kaslr: s.guest.kaslr,
        kernelImageBytes: s.guest.kernel_image ?? DEFAULT_BOOT.kernelImageBytes,
        minFreeKbytes: s.guest.min_free_kbytes === 'auto' ? null : s.guest.min_free_kbytes,
        thp: s.guest.thp,
        thpDefrag: s.guest.thp_defrag ?? k.thpDefragDefault,
        initOnAlloc: s.guest.init_on_alloc ?? k.initOnAlloc,
        initOnFree: s.guest.init_on_free,
        pagePoison: s.guest.page_poison,
      },
    },
    balloon: b === false ? null : {
      device: balloonDeviceOptions(b, b.devices?.[0]),
      driver: { balloonCompaction: b.compaction, statsTags: b.stats_tags, oomPages: b.oom_pages, pageType: b.page_type ?? k.balloon.pageType, hintDesign: b.free_page_hint === 'v33' ? 'v33' : 'upstream', hintBuffer: b.free_page_hint_buffer ?? 'fixed' },
      ...(b.devices !== undefined ? { id: b.devices[0]!.id, more: b.devices.slice(1).map((d) => ({ id: d.id, device: balloonDeviceOptions(b, d, false) })) } : {}),
    },
    memPrealloc: s.host.mem_prealloc,
    accel: s.host.accel,
    ...(s.costs !== undefined ? { costs: s.costs } : {}),
  };
}

/**
 * The scenario's `balloon:` in the device's terms (QEMU's properties, and the other
 * VMMs' behaviours): the balloon-level properties with a `devices` entry's on top;
 * free page hinting and reporting are the first device's unless the entry sets them.
 */
export function balloonDeviceOptions(b: Exclude<Scenario['balloon'], false>, d: BalloonDeviceEntry = {}, first = true): Partial<BalloonDeviceOptions> {
  return {
    deflateOnOom: d.deflate_on_oom ?? b.deflate_on_oom, freePageHint: first && b.free_page_hint !== false, freePageHintDesign: b.free_page_hint === 'v33' ? 'v33' : 'upstream',
    freePageReporting: first && b.free_page_reporting,
    pagePoison: d.page_poison ?? b.page_poison, mustTellHost: d.must_tell_host ?? b.must_tell_host, statsVq: d.stats_vq ?? b.stats_vq,
    statsPollingIntervalNs: d.stats_polling_interval ?? b.stats_polling_interval, hintAction: d.hint_action ?? b.hint_action, hintAckOnStop: d.hint_ack_on_stop ?? b.hint_ack_on_stop,
    actualSource: d.actual ?? b.actual, inhibited: d.inhibited ?? b.inhibited,
  };
}

/** One entry of `balloon.devices` (its properties; the id aside). */
type BalloonDeviceEntry = Partial<Omit<NonNullable<Exclude<Scenario['balloon'], false>['devices']>[number], 'id'>>;

/** The result document's figures of one balloon driver instance. */
function driverRecord(drv: VirtioBalloon) {
  return {
    ...drv.counters, num_pages: drv.numPages, hint_blocks_held: drv.numFreePageBlocks, stuck: drv.stuck,
    page_reporting: drv.prDevInfo ? { passes: drv.prDevInfo.passes, reports: drv.prDevInfo.reports, reported_blocks: drv.prDevInfo.reportedBlocks, reported_pages: drv.prDevInfo.reportedPages } : null,
  };
}

/** The result document's figures of one balloon device. */
function deviceRecord(dev: BalloonDevice) {
  return { ...dev.counters, inflated_pages: dev.inflatedPages, poison_val: dev.poisonVal, free_page_hint_status: FREE_PAGE_HINT_STATUS_NAMES[dev.freePageHintStatus], balloon_change_events: dev.balloonChanges.length, needs_reset: dev.t.error };
}

export { entryError };

/** Refuses, before anything runs, a timeline entry the side cannot run. */
export function checkSides(s: Scenario, side: 'model' | 'v86' | 'qemu', source?: string): void {
  if (side !== 'model' && s.balloon !== false && (s.balloon.devices?.length ?? 1) > 1) {
    throw new ScenarioError(`${source ? `${source}: ` : ''}balloon.devices: the ${side} real guest's machine has one balloon device (QEMU registers one balloon handler: "Only one balloon device is supported"); several devices are for the model`);
  }
  if (side !== 'model' && s.guest.kernel !== '6.1') {
    throw new ScenarioError(`${source ? `${source}: ` : ''}guest.kernel: the ${side} real guest runs its own kernel, not Linux ${s.guest.kernel}; run this scenario on the model (guest.kernel is for the model's eras)`);
  }
  s.timeline.forEach((a, i) => {
    const def = actionDef(a.action)!;
    const sides = actionSides(def);
    if (!sides.includes(side)) {
      throw entryError(source, i, a, new ActionError(`runs only on ${sides.join(', ')}, not on the ${side === 'model' ? 'model guest' : `${side} real guest`} (balloonlab actions lists every action's sides)`));
    }
    const why = side !== 'model' ? def.real?.refuse?.(a as never, side) ?? null : null;
    if (why !== null) throw entryError(source, i, a, new ActionError(`not on the ${side} real guest as written: ${why}`));
  });
}

/**
 * Runs a scenario to its end (or opts.until) and returns the result document and the
 * machine (a file from loadScenarioText runs its base scenario). Entries run at their
 * `at` in timeline order; an entry that waits (balloon with wait, ...) holds the ones
 * after it until the wait ends.
 */
export function runScenario(scenario: Scenario | ScenarioFile, opts: RunOptions = {}): RunResult {
  // a loaded file runs its base scenario (its variants are for compare)
  const s: Scenario = 'base' in scenario ? scenario.base : scenario;
  const t0 = opts.wallClock?.();
  const seed = opts.seed ?? s.seed;
  if (!opts.skipUnrunnable) checkSides(s, 'model', opts.source);
  const vm = createVm(scenarioVmConfig(s, seed));
  const guest = vm.guest;
  for (const b of vm.balloons) if (b.driver.probeError) throw new ScenarioError(`the balloon driver failed to probe${vm.balloons.length > 1 ? ` ${b.id}` : ''}: ${b.driver.probeError}`);
  if (opts.trace && vm.host.balloon) vm.host.balloon.trace = [];
  const maps: MemoryMapRecord[] = [];
  const sim = guest.sim;
  const check = opts.check ?? false;
  // the timeline: its entries on the guest's clock (timeline.ts)
  let end = Math.min(opts.until ?? Infinity, scenarioEnd(s));
  const tl = startTimeline(vm, s, {
    check, end, actionErrors: 'throw', ...(opts.source !== undefined ? { source: opts.source } : {}),
    afterEntry: (_i, a, _ev) => {
      if (a.action === 'snapshot') maps.push(memoryMapRecord(guest, sim.now, a.label ?? `snapshot ${formatTime(sim.now)}`));
      samplerWatchMigration(sampler);
      opts.onProgress?.(sim.now, end, phase());
    },
    ...(opts.onEntry ? { onEntryDone: (i: number, ev: ResultEvent) => opts.onEntry!(i, ev, vm) } : {}),
  });
  const { ctx, events } = tl;
  if (check) assertVm(vm, 'after boot');
  opts.onBoot?.(vm);
  // Series of the host's RSS and the balloon's size: about 500 samples over the run.
  const rssSeries: Array<[number, number]> = [];
  const actualSeries: Array<[number, number]> = [];
  const every = s.sample?.interval ?? defaultSampleInterval(end);
  const sampler = createSampler(vm, every);
  const sample = () => {
    samplerTake(sampler, sim.now);
    samplerWatchMigration(sampler);
    rssSeries.push([sim.now, ramRssBytes(vm.host.ram)]);
    if (vm.host.balloon) actualSeries.push([sim.now, vm.host.balloon.actual]);
  };
  const phase = (): string => {
    if (ctx.highalloc && ctx.highalloc.phase !== 'done') return highallocPhase(ctx.highalloc);
    const m = vm.host.migration;
    if (m && m.status !== 'completed' && m.status !== 'failed') return `migration ${m.status}, pass ${m.iterations + 1}, ${Math.round((m.dirtyPages * 4096) / 2 ** 20)} MiB left`;
    const b = ctx.builds.find((x) => x.build.endNs === null);
    if (b) return `${b.label} ${b.build.unitsDone}/${b.build.params.units} units`;
    return '';
  };
  const tick = () => {
    sample();
    opts.onProgress?.(sim.now, end, phase());
    if (sim.now + every <= end) simAfter(sim, every, tick);
  };
  simAt(sim, 0, tick);
  simRunUntil(sim, end);
  // A wait still holding entries: without a set duration the run goes on until the
  // timeline has drained (each wait ends by its timeout); with one, what is left is
  // recorded as not run.
  if (s.duration === undefined && opts.until === undefined) {
    while (tl.busy()) simRunUntil(sim, sim.now + HOLD_POLL_NS);
    end = sim.now;
  } else tl.skipHeld(end);
  if (rssSeries.length === 0 || rssSeries[rssSeries.length - 1]![0] !== end) sample();
  opts.onProgress?.(end, end, 'done');
  if (check) assertVm(vm, 'at the end');
  const ev = guest.pgdat.events;
  const dev = vm.host.balloon, drv = vm.driver;
  const doc: ResultDocument = {
    balloonlab: VERSION,
    scenario: s.name,
    seed,
    guest: { memory_bytes: s.guest.memory, vcpus: s.guest.vcpus },
    ...(s.costs !== undefined ? { costs: { ...s.costs } } : {}),
    duration_ns: end,
    wall_ms: t0 === undefined || !opts.wallClock ? 0 : Math.round((opts.wallClock() - t0) * 1000) / 1000,
    vmstat: vmstatObject(guest.pgdat),
    kernel: { version: guest.pgdat.kernel.version, activity: { ...guest.pgdat.era }, oom_kills: ev[VmEvent.oom_kill]!, compact_deferred: guest.pgdat.compactDeferredEvents },
    balloon: {
      target_pages: dev?.numPages ?? 0,
      actual_pages: dev?.actual ?? 0,
      inflated: ev[VmEvent.balloon_inflate]!,
      deflated: ev[VmEvent.balloon_deflate]!,
      migrated: ev[VmEvent.balloon_migrate]!,
      features: drv ? negotiatedFeatureNames(drv.features) : [],
      actual_series: actualSeries,
      driver: drv ? driverRecord(drv) : null,
      device: dev ? deviceRecord(dev) : null,
      // only when the design is named, so a `free_page_hint: true` document is what it always was
      ...(drv && s.balloon !== false && typeof s.balloon.free_page_hint === 'string' ? { free_page_hint: freePageHintSummary(drv, dev) } : {}),
      // several devices: each one's own figures (the ones above are the first's and the guest's)
      ...(vm.balloons.length > 1 ? { devices: vm.balloons.map((b) => ({ id: b.id, target_pages: b.device.numPages, actual_pages: b.device.actual, driver: driverRecord(b.driver), device: deviceRecord(b.device) })) } : {}),
    },
    host: {
      rss_bytes: ramRssBytes(vm.host.ram), rss_series: rssSeries, first_touches: vm.host.ram.firstTouches, refaults: vm.host.ram.refaults, discarded_pages: vm.host.ram.discards,
      // only when not the default, so a KVM run's document is what it always was
      ...(vm.host.accel === 'tcg' ? { accel: 'tcg' as const } : {}),
    },
    cpu: schedSummary(guest.sched),
    final: { nr_free_pages: globalZonePageState(guest.pgdat, ZoneStat.nr_free_pages), free_blocks: freeBlocksPerOrder(guest), pageblocks: pageblockCounts(guest) },
    events,
    series: samplerSeries(sampler),
    memory_maps: { legend: MEMORY_MAP_LEGEND, maps: [...maps, memoryMapRecord(guest, end, 'end')] },
  };
  if (vm.host.migration) doc.migration = migrationResult(vm.host.migration);
  if (ctx.highalloc) doc.highalloc = highallocResult(ctx.highalloc);
  const allBuilds = [...ctx.builds.map((b) => b.build), ...(ctx.highalloc?.builds ?? [])];
  if (allBuilds.length) {
    const user = allBuilds.reduce((x, b) => x + b.userNs, 0), sys = allBuilds.reduce((x, b) => x + b.sysNs, 0) + (ctx.highalloc?.passes.reduce((x, p) => x + p.stall_ns, 0) ?? 0);
    doc.workloads = {
      kernel_build: ctx.builds.map((b) => ({ label: b.label, ...kernelBuildSummary(b.build) })),
      user_s: Math.round(user / 1e6) / 1000, system_s: Math.round(sys / 1e6) / 1000,
    };
  }
  return { doc, guest, vm };
}

/** The balloon feature names a driver negotiated, in bit order. */
function negotiatedFeatureNames(features: bigint): string[] {
  const out: string[] = [];
  for (const [bit, name] of Object.entries(BALLOON_FEATURE_NAMES)) if (hasFeature(features, Number(bit))) out.push(name);
  return out;
}
