/**
 * The scenario runner: boots the guest, schedules the timeline's actions on the
 * simulation clock, runs to the end, and builds the result document (CLI.md).
 *
 * Deterministic: the only sources of variation are the scenario and its seed. Wall
 * time is measured only through the clock the caller passes in (the core has no
 * access to a real clock), and is left out of the document when no clock is given.
 */
import { simAt, simAfter, simRunUntil } from '../sim/clock.js';
import { type Rng, rngBelow, rngFork } from '../sim/rng.js';
import { type Guest } from '../guest/guest.js';
import { type Vm, createVm, assertVm } from '../machine/machine.js';
import { qmpExecute, BALLOON_QOM_PATH } from '../host/qmp.js';
import { virtioBalloonFreePageStart, virtioBalloonFreePageStop, virtioBalloonFreePageDone, FREE_PAGE_HINT_STATUS_NAMES } from '../host/virtio_balloon.js';
import { ramRssBytes } from '../host/ram.js';
import { type MigrationState, queryMigrate } from '../host/migration.js';
import { hostMigrate } from '../host/vm.js';
import { InvariantError } from '../guest/mm/check.js';
import { PageWrite } from '../guest/mm/mmzone.js';
import { DEFAULT_BOOT } from '../guest/mm/boot.js';
import { MAX_ORDER, MIGRATE_TYPES, MIGRATETYPE_NAMES, NO_PAGE, Owner, PAGE_SIZE, PAGEBLOCK_NR_PAGES, getPageblockMigratetype, pageOwner, pageMapping, pageOrder } from '../guest/mm/memmap.js';
import { allocPages, freePages, drainAllPages } from '../guest/mm/page_alloc.js';
import { getProcess, faultAnonPages, unmapAnonPages, exitProcess, readFilePages, processPages } from '../guest/mm/process.js';
import { compactMemory } from '../guest/mm/compaction.js';
import { vmstatObject, globalZonePageState } from '../guest/mm/vmstat.js';
import { ZoneStat, VmEvent } from '../guest/mm/vmstat_items.js';
import { type Scenario, type Action, type AllocPagesAction, type FreePagesAction, ScenarioError, validateScenarioFile, type ScenarioFile, parseYamlText } from './schema.js';
import { VERSION } from '../version.js';
import { type KernelBuild, startKernelBuild, kernelBuildSummary } from '../workloads/kernel_build.js';
import { type StressHighalloc, startStressHighalloc, highallocResult } from '../workloads/stress_highalloc.js';
import { startBalloonCycle } from '../workloads/balloon_cycle.js';
import { startIdle } from '../workloads/idle.js';
import { BALLOON_FEATURE_NAMES, VIRTIO_BALLOON_F_FREE_PAGE_HINT } from '../virtio/virtio_balloon.js';
import { hasFeature } from '../virtio/transport.js';

/** One timeline event in the result document. */
export type ResultEvent = { t_ns: number; kind: string; label?: string } & Record<string, unknown>;

/** The result document of `balloonlab run --json` (CLI.md). */
export type ResultDocument = {
  balloonlab: string;
  scenario: string;
  seed: number;
  guest: { memory_bytes: number; vcpus: number };
  duration_ns: number;
  wall_ms: number;
  vmstat: Record<string, number>;
  balloon: {
    target_pages: number; actual_pages: number; inflated: number; deflated: number; migrated: number;
    /** Features the driver and device agreed on (none without a balloon device). */
    features: string[];
    /** [t_ns, actual pages] sampled over the run. */
    actual_series: Array<[number, number]>;
    /** What the driver did (rounds, out-of-puff back-offs, OOM deflates, hint rounds ...) and the device saw. */
    driver: Record<string, unknown> | null;
    device: Record<string, unknown> | null;
  };
  /** The last migration, when the scenario migrated (CLI.md's fields). */
  migration?: Record<string, unknown>;
  /** stress-highalloc's passes, when the scenario ran it. */
  highalloc?: { passes: Array<{ name: string; requested: number; succeeded: number; success_pct: number; stall_ms: number }> };
  /** Workload figures: kernel builds (user, system and elapsed time, pages). */
  workloads?: { kernel_build: Array<Record<string, unknown>>; user_s: number; system_s: number };
  /** The host's backing of guest RAM. */
  host: { rss_bytes: number; rss_series: Array<[number, number]>; first_touches: number; refaults: number; discarded_pages: number };
  events: ResultEvent[];
};

