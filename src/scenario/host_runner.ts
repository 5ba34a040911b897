/**
 * The host scenario runner: boots every VM of a `vms:` scenario on one host, runs each
 * VM's timeline on its own clock, the host's policy and samplers on the host's, and
 * steps all the clocks in time order until the end; then builds the host result
 * document (CLI.md, "host scenarios").
 *
 * The stepping (hostMachineRun): the clock with the earliest pending event runs all
 * its events at that instant (the host's first at a tie, then the VMs in start order),
 * and every running clock's `now` moves up to that instant first, so that whatever one
 * side does to another (a policy's QMP `balloon`, a guest's write waking the host's
 * kswapd) lands at the same virtual time on both. A VM the host OOM-killed is not
 * stepped again. Deterministic: the order depends only on the scenario and its seed.
 *
 * Each VM's timeline runs on the controller runScenario uses for a single guest
 * (timeline.ts): the same action table, holds, deferred entries and side effects; an
 * entry the guest refuses is recorded as not run.
 */
import { type Sim, createSim, simAt, simAfter, simPeek, simRunUntil } from '../sim/clock.js';
import { costTable } from '../sim/cost.js';
import { schedSummary, type SchedSummary } from '../guest/sched.js';
import { vmstatObject } from '../guest/mm/vmstat.js';
import { VmEvent } from '../guest/mm/vmstat_items.js';
import { type VmConfig } from '../machine/machine.js';
import { type HostMachine, createHostMachine, checkHostMachine } from '../machine/host_machine.js';
import { hostFreePages, hostMeminfo } from '../host/host.js';
import { qmpExecute } from '../host/qmp.js';
import { TARGET_PAGE_SIZE } from '../virtio/guest_memory.js';
import { type PolicyVm, type PolicyHost, type PolicyInstance, policyDef } from '../host/policies/index.js';
import { procZoneinfo } from '../report/proc.js';
import { InvariantError } from '../guest/mm/check.js';
import { type Scenario, ScenarioError } from './schema.js';
import { vmSeed, type PolicySpec } from './host_schema.js';
import { scenarioEnd, scenarioVmConfig, checkSides, runScenario, type RunOptions, type ResultDocument } from './runner.js';
import { startTimeline } from './timeline.js';
import { formatTime } from './units.js';
import { VERSION } from '../version.js';
import { type KernelBuildSummary, kernelBuildSummary } from '../workloads/kernel_build.js';
import { type ResultEvent } from '../actions/index.js';

/** One VM in the host result document. */
export type HostVmResult = {
  name: string;
  seed: number;
  guest: { memory_bytes: number; vcpus: number };
  /** False when the host's OOM killer killed it (at killed_at_ns, with the RSS and swap it had). */
  running: boolean;
  killed_at_ns: number | null;
  /** Its QEMU's resident guest RAM and the pages of it in host swap, at the end (at the kill for a killed VM). */
  rss_bytes: number;
  swap_bytes: number;
  /** Guest writes to host-swapped pages (host major faults), and the vCPU time they and the host's direct reclaim cost the guest. */
  host_swap_ins: number;
  host_swap_in_s: number;
  /** Pages the guest reported free (free page reporting) and the host discarded. */
  reported_pages: number;
  host_reclaim_s: number;
  first_touches: number;
  refaults: number;
  discarded_pages: number;
  balloon: { target_pages: number; actual_pages: number; inflated: number; deflated: number; min_actual_pages: number; max_actual_pages: number };
  /** Virtual seconds the balloon was more than 1 MiB short of its target (inflating behind) or over it (deflating behind), sampled every second. */
  behind_target_s: { inflate: number; deflate: number };
  /** The guest's reclaim stalls: allocstall (all zones), direct reclaim and compaction time (system time the tasks paid), OOM kills. */
  allocstall: number;
  stall_s: number;
  oom_kill: number;
  vmstat: Record<string, number>;
  cpu: SchedSummary;
  rss_series: Array<[number, number]>;
  workloads?: { kernel_build: Array<{ label: string } & KernelBuildSummary> };
  events: ResultEvent[];
};