export type RunOptions = {
  /** Overrides the scenario's seed. */
  seed?: number;
  /** Run the invariant checker after boot and after every action. */
  check?: boolean;
  /** Stop at this virtual time (ns) instead of the scenario's duration (proc --at). */
  until?: number;
  /** Called as virtual time advances: (now_ns, end_ns). */
  onProgress?: (now: number, end: number) => void;
  /** A wall clock in milliseconds (performance.now); without it wall_ms is 0. */
  wallClock?: () => number;
};

export type RunResult = { doc: ResultDocument; guest: Guest; vm: Vm };

/** Parses YAML scenario text; `where` names the file in messages. */
export function loadScenarioText(text: string, where: string): ScenarioFile {
  return validateScenarioFile(parseYamlText(text, where), where);
}

/** Free blocks of each order 0..10, summed over zones (buddyinfo summed). */
export function freeBlocksPerOrder(guest: Guest): number[] {
  const out = new Array<number>(MAX_ORDER).fill(0);
  for (const z of guest.pgdat.zones) for (let o = 0; o < MAX_ORDER; o++) out[o] = out[o]! + z.nrFree[o]!;
  return out;
}

/** Pageblocks of each migratetype over all zones, by the names pagetypeinfo uses. */
export function pageblockCounts(guest: Guest): Record<string, number> {
  const counts = new Array<number>(MIGRATE_TYPES).fill(0);
  const map = guest.pgdat.map;
  for (const z of guest.pgdat.zones) {
    const end = z.zoneStartPfn + z.spannedPages;
    for (let pfn = z.zoneStartPfn & ~(PAGEBLOCK_NR_PAGES - 1); pfn < end; pfn += PAGEBLOCK_NR_PAGES) {
      counts[getPageblockMigratetype(map, pfn)]!++;
    }
  }
  const out: Record<string, number> = {};
  MIGRATETYPE_NAMES.forEach((n, i) => { out[n] = counts[i]!; });
  return out;
}

const OWNER_BY_NAME: Readonly<Record<AllocPagesAction['owner'], Owner>> = {
  kernel: Owner.kernel,
  slab_unreclaimable: Owner.slabUnreclaimable,
  slab_reclaimable: Owner.slabReclaimable,
  kernel_stack: Owner.kernelStack,
  page_table: Owner.pageTable,
  anon: Owner.anon,
  file: Owner.file,
  shmem: Owner.shmem,
};

/** Blocks a scenario holds under a tag: (pfn, order) pairs. */
type Held = { pfns: number[]; orders: number[] };

type RunState = {
  vm: Vm; guest: Guest; rng: Rng; tags: Map<string, Held>; events: ResultEvent[]; check: boolean;
  /** Migration uses free page hints (balloon_free_page_hint). */
  useHints: boolean;
  builds: Array<{ label: string; build: KernelBuild }>;
  highalloc: StressHighalloc | null;
};

function setCpu(st: RunState, cpu: number): void {
  if (cpu >= st.guest.config.vcpus) throw new ScenarioError(`cpu ${cpu} does not exist (the guest has ${st.guest.config.vcpus} vcpus)`);
  st.guest.pgdat.tasks.cpu = cpu;
}

function doAllocPages(st: RunState, a: AllocPagesAction, ev: ResultEvent): void {
  setCpu(st, a.cpu);
  let held = st.tags.get(a.tag);
  if (!held) { held = { pfns: [], orders: [] }; st.tags.set(a.tag, held); }
  const owner = OWNER_BY_NAME[a.owner];
  let ok = 0;
  for (let i = 0; i < a.count; i++) {
    const pfn = allocPages(st.guest.pgdat, a.gfp, a.order, owner);
    if (pfn === NO_PAGE) continue;
    held.pfns.push(pfn);
    held.orders.push(a.order);
    ok++;
  }
  Object.assign(ev, { requested: a.count, order: a.order, succeeded: ok, failed: a.count - ok, success_pct: +(100 * ok / a.count).toFixed(2) });
}

function doFreePages(st: RunState, a: FreePagesAction, ev: ResultEvent): void {
  setCpu(st, a.cpu);
  const held = st.tags.get(a.tag);
  if (!held) throw new ScenarioError(`free_pages: no allocations are tagged "${a.tag}" at this time`);
  const n = held.pfns.length;
  const want = Math.round(n * a.fraction);
  const keep = new Uint8Array(n).fill(1);
  if (a.pick === 'random') {
    // partial Fisher-Yates over indices: the first `want` of a seeded shuffle
    const idx = Int32Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < want; i++) {
      const j = i + rngBelow(st.rng, n - i);
      const t = idx[i]!; idx[i] = idx[j]!; idx[j] = t;
      keep[idx[i]!] = 0;
    }
  } else if (a.pick === 'oldest') keep.fill(0, 0, want);
  else if (a.pick === 'newest') keep.fill(0, n - want, n);
  else for (let i = 0, k = 0; i < n && k < want; i += 2, k++) keep[i] = 0;
  let pages = 0, freed = 0;
  const pfns: number[] = [], orders: number[] = [];
  for (let i = 0; i < n; i++) {
    if (keep[i]) { pfns.push(held.pfns[i]!); orders.push(held.orders[i]!); continue; }
    freePages(st.guest.pgdat, held.pfns[i]!, held.orders[i]!);
    pages += 1 << held.orders[i]!;
    freed++;
  }
  held.pfns = pfns;
  held.orders = orders;
  Object.assign(ev, { freed, pages });
}

function snapshot(st: RunState, ev: ResultEvent): void {
  Object.assign(ev, {
    nr_free_pages: globalZonePageState(st.guest.pgdat, ZoneStat.nr_free_pages),
    free_blocks: freeBlocksPerOrder(st.guest),
    pageblocks: pageblockCounts(st.guest),
    host_rss_bytes: ramRssBytes(st.vm.host.ram),
  });
  const dev = st.vm.host.balloon;
  if (dev) Object.assign(ev, { balloon_target_pages: dev.numPages, balloon_actual_pages: dev.actual });
}

/** The event a finished migration adds, with the destination check under --check. */
function migrationCompleted(st: RunState, m: MigrationState): void {
  const bad = m.destinationCheck ?? null;
  st.events.push({ t_ns: m.endNs, kind: 'migration_completed', ...queryMigrate(m), destination_ok: bad === null });
  if (st.check && bad !== null) throw new InvariantError(`migration destination check: ${bad}`);
}

/** process_write: random pages of the process's memory written at `rate` bytes/s, in 10 ms ticks. */
function startProcessWrite(st: RunState, pid: number, rate: number, duration: number, ev: ResultEvent): void {
  const { pgdat, procs } = st.guest;
  if (!procs.has(pid)) throw new ScenarioError(`process_write: no process ${pid} at this time (start it with process_fault)`);
  const TICK = 10_000_000;
  const perTick = (rate / 4096) * (TICK / 1e9);
  const end = st.guest.sim.now + duration;
  let pages = processPages(pgdat, pid);
  let carry = 0, ticks = 0;
  const map = pgdat.map;
  const tick = () => {
    if (!procs.has(pid)) return;
    if (++ticks % 100 === 0) pages = processPages(pgdat, pid); // reclaim and compaction move pages
    carry += perTick;
    let n = Math.floor(carry);
    carry -= n;
    let written = 0;
    for (let tries = 0; n > 0 && pages.length > 0 && tries < 4 * n + 16; tries++) {
      let pfn = pages[rngBelow(st.rng, pages.length)]!;
      if (pageOwner(map, pfn) !== Owner.anon || pageMapping(map, pfn) !== pid) continue;
      if (pageOrder(map, pfn) > 0) pfn += rngBelow(st.rng, 1 << pageOrder(map, pfn));
      pgdat.hooks.pageWrite?.(pfn, 1, PageWrite.data);
      written++;
      n--;
    }
    if (st.guest.sim.now + TICK <= end) simAfter(st.guest.sim, TICK, tick);
  };
  simAfter(st.guest.sim, 0, tick);
  Object.assign(ev, { pid, rate_bytes_per_s: rate, duration_ns: duration, process_pages: pages.length });
}

/** Whether the guest's driver negotiated FREE_PAGE_HINT (migration can use hints). */
function hintNegotiated(vm: Vm): boolean {
  return vm.driver !== null && hasFeature(vm.driver.features, VIRTIO_BALLOON_F_FREE_PAGE_HINT);
}

function needBalloon(st: RunState, action: string) {
  if (!st.vm.host.balloon) throw new ScenarioError(`${action}: the machine has no balloon device (the scenario says balloon: false)`);
  return st.vm.host.balloon;
}