/** The result document of a host scenario (`vms:`). */
export type HostResultDocument = {
  balloonlab: string;
  scenario: string;
  seed: number;
  kind: 'host';
  duration_ns: number;
  wall_ms: number;
  host: {
    memory_bytes: number; swap_bytes: number; reserved_bytes: number;
    policy: string; policy_options: Record<string, number>;
    /** The host zone's watermarks, pages. */
    watermarks: { min: number; low: number; high: number };
    free_bytes: number; used_bytes: number; swap_used_bytes: number;
    min_free_bytes: number; peak_swap_used_bytes: number;
    /** Host swap-ins (guest writes to swapped pages, all VMs) and swap-outs, pages. */
    pswpin: number; pswpout: number; pgscan: number;
    kswapd_runs: number; direct_reclaims: number;
    oom_kills: Array<{ t_ns: number; vm: string; rss_bytes: number; swap_bytes: number }>;
    /** [t_ns, free, swap used, sum of running guests' RAM (-m), sum of their logical sizes (RAM - balloon)], bytes. */
    series: Array<[number, number, number, number, number]>;
    /** Policy runs and the `balloon` commands they sent. */
    policy_runs: number; balloon_commands: number;
  };
  vms: HostVmResult[];
};

/** The VM configs of a host scenario, each with the policy's device needs (free page reporting) applied. */
function hostVmConfigs(s: Scenario, seed: number | undefined, policy: PolicySpec): Array<{ name: string; config: VmConfig; seed: number }> {
  const def = policyDef(policy.name)!;
  return s.vms!.map((v, k) => {
    const vs = seed !== undefined ? vmSeed(seed, k) : v.scenario.seed;
    const config = scenarioVmConfig(v.scenario, vs);
    if (def.device?.freePageReporting && config.balloon) config.balloon = { ...config.balloon, device: { ...config.balloon.device, freePageReporting: true } };
    return { name: v.name, config, seed: vs };
  });
}

/** A policy's options as written (snake_case; times in ns) in the names its file uses. */
export function policyOptions(spec: PolicySpec): Record<string, number> {
  const secs: Record<string, string> = { policy_interval: 'policyIntervalS', monitor_interval: 'monitorIntervalS', update_time: 'updateTimeS' };
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(spec.options)) {
    if (k in secs) out[secs[k]!] = v / 1e9;
    else out[k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase())] = v;
  }
  return out;
}


/**
 * Steps the host's and the VMs' clocks in time order up to `end` (ns): hostMachineRun.
 * NOTE: the loop looks at every clock per step (a handful); the work is in the events.
 */
export function hostMachineRun(hm: HostMachine, end: number, onStep?: (now: number) => void): void {
  const host = hm.host;
  const sims: Sim[] = [host.sim, ...hm.vms.map((v) => v.vm.sim)];
  const alive = (i: number) => i === 0 || host.guests[hm.vms[i - 1]!.index]!.running;
  let lastProgress = 0;
  for (;;) {
    let best = -1, bt = Infinity;
    for (let i = 0; i < sims.length; i++) {
      if (!alive(i)) continue;
      const t = simPeek(sims[i]!);
      if (t < bt) { bt = t; best = i; }
    }
    if (best < 0 || bt > end) break;
    for (let i = 0; i < sims.length; i++) if (alive(i) && sims[i]!.now < bt) sims[i]!.now = bt;
    host.nowNs = bt;
    simRunUntil(sims[best]!, bt);
    if (onStep && bt - lastProgress >= 1e9) { lastProgress = bt; onStep(bt); }
  }
  for (let i = 0; i < sims.length; i++) if (alive(i)) simRunUntil(sims[i]!, end);
  host.nowNs = end;
}