/** Records a QMP exchange on the event: the command's answer, exactly as QEMU writes it. */
function qmp(st: RunState, ev: ResultEvent, execute: string, args?: Record<string, unknown>): void {
  const r = qmpExecute(st.vm.host, args ? { execute, arguments: args } : { execute });
  ev.qmp = r;
}

function runAction(st: RunState, a: Action): void {
  const ev: ResultEvent = { t_ns: st.guest.sim.now, kind: a.action };
  if (a.label !== undefined) ev.label = a.label;
  switch (a.action) {
    case 'snapshot': snapshot(st, ev); break;
    case 'alloc_pages': doAllocPages(st, a, ev); break;
    case 'free_pages': doFreePages(st, a, ev); break;
    case 'drain_pcp': {
      const before = globalZonePageState(st.guest.pgdat, ZoneStat.nr_free_pages);
      drainAllPages(st.guest.pgdat, null);
      ev.pages = globalZonePageState(st.guest.pgdat, ZoneStat.nr_free_pages) - before;
      break;
    }
    case 'check': assertVm(st.vm, `at t=${st.guest.sim.now}ns`); ev.ok = true; break;
    case 'balloon':
      needBalloon(st, 'balloon');
      qmp(st, ev, 'balloon', { value: a.value });
      ev.target_pages = st.vm.host.balloon!.numPages;
      break;
    case 'query_balloon': needBalloon(st, 'query_balloon'); qmp(st, ev, 'query-balloon'); break;
    case 'guest_stats': needBalloon(st, 'guest_stats'); qmp(st, ev, 'qom-get', { path: BALLOON_QOM_PATH, property: 'guest-stats' }); break;
    case 'stats_polling_interval':
      needBalloon(st, 'stats_polling_interval');
      if (a.interval % 1e9 !== 0) throw new ScenarioError(`stats_polling_interval: interval must be whole seconds (QEMU takes seconds), got ${a.interval} ns`);
      qmp(st, ev, 'qom-set', { path: BALLOON_QOM_PATH, property: 'guest-stats-polling-interval', value: a.interval / 1e9 });
      break;
    case 'process_write': startProcessWrite(st, a.pid, a.rate, a.duration, ev); break;
    case 'kernel_build': {
      const b = startKernelBuild(st.guest, rngFork(st.rng), {
        jobs: a.jobs, units: a.units, sourceBytes: a.source, objectBytes: a.objects, ccHeapMinBytes: a.cc_heap_min, ccHeapMaxBytes: Math.max(a.cc_heap_min, a.cc_heap_max),
        ccCpuMinNs: a.cc_cpu_min, ccCpuMaxNs: Math.max(a.cc_cpu_min, a.cc_cpu_max), rewrite: a.rewrite, untar: a.untar, firstPid: 20000 + st.builds.length * 4000,
      });
      const label = a.label ?? `kernel_build@${st.guest.sim.now}`;
      st.builds.push({ label, build: b });
      b.onDone = (done) => st.events.push({ t_ns: st.guest.sim.now, kind: 'kernel_build_done', label, ...kernelBuildSummary(done) });
      Object.assign(ev, { jobs: a.jobs, units: a.units });
      break;
    }
    case 'stress_highalloc': {
      if (st.highalloc) throw new ScenarioError('stress_highalloc: only one run per scenario');
      st.highalloc = startStressHighalloc(st.guest, rngFork(st.rng), {
        percent: a.percent, mbPerSec: a.mb_per_sec, warmupNs: a.warmup, cooldownNs: a.cooldown, builds: a.builds ?? null,
        build: { units: a.build_units, sourceBytes: a.build_source, objectBytes: a.build_objects, ccHeapMinBytes: a.cc_heap_min, ccHeapMaxBytes: Math.max(a.cc_heap_min, a.cc_heap_max) },
      });
      st.highalloc.onDone = (h) => st.events.push({ t_ns: st.guest.sim.now, kind: 'stress_highalloc_done', ...highallocResult(h) });
      ev.builds = st.highalloc.builds.length;
      break;
    }
    case 'balloon_cycle': {
      const dev = needBalloon(st, 'balloon_cycle');
      const steps = startBalloonCycle(dev, st.guest.sim, a.size, a.step, a.period, a.until ?? Infinity);
      Object.assign(ev, { size: a.size, step: a.step, period_ns: a.period, steps_per_cycle: steps });
      break;
    }
    case 'idle': startIdle(st.guest, rngFork(st.rng), a.until ?? Infinity); break;
    case 'balloon_free_page_hint': {
      const dev = needBalloon(st, 'balloon_free_page_hint');
      if (a.value === 'on' && !hintNegotiated(st.vm)) {
        throw new ScenarioError('balloon_free_page_hint: on needs FREE_PAGE_HINT negotiated (set balloon.free_page_hint: true)');
      }
      st.useHints = a.value === 'on';
      ev.value = a.value;
      ev.negotiated = hasFeature(dev.t.driverFeatures, VIRTIO_BALLOON_F_FREE_PAGE_HINT);
      break;
    }
    case 'migrate': {
      if (st.vm.host.migration && st.vm.host.migration.status !== 'completed') throw new ScenarioError('migrate: a migration is already in progress');
      const m = hostMigrate(st.vm.host, { maxBandwidth: a.max_bandwidth, downtimeLimitMs: a.downtime_limit / 1e6, linkBandwidth: a.link_bandwidth, freePageHint: st.useHints });
      m.onComplete = (done) => migrationCompleted(st, done);
      Object.assign(ev, { 'max-bandwidth': a.max_bandwidth, 'downtime-limit': a.downtime_limit / 1e6, link_bandwidth: a.link_bandwidth, free_page_hint: m.hinting });
      break;
    }
    case 'query_migrate': ev.qmp = { return: st.vm.host.migration ? queryMigrate(st.vm.host.migration) : {} }; break;
    case 'free_page_hint': {
      const dev = needBalloon(st, 'free_page_hint');
      if (a.command === 'start') {
        if (!virtioBalloonFreePageStart(dev)) throw new ScenarioError('free_page_hint: FREE_PAGE_HINT was not negotiated (set balloon.free_page_hint: true)');
      } else if (a.command === 'stop') virtioBalloonFreePageStop(dev);
      else virtioBalloonFreePageDone(dev);
      Object.assign(ev, { command: a.command, status: FREE_PAGE_HINT_STATUS_NAMES[dev.freePageHintStatus], cmd_id: dev.freePageHintCmdId, hinted_pages: dev.counters.hintedPages });
      break;
    }
    case 'process_fault': {
      const proc = getProcess(st.guest.procs, a.pid);
      if (a.madvise_hugepage) proc.madvised = true;
      const want = Math.ceil(a.size / PAGE_SIZE);
      const e0 = st.guest.pgdat.events.slice();
      const got = faultAnonPages(st.guest.pgdat, proc, want);
      ev.thp_fault_alloc = st.guest.pgdat.events[VmEvent.thp_fault_alloc]! - e0[VmEvent.thp_fault_alloc]!;
      ev.thp_fault_fallback = st.guest.pgdat.events[VmEvent.thp_fault_fallback]! - e0[VmEvent.thp_fault_fallback]!;
      Object.assign(ev, { pid: a.pid, requested_pages: want, faulted_pages: got, rss_pages: proc.rssAnon });
      break;
    }
    case 'process_file': {
      const proc = getProcess(st.guest.procs, a.pid);
      const want = Math.ceil(a.size / PAGE_SIZE);
      Object.assign(ev, { pid: a.pid, requested_pages: want, cached_pages: readFilePages(st.guest.pgdat, proc, want, a.dirty) });
      break;
    }
    case 'process_free': {
      const proc = st.guest.procs.get(a.pid);
      if (!proc) throw new ScenarioError(`process_free: no process ${a.pid} at this time (start it with process_fault)`);
      Object.assign(ev, { pid: a.pid, freed_pages: unmapAnonPages(st.guest.pgdat, st.rng, proc, a.fraction, a.pick), rss_pages: proc.rssAnon });
      break;
    }
    case 'process_exit': {
      const proc = st.guest.procs.get(a.pid);
      if (!proc) throw new ScenarioError(`process_exit: no process ${a.pid} at this time`);
      Object.assign(ev, { pid: a.pid, freed_pages: exitProcess(st.guest.pgdat, st.guest.procs, proc) });
      break;
    }
    case 'compact_memory': {
      const before = freeBlocksPerOrder(st.guest);
      const e0 = st.guest.pgdat.events.slice();
      const rep = compactMemory(st.guest.pgdat);
      const delta = (k: VmEvent) => st.guest.pgdat.events[k]! - e0[k]!;
      Object.assign(ev, {
        free_blocks_before: before,
        free_blocks_after: freeBlocksPerOrder(st.guest),
        compact_migrate_scanned: delta(VmEvent.compact_migrate_scanned),
        compact_free_scanned: delta(VmEvent.compact_free_scanned),
        compact_isolated: delta(VmEvent.compact_isolated),
        pgmigrate_success: delta(VmEvent.pgmigrate_success),
        pgmigrate_fail: delta(VmEvent.pgmigrate_fail),
        cost_ns: rep.costNs,
      });
      break;
    }
  }
  st.events.push(ev);
  if (st.check) assertVm(st.vm, `after ${a.action} at t=${st.guest.sim.now}ns`);
}

/** The virtual time a scenario ends at: its duration, or just past its last action. */
export function scenarioEnd(s: Scenario): number {
  if (s.duration !== undefined) return s.duration;
  let last = 0;
  for (const a of s.timeline) last = Math.max(last, a.at);
  return last;
}

/** Runs a scenario to its end (or opts.until) and returns the result document and the guest. */
export function runScenario(s: Scenario, opts: RunOptions = {}): RunResult {
  const t0 = opts.wallClock?.();
  const seed = opts.seed ?? s.seed;
  const b = s.balloon;
  const vm = createVm({
    guest: {
      memoryBytes: s.guest.memory,
      vcpus: s.guest.vcpus,
      seed,
      swapBytes: s.guest.swap,
      boot: {
        ...DEFAULT_BOOT,
        kaslr: s.guest.kaslr,
        kernelImageBytes: s.guest.kernel_image ?? DEFAULT_BOOT.kernelImageBytes,
        minFreeKbytes: s.guest.min_free_kbytes === 'auto' ? null : s.guest.min_free_kbytes,
        thp: s.guest.thp,
        thpDefrag: s.guest.thp_defrag,
        initOnAlloc: s.guest.init_on_alloc,
        initOnFree: s.guest.init_on_free,
        pagePoison: s.guest.page_poison,
      },
    },
    balloon: b === false ? null : {
      device: {
        deflateOnOom: b.deflate_on_oom, freePageHint: b.free_page_hint, freePageReporting: b.free_page_reporting,
        pagePoison: b.page_poison, mustTellHost: b.must_tell_host, statsVq: b.stats_vq, statsPollingIntervalNs: b.stats_polling_interval,
        hintAction: b.hint_action, hintAckOnStop: b.hint_ack_on_stop, actualSource: b.actual, inhibited: b.inhibited,
      },
      driver: { balloonCompaction: b.compaction, statsTags: b.stats_tags, oomPages: b.oom_pages },
    },
    memPrealloc: s.host.mem_prealloc,
  });
  const guest = vm.guest;
  if (vm.driver?.probeError) throw new ScenarioError(`the balloon driver failed to probe: ${vm.driver.probeError}`);
  const st: RunState = {
    vm, guest, rng: rngFork(guest.rng), tags: new Map(), events: [], check: opts.check ?? false,
    useHints: hintNegotiated(vm), builds: [], highalloc: null,
  };
  if (st.check) assertVm(vm, 'after boot');
  const end = Math.min(opts.until ?? Infinity, scenarioEnd(s));
  const sim = guest.sim;
  for (const a of s.timeline) {
    if (a.at > end) continue;
    simAt(sim, a.at, () => {
      runAction(st, a);
      opts.onProgress?.(sim.now, end);
    });
  }
  // Series of the host's RSS and the balloon's size: about 500 samples over the run.
  const rssSeries: Array<[number, number]> = [];
  const actualSeries: Array<[number, number]> = [];
  const every = Math.max(100_000_000, Math.ceil(end / 500));
  const sample = () => {
    rssSeries.push([sim.now, ramRssBytes(vm.host.ram)]);
    if (vm.host.balloon) actualSeries.push([sim.now, vm.host.balloon.actual]);
  };
  const tick = () => { sample(); if (sim.now + every <= end) simAfter(sim, every, tick); };
  simAt(sim, 0, tick);
  simRunUntil(sim, end);
  if (rssSeries.length === 0 || rssSeries[rssSeries.length - 1]![0] !== end) sample();
  opts.onProgress?.(end, end);
  if (st.check) assertVm(vm, 'at the end');
  const ev = guest.pgdat.events;
  const dev = vm.host.balloon, drv = vm.driver;
  const doc: ResultDocument = {
    balloonlab: VERSION,
    scenario: s.name,
    seed,
    guest: { memory_bytes: s.guest.memory, vcpus: s.guest.vcpus },
    duration_ns: end,
    wall_ms: t0 === undefined || !opts.wallClock ? 0 : Math.round((opts.wallClock() - t0) * 1000) / 1000,
    vmstat: vmstatObject(guest.pgdat),
    balloon: {
      target_pages: dev?.numPages ?? 0,
      actual_pages: dev?.actual ?? 0,
      inflated: ev[VmEvent.balloon_inflate]!,
      deflated: ev[VmEvent.balloon_deflate]!,
      migrated: ev[VmEvent.balloon_migrate]!,
      features: drv ? negotiatedFeatureNames(drv.features) : [],
      actual_series: actualSeries,
      driver: drv ? { ...drv.counters, num_pages: drv.numPages, hint_blocks_held: drv.numFreePageBlocks, stuck: drv.stuck,
        page_reporting: drv.prDevInfo ? { passes: drv.prDevInfo.passes, reports: drv.prDevInfo.reports, reported_blocks: drv.prDevInfo.reportedBlocks, reported_pages: drv.prDevInfo.reportedPages } : null } : null,
      device: dev ? { ...dev.counters, inflated_pages: dev.inflatedPages, poison_val: dev.poisonVal, free_page_hint_status: FREE_PAGE_HINT_STATUS_NAMES[dev.freePageHintStatus], balloon_change_events: dev.balloonChanges.length, needs_reset: dev.t.error } : null,
    },
    host: { rss_bytes: ramRssBytes(vm.host.ram), rss_series: rssSeries, first_touches: vm.host.ram.firstTouches, refaults: vm.host.ram.refaults, discarded_pages: vm.host.ram.discards },
    events: st.events,
  };
  if (vm.host.migration) doc.migration = migrationResult(vm.host.migration);
  if (st.highalloc) doc.highalloc = highallocResult(st.highalloc);
  const allBuilds = [...st.builds.map((b) => b.build), ...(st.highalloc?.builds ?? [])];
  if (allBuilds.length) {
    const user = allBuilds.reduce((x, b) => x + b.userNs, 0), sys = allBuilds.reduce((x, b) => x + b.sysNs, 0) + (st.highalloc?.passes.reduce((x, p) => x + p.stall_ns, 0) ?? 0);
    doc.workloads = {
      kernel_build: st.builds.map((b) => ({ label: b.label, ...kernelBuildSummary(b.build) })),
      user_s: Math.round(user / 1e6) / 1000, system_s: Math.round(sys / 1e6) / 1000,
    };
  }
  return { doc, guest, vm };
}