/** Runs a host scenario (one with `vms:`) to its end and returns its result document and the machine. */
export function runHostScenario(s: Scenario, opts: RunOptions = {}): { doc: HostResultDocument; hm: HostMachine } {
  if (!s.vms) throw new ScenarioError(`${s.name}: not a host scenario (no vms:)`);
  const t0 = opts.wallClock?.();
  const seed = opts.seed ?? s.seed;
  const check = opts.check ?? false;
  for (const v of s.vms) checkSides(v.scenario, 'model', opts.source);
  const policySpec: PolicySpec = s.host.policy ?? { name: 'none', options: {} };
  const configs = hostVmConfigs(s, opts.seed, policySpec);
  const costs = costTable(s.costs);
  const hostSim = createSim();
  const hm = createHostMachine({ memoryBytes: s.host.memory!, swapBytes: s.host.swap ?? 0, reservedBytes: s.host.reserved ?? 0 }, configs, hostSim, costs);
  const host = hm.host;
  for (const e of hm.vms) for (const b of e.vm.balloons) if (b.driver.probeError) throw new ScenarioError(`${e.name}: the balloon driver failed to probe${e.vm.balloons.length > 1 ? ` ${b.id}` : ''}: ${b.driver.probeError}`);
  const end = Math.min(opts.until ?? Infinity, s.duration ?? Math.max(...s.vms.map((v) => scenarioEnd(v.scenario))));
  if (check) { const r = checkHostMachine(hm); if (r !== null) throw new InvariantError(`after boot: ${r}`); }
  // the VMs' timelines
  const timelines = hm.vms.map((e, k) => startTimeline(e.vm, s.vms![k]!.scenario, { check, end, actionErrors: 'skip', source: `${opts.source !== undefined ? `${opts.source}: ` : ""}vm ${e.name}` }));
  // the policy, as the management daemon: QMP to each VM, meminfo from the host
  const policy: PolicyInstance = policyDef(policySpec.name)!.create(policyOptions(policySpec));
  const policyVms: PolicyVm[] = hm.vms.map((e, k) => ({
    name: e.name, ramSize: e.vm.host.ramSize, minMemory: s.vms![k]!.min_memory, shares: s.vms![k]!.shares,
    running: () => host.guests[e.index]!.running,
    qmp: (cmd) => qmpExecute(e.vm.host, cmd),
    guestZoneinfo: () => procZoneinfo(e.vm.guest),
  }));
  const policyHost: PolicyHost = { meminfo: () => hostMeminfo(host), now: () => host.nowNs };
  let policyRuns = 0, balloonCommands = 0;
  if (policy.statsPollingInterval > 0) {
    for (const pv of policyVms) pv.qmp({ execute: 'qom-set', arguments: { path: '/machine/peripheral/balloon0', property: 'guest-stats-polling-interval', value: policy.statsPollingInterval } });
  }
  if (policy.intervalNs > 0) {
    const tick = () => {
      policyRuns++;
      for (const d of policy.run(policyHost, policyVms)) {
        const pv = policyVms[d.index]!;
        if (!pv.running()) continue;
        pv.qmp({ execute: 'balloon', arguments: { value: Math.max(TARGET_PAGE_SIZE, Math.floor(d.value)) } });
        balloonCommands++;
      }
      if (host.nowNs + policy.intervalNs <= end) simAfter(hostSim, policy.intervalNs, tick);
    };
    simAt(hostSim, policy.intervalNs, tick);
  }
  // samplers: the host's series (series_interval) and, every second, whether each balloon is behind its target
  const every = s.host.series_interval ?? 10e9;
  const series: HostResultDocument['host']['series'] = [];
  const rssSeries: Array<Array<[number, number]>> = hm.vms.map(() => []);
  let minFree = Infinity, peakSwap = 0;
  const behind = hm.vms.map(() => ({ inflate: 0, deflate: 0 }));
  const actualRange = hm.vms.map(() => ({ min: Infinity, max: 0 }));
  const sample = () => {
    let ram = 0, logical = 0;
    hm.vms.forEach((e, k) => {
      const g = host.guests[e.index]!;
      if (!g.running) return;
      ram += e.vm.host.ramSize;
      logical += e.vm.host.ramSize - (e.vm.host.balloon?.actual ?? 0) * TARGET_PAGE_SIZE;
      rssSeries[k]!.push([host.nowNs, e.vm.host.ram.residentPages * TARGET_PAGE_SIZE]);
    });
    series.push([host.nowNs, Math.max(0, hostFreePages(host)) * TARGET_PAGE_SIZE, host.pool.swappedPages * TARGET_PAGE_SIZE, ram, logical]);
    if (check) { const r = checkHostMachine(hm); if (r !== null) throw new InvariantError(`at ${formatTime(host.nowNs)}: ${r}`); }
    if (host.nowNs + every <= end) simAfter(hostSim, every, sample);
  };
  simAt(hostSim, 0, sample);
  const SLACK_PAGES = 256;
  const watch = () => {
    minFree = Math.min(minFree, hostFreePages(host));
    peakSwap = Math.max(peakSwap, host.pool.swappedPages);
    hm.vms.forEach((e, k) => {
      const dev = e.vm.host.balloon;
      if (!dev || !host.guests[e.index]!.running) return;
      if (dev.actual < dev.numPages - SLACK_PAGES) behind[k]!.inflate++;
      else if (dev.actual > dev.numPages + SLACK_PAGES) behind[k]!.deflate++;
      actualRange[k]!.min = Math.min(actualRange[k]!.min, dev.actual);
      actualRange[k]!.max = Math.max(actualRange[k]!.max, dev.actual);
    });
    if (host.nowNs + 1e9 <= end) simAfter(hostSim, 1e9, watch);
  };
  simAt(hostSim, 0, watch);
  hostMachineRun(hm, end, opts.onProgress ? (now) => opts.onProgress!(now, end, `${host.guests.filter((g) => g.running).length}/${host.guests.length} VMs, host free ${Math.round((hostFreePages(host) * 4096) / 2 ** 20)} MiB`) : undefined);
  if (series.length === 0 || series[series.length - 1]![0] !== end) sample();
  timelines.forEach((t) => t.skipHeld(end));
  if (check) { const r = checkHostMachine(hm); if (r !== null) throw new InvariantError(`at the end: ${r}`); }
  opts.onProgress?.(end, end, 'done');
  const vms: HostVmResult[] = hm.vms.map((e, k) => {
    const g = host.guests[e.index]!, vm = e.vm, ram = vm.host.ram, dev = vm.host.balloon, ev = vm.guest.pgdat.events;
    const sc = s.vms![k]!.scenario;
    const allocstall = ev[VmEvent.allocstall_dma]! + ev[VmEvent.allocstall_dma32]! + ev[VmEvent.allocstall_normal]! + ev[VmEvent.allocstall_movable]! + ev[VmEvent.allocstall_device]!;
    const builds = timelines[k]!.ctx.builds;
    const r: HostVmResult = {
      name: e.name, seed: configs[k]!.seed, guest: { memory_bytes: sc.guest.memory, vcpus: sc.guest.vcpus },
      running: g.running, killed_at_ns: g.killedAtNs,
      rss_bytes: (g.running ? ram.residentPages : g.killedRssPages) * TARGET_PAGE_SIZE,
      swap_bytes: (g.running ? ram.swappedPages : g.killedSwapPages) * TARGET_PAGE_SIZE,
      reported_pages: dev?.counters.reportedPages ?? 0,
      host_swap_ins: ram.swapIns, host_swap_in_s: round6(e.hostSwapInNs / 1e9), host_reclaim_s: round6(e.hostReclaimNs / 1e9),
      first_touches: ram.firstTouches, refaults: ram.refaults, discarded_pages: ram.discards,
      balloon: {
        target_pages: dev?.numPages ?? 0, actual_pages: dev?.actual ?? 0, inflated: ev[VmEvent.balloon_inflate]!, deflated: ev[VmEvent.balloon_deflate]!,
        min_actual_pages: actualRange[k]!.min === Infinity ? 0 : actualRange[k]!.min, max_actual_pages: actualRange[k]!.max,
      },
      behind_target_s: behind[k]!,
      allocstall, stall_s: round6(vm.guest.pgdat.tasks.stallNs / 1e9), oom_kill: ev[VmEvent.oom_kill]!,
      vmstat: vmstatObject(vm.guest.pgdat), cpu: schedSummary(vm.guest.sched), rss_series: rssSeries[k]!,
      events: timelines[k]!.events,
    };
    if (builds.length) r.workloads = { kernel_build: builds.map((b) => ({ label: b.label, ...kernelBuildSummary(b.build) })) };
    return r;
  });
  const mi = hostMeminfo(host);
  const doc: HostResultDocument = {
    balloonlab: VERSION, scenario: s.name, seed, kind: 'host', duration_ns: end,
    wall_ms: t0 === undefined || !opts.wallClock ? 0 : Math.round((opts.wallClock() - t0) * 1000) / 1000,
    host: {
      memory_bytes: host.config.memoryBytes, swap_bytes: host.config.swapBytes, reserved_bytes: host.config.reservedBytes,
      policy: policySpec.name, policy_options: { ...policySpec.options },
      watermarks: { min: host.wmarkMin, low: host.wmarkLow, high: host.wmarkHigh },
      free_bytes: mi.MemFree, used_bytes: mi.MemTotal - mi.MemFree, swap_used_bytes: mi.SwapTotal - mi.SwapFree,
      min_free_bytes: Math.max(0, minFree === Infinity ? hostFreePages(host) : minFree) * TARGET_PAGE_SIZE, peak_swap_used_bytes: peakSwap * TARGET_PAGE_SIZE,
      pswpin: hm.vms.reduce((x, e) => x + e.vm.host.ram.swapIns, 0), pswpout: host.counters.pswpout, pgscan: host.counters.pgscan,
      kswapd_runs: host.counters.kswapdRuns, direct_reclaims: host.counters.directReclaims,
      oom_kills: host.oomKills.map((x) => ({ ...x })),
      series, policy_runs: policyRuns, balloon_commands: balloonCommands,
    },
    vms,
  };
  return { doc, hm };
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/** Runs any scenario: a host scenario (vms:) with runHostScenario, a single guest with runScenario. */
export function runAnyScenario(s: Scenario, opts: RunOptions = {}): { doc: ResultDocument | HostResultDocument } {
  return s.vms ? { doc: runHostScenario(s, opts).doc } : { doc: runScenario(s, opts).doc };
}

/** Whether a result document is a host scenario's. */
export function isHostDocument(d: ResultDocument | HostResultDocument): d is HostResultDocument {
  return (d as HostResultDocument).kind === 'host';
}