/** The result document's `migration`: query-migrate's fields, flat, plus the hints and the destination check. */
function migrationResult(m: MigrationState): Record<string, unknown> {
  const q = queryMigrate(m);
  const ram = q.ram as Record<string, unknown>;
  return {
    status: q.status, 'total-time': q['total-time'], downtime: q.downtime ?? null, 'setup-time': q['setup-time'],
    transferred: ram.transferred, remaining: ram.remaining, total: ram.total, duplicate: ram.duplicate, normal: ram.normal,
    'normal-bytes': ram['normal-bytes'], 'dirty-sync-count': ram['dirty-sync-count'], mbps: ram.mbps, 'dirty-pages-rate': ram['dirty-pages-rate'],
    'free-page-hint': { enabled: m.hinting, hinted_pages: m.hintedPages, skipped_pages: m.skippedPages },
    iterations: m.iterations, 'cpu-time': Math.round(m.cpuNs / 1e6),
    // taken at the instant of completion: the guest runs on (and writes) afterwards
    destination_check: m.destinationCheck === undefined ? null : m.destinationCheck ?? 'ok',
  };
}

/** The balloon feature names a driver negotiated, in bit order. */
function negotiatedFeatureNames(features: bigint): string[] {
  const out: string[] = [];
  for (const [bit, name] of Object.entries(BALLOON_FEATURE_NAMES)) if (hasFeature(features, Number(bit))) out.push(name);
  return out;
}
