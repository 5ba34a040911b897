/**
 * Real-guest action scripts: a YAML timeline of balloon actions run in order against
 * balloonlab's device serving a real Linux guest in v86 (bridge.ts), and — for the
 * differential report — the same steps against a MODEL guest (createVm) with the same
 * memory and device options. Both sides run with the device's trace on; the report is
 * what the device saw, plus the guest's own balloon counters and meminfo.
 *
 *   name: standard
 *   memory: 128MiB
 *   balloon: { deflate_on_oom: false, free_page_hint: true }
 *   steps:
 *     - balloon: { value: 96MiB }          # QMP balloon, then wait until query-balloon says so
 *     - wait: { time: 1s }
 *     - stats: {}                          # fresh stats, then qom-get guest-stats
 *     - free_page_hint: { rounds: 3 }      # start, guest's STOP, done, MemFree recovers
 *     - shell: { cmd: "cat /proc/vmstat" } # real guest only (the model skips it, noted)
 *     - alloc: { size: 16MiB }             # a process touches that much memory, then lets it go
 *
 * Outside the model core (wall clock, files, an emulator): tsconfig.core.json leaves
 * src/integrations out.
 */
import { z } from 'zod';
import { ScenarioError, sizeField, timeField, balloonSchema as scenarioBalloonSchema, parseYamlText } from '../../scenario/schema.js';
import { formatSize } from '../../scenario/units.js';
import { type BalloonDevice, type BalloonDeviceOptions, type BalloonTraceEvent, virtioBalloonFreePageStart, virtioBalloonFreePageDone, FREE_PAGE_HINT_STATUS_NAMES, FreePageHintStatus } from '../../host/virtio_balloon.js';
import { type QmpCommand, type QmpResponse, qmpExecute, BALLOON_QOM_PATH } from '../../host/qmp.js';
import { createVm, type Vm } from '../../machine/machine.js';
import { simRunUntil } from '../../sim/clock.js';
import { defaultGuestConfig } from '../../guest/guest.js';
import { procMeminfo } from '../../report/proc.js';
import { VmEvent } from '../../guest/mm/vmstat_items.js';
import { getProcess, faultAnonPages, exitProcess } from '../../guest/mm/process.js';
import { BALLOON_FEATURE_NAMES, BALLOON_STAT_NAMES, VIRTIO_BALLOON_CMD_ID_STOP, VIRTIO_BALLOON_CMD_ID_DONE } from '../../virtio/virtio_balloon.js';
import { hasFeature, VIRTIO_CONFIG_S_NEEDS_RESET } from '../../virtio/transport.js';
import { TARGET_PAGE_SIZE } from '../../virtio/guest_memory.js';
import { bootRealGuest, type RealGuest } from './boot.js';
import { attachBalloonlabBalloon, type BalloonBridge } from './bridge.js';

const MiB = 2 ** 20;

// ---------------------------------------------------------------------------------
// The script file

/** The device's options, by the names scenario files use (a subset of the scenario's `balloon:`). */
const balloonSchema = scenarioBalloonSchema.pick({
  deflate_on_oom: true, free_page_hint: true, free_page_reporting: true, page_poison: true, must_tell_host: true, stats_vq: true,
  stats_polling_interval: true,
});

const STEP_SCHEMAS = {
  /** QMP balloon to a logical size; waits (up to `timeout`) until query-balloon reports it. */
  balloon: z.strictObject({ value: sizeField, timeout: timeField.default(60e9) }),
  wait: z.strictObject({ time: timeField }),
  /** Fresh stats from the guest (a one-off poll), then qom-get guest-stats. */
  stats: z.strictObject({ timeout: timeField.default(10e9) }),
  /** `rounds` cycles: start, the guest's STOP, done, MemFree back. */
  free_page_hint: z.strictObject({ rounds: z.number().int().min(1).max(100).default(1), timeout: timeField.default(30e9) }),
  /** A shell command in the real guest (output recorded); skipped on the model. */
  shell: z.strictObject({ cmd: z.string().min(1), timeout: timeField.default(60e9) }),
  /** A process in the guest touches `size` of memory, then frees it. */
  alloc: z.strictObject({ size: sizeField }),
} as const;

export const STEP_NAMES = Object.keys(STEP_SCHEMAS) as Array<keyof typeof STEP_SCHEMAS>;

export type Step =
  | { kind: 'balloon'; value: number; timeout: number }
  | { kind: 'wait'; time: number }
  | { kind: 'stats'; timeout: number }
  | { kind: 'free_page_hint'; rounds: number; timeout: number }
  | { kind: 'shell'; cmd: string; timeout: number }
  | { kind: 'alloc'; size: number };

const scriptSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().optional(),
  memory: sizeField.default(128 * MiB),
  balloon: balloonSchema.default(() => balloonSchema.parse({})),
  steps: z.array(z.unknown()).min(1),
});

export type RealGuestScript = {
  name: string;
  description?: string;
  memory: number;
  balloon: z.output<typeof balloonSchema>;
  steps: Step[];
};

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s || '(top level)';
}

function issueMessage(err: z.ZodError, where: string, prefix: ReadonlyArray<PropertyKey> = []): string {
  const iss = err.issues[0]!;
  let msg = iss.message;
  if (iss.code === 'unrecognized_keys') msg = `unknown field${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${k}"`).join(', ')}`;
  if (iss.code === 'invalid_type' && /received undefined/.test(iss.message)) msg = `required field is missing (${iss.message.replace(/^Invalid input: /, '')})`;
  return `${where}: ${formatPath([...prefix, ...iss.path])}: ${msg}`;
}

/** Validates a parsed script; errors are ScenarioErrors naming the field (`steps[2].balloon.value`). */
export function validateRealGuestScript(raw: unknown, where: string): RealGuestScript {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ScenarioError(`${where}: (top level): expected a mapping with name, memory, balloon and steps`);
  const r = scriptSchema.safeParse(raw);
  if (!r.success) throw new ScenarioError(issueMessage(r.error, where));
  const s = r.data;
  if (s.memory < 64 * MiB || s.memory % (4 * MiB) !== 0) throw new ScenarioError(`${where}: memory: must be a multiple of 4MiB and at least 64MiB, got ${formatSize(s.memory)}`);
  if (s.balloon.stats_polling_interval % 1e9 !== 0) throw new ScenarioError(`${where}: balloon.stats_polling_interval: must be whole seconds (QEMU takes seconds)`);
  const steps = s.steps.map((st, i): Step => {
    const names = STEP_NAMES.join(', ');
    if (typeof st !== 'object' || st === null || Array.isArray(st)) throw new ScenarioError(`${where}: steps[${i}]: expected a mapping with one action (${names}), e.g. { balloon: { value: 96MiB } }`);
    const keys = Object.keys(st);
    if (keys.length !== 1) throw new ScenarioError(`${where}: steps[${i}]: expected exactly one action (${names}), got ${keys.length ? keys.map((k) => `"${k}"`).join(', ') : 'none'}`);
    const kind = keys[0]!;
    if (!(kind in STEP_SCHEMAS)) throw new ScenarioError(`${where}: steps[${i}]: unknown action "${kind}" (allowed: ${names})`);
    const body = (st as Record<string, unknown>)[kind] ?? {};
    const p = STEP_SCHEMAS[kind as keyof typeof STEP_SCHEMAS].safeParse(body);
    if (!p.success) throw new ScenarioError(issueMessage(p.error, where, ['steps', i, kind]));
    return { kind, ...p.data } as Step;
  });
  if (steps.some((st) => st.kind === 'free_page_hint') && !s.balloon.free_page_hint) {
    const i = steps.findIndex((st) => st.kind === 'free_page_hint');
    throw new ScenarioError(`${where}: steps[${i}].free_page_hint: needs balloon.free_page_hint: true`);
  }
  if (steps.some((st) => st.kind === 'stats') && !s.balloon.stats_vq) {
    const i = steps.findIndex((st) => st.kind === 'stats');
    throw new ScenarioError(`${where}: steps[${i}].stats: needs balloon.stats_vq: true`);
  }
  const out: RealGuestScript = { name: s.name, memory: s.memory, balloon: s.balloon, steps };
  if (s.description !== undefined) out.description = s.description;
  return out;
}

/** Parses and validates YAML script text; `where` names the file in messages. */
export function loadRealGuestScriptText(text: string, where: string): RealGuestScript {
  return validateRealGuestScript(parseYamlText(text, where), where);
}

/** The script's device options in the device's terms. */
export function scriptDeviceOptions(s: RealGuestScript): Partial<BalloonDeviceOptions> {
  const b = s.balloon;
  return {
    deflateOnOom: b.deflate_on_oom, freePageHint: b.free_page_hint, freePageReporting: b.free_page_reporting, pagePoison: b.page_poison,
    mustTellHost: b.must_tell_host, statsVq: b.stats_vq, statsPollingIntervalNs: b.stats_polling_interval,
  };
}

// ---------------------------------------------------------------------------------
// A guest to run steps against: the real one (v86) or the model

export type MemInfo = { MemTotal: number; MemFree: number; MemAvailable: number };
export type BalloonVmstat = { balloon_inflate: number; balloon_deflate: number; balloon_migrate: number };

export type GuestSide = {
  kind: 'real' | 'model';
  device: BalloonDevice;
  qmp(cmd: QmpCommand): QmpResponse;
  /** Lets `ns` of guest time pass (wall time for the real guest, virtual for the model). */
  wait(ns: number): Promise<void>;
  /** Polls `cond` until it holds (true) or `timeoutNs` of guest time pass (false). */
  waitUntil(cond: () => boolean | Promise<boolean>, timeoutNs: number): Promise<boolean>;
  /** Guest time now, ns. */
  now(): number;
  meminfo(): Promise<MemInfo>;
  vmstat(): Promise<BalloonVmstat>;
  /** Runs a shell command (real guest only). */
  shell: ((cmd: string, timeoutNs: number) => Promise<{ output: string; status: number }>) | null;
  /** A process touches `bytes` of memory, then frees it; says what it did. */
  alloc(bytes: number): Promise<string>;
  stop(): void;
};

function parseMeminfo(text: string): MemInfo {
  const get = (k: string): number => {
    const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text);
    if (!m) throw new Error(`no ${k} in /proc/meminfo:\n${text}`);
    return Number(m[1]);
  };
  return { MemTotal: get('MemTotal'), MemFree: get('MemFree'), MemAvailable: get('MemAvailable') };
}

function parseVmstat(text: string): BalloonVmstat {
  const get = (k: string): number => {
    const m = new RegExp(`^${k} (\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : -1;
  };
  return { balloon_inflate: get('balloon_inflate'), balloon_deflate: get('balloon_deflate'), balloon_migrate: get('balloon_migrate') };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export type RealSideOptions = { cacheDir?: string; bootTimeoutMs?: number };

/** Boots the real guest with balloonlab's device (trace on) behind v86's PCI virtio. */
export async function realGuestSide(s: RealGuestScript, opts: RealSideOptions = {}): Promise<GuestSide & { guest: RealGuest; bridge: BalloonBridge; bootMs: number }> {
  let br: BalloonBridge | null = null;
  const guest = await bootRealGuest({
    memoryBytes: s.memory,
    ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
    ...(opts.bootTimeoutMs ? { timeoutMs: opts.bootTimeoutMs } : {}),
    v86Options: { virtio_balloon: true },
    beforeBoot: (emulator) => {
      br = attachBalloonlabBalloon(emulator, scriptDeviceOptions(s));
      br.device.trace = [];
    },
  });
  const bridge = br! as BalloonBridge;
  const t0 = performance.now();
  return {
    kind: 'real', guest, bridge, bootMs: guest.bootMs, device: bridge.device,
    qmp: (cmd) => bridge.qmp(cmd),
    wait: (ns) => sleep(ns / 1e6),
    async waitUntil(cond, timeoutNs) {
      const end = performance.now() + timeoutNs / 1e6;
      for (;;) {
        bridge.tick();
        if (await cond()) return true;
        if (performance.now() > end) return false;
        await sleep(50);
      }
    },
    now: () => Math.round((performance.now() - t0) * 1e6),
    meminfo: async () => parseMeminfo(await guest.run('cat /proc/meminfo')),
    vmstat: async () => parseVmstat(await guest.run('grep ^balloon_ /proc/vmstat')),
    shell: (cmd, timeoutNs) => guest.exec(cmd, Math.ceil(timeoutNs / 1e6)),
    async alloc(bytes) {
      const mib = Math.max(1, Math.round(bytes / MiB));
      // The initramfs's root is RAM: a file there is memory the guest must find.
      const r = await guest.exec(`dd if=/dev/zero of=/balloonlab-alloc bs=1M count=${mib} 2>&1 | tail -1; rm -f /balloonlab-alloc`, 120_000);
      return `dd ${mib} MiB into the RAM root, then rm: ${r.output.trim()}`;
    },
    stop: () => { bridge.detach(); guest.stop(); },
  };
}

/** The model guest: createVm with the same memory and device options, trace on. */
export function modelGuestSide(s: RealGuestScript): GuestSide & { vm: Vm } {
  const vm = createVm({
    guest: defaultGuestConfig({ memoryBytes: s.memory, vcpus: 1, seed: 1 }),
    // The real guest is Linux 6.1: its driver sends stats tags 0-9.
    balloon: { device: scriptDeviceOptions(s), driver: { statsTags: 'v6.1' } },
    memPrealloc: false,
  });
  if (vm.driver?.probeError) throw new ScenarioError(`model guest: the balloon driver failed to probe: ${vm.driver.probeError}`);
  const dev = vm.host.balloon!;
  dev.trace = [];
  const sim = vm.sim;
  let pid = 30000;
  const STEP = 10_000_000;
  return {
    kind: 'model', vm, device: dev,
    qmp: (cmd) => qmpExecute(vm.host, cmd),
    wait: async (ns) => { simRunUntil(sim, sim.now + ns); },
    async waitUntil(cond, timeoutNs) {
      const end = sim.now + timeoutNs;
      for (;;) {
        if (await cond()) return true;
        if (sim.now >= end) return false;
        simRunUntil(sim, Math.min(end, sim.now + STEP));
      }
    },
    now: () => sim.now,
    meminfo: async () => parseMeminfo(procMeminfo(vm.guest)),
    vmstat: async () => {
      const e = vm.guest.pgdat.events;
      return { balloon_inflate: e[VmEvent.balloon_inflate]!, balloon_deflate: e[VmEvent.balloon_deflate]!, balloon_migrate: e[VmEvent.balloon_migrate]! };
    },
    shell: null,
    async alloc(bytes) {
      const p = getProcess(vm.guest.procs, ++pid);
      const got = faultAnonPages(vm.guest.pgdat, p, Math.ceil(bytes / TARGET_PAGE_SIZE));
      simRunUntil(sim, sim.now + STEP);
      const thp = vm.guest.pgdat.events[VmEvent.thp_fault_alloc]!;
      exitProcess(vm.guest.pgdat, vm.guest.procs, p);
      return `process ${pid} faulted ${got} anon pages (thp_fault_alloc now ${thp}), exited`;
    },
    stop: () => {},
  };
}

// ---------------------------------------------------------------------------------
// Running steps

export type HintRound = {
  /** The id the device requested. */
  requested: number;
  /** Command ids the guest sent on the free-page queue during the round, in order (START echo, STOP = 0). */
  echoed: number[];
  stop: boolean;
  /** Hinted ranges in the order they came: guest-physical address and pages. */
  ranges: Array<{ addr: number; pages: number }>;
  /** MemFree (kB) before the round, after STOP, and once recovered after DONE. */
  memFreeBefore: number; memFreeHinted: number; memFreeAfter: number;
  recovered: boolean;
  ms: number;
};

export type StepRecord = {
  index: number;
  kind: Step['kind'];
  /** One line: what happened. */
  text: string;
  ok: boolean;
  /** Guest time the step took, ms. */
  ms: number;
  data: Record<string, unknown>;
};

function actualBytes(side: GuestSide): number {
  const r = side.qmp({ execute: 'query-balloon' }) as { return?: { actual: number } };
  return r.return?.actual ?? -1;
}

function hex(n: number): string {
  return '0x' + n.toString(16);
}

async function runStep(side: GuestSide, s: RealGuestScript, step: Step, index: number): Promise<StepRecord> {
  const dev = side.device;
  const t0 = side.now();
  const rec = (ok: boolean, text: string, data: Record<string, unknown> = {}): StepRecord => ({ index, kind: step.kind, ok, text, ms: Math.round((side.now() - t0) / 1e5) / 10, data });
  switch (step.kind) {
    case 'balloon': {
      const tr0 = dev.trace!.length;
      const mi0 = await side.meminfo();
      const r = side.qmp({ execute: 'balloon', arguments: { value: step.value } });
      if ('error' in r) return rec(false, `balloon ${formatSize(step.value)}: ${r.error.desc}`);
      const want = Math.min(step.value, s.memory);
      const reached = await side.waitUntil(() => actualBytes(side) === want, step.timeout);
      const ms = Math.round((side.now() - t0) / 1e5) / 10;
      const mi1 = await side.meminfo();
      const ev = dev.trace!.slice(tr0);
      const bufs = ev.filter((e) => e.kind === 'inflate' || e.kind === 'deflate') as Array<{ kind: string; pfns: number }>;
      const pfns = bufs.reduce((n, e) => n + e.pfns, 0);
      const rounds = ev.filter((e) => e.kind === 'actual').length;
      const act = actualBytes(side);
      return rec(reached, `balloon ${formatSize(step.value)}: ${reached ? 'reached' : `NOT reached (actual ${formatSize(act)})`} in ${ms} ms; ${bufs.length} buffers, ${pfns} PFNs, ${rounds} actual updates; MemTotal ${mi0.MemTotal} -> ${mi1.MemTotal} kB`,
        { target: step.value, actual: act, reached, buffers: bufs.length, pfns, actual_updates: rounds, memtotal_before_kib: mi0.MemTotal, memtotal_after_kib: mi1.MemTotal });
    }
    case 'wait':
      await side.wait(step.time);
      return rec(true, `wait ${step.time / 1e9} s`);
    case 'stats': {
      const u0 = dev.counters.statsUpdates;
      const interval = s.balloon.stats_polling_interval / 1e9;
      side.qmp({ execute: 'qom-set', arguments: { path: BALLOON_QOM_PATH, property: 'guest-stats-polling-interval', value: 1 } });
      const fresh = await side.waitUntil(() => dev.counters.statsUpdates > u0, step.timeout);
      side.qmp({ execute: 'qom-set', arguments: { path: BALLOON_QOM_PATH, property: 'guest-stats-polling-interval', value: interval } });
      const gs = side.qmp({ execute: 'qom-get', arguments: { path: BALLOON_QOM_PATH, property: 'guest-stats' } }) as { return: { stats: Record<string, number> } };
      const sent = Object.entries(gs.return.stats).filter(([, v]) => v >= 0);
      return rec(fresh, `stats: ${fresh ? 'fresh update' : 'NO fresh update (timed out)'}; ${sent.length} tags: ${sent.map(([k, v]) => `${k.replace(/^stat-/, '')}=${v}`).join(' ')}`,
        { fresh, stats: gs.return.stats });
    }
    case 'free_page_hint': {
      const rounds: HintRound[] = [];
      let ok = true;
      for (let i = 0; i < step.rounds; i++) {
        const r0 = side.now();
        const tr0 = dev.trace!.length;
        const ranges: Array<{ addr: number; pages: number }> = [];
        const prevHook = dev.onFreePageHint;
        dev.onFreePageHint = (addr, len) => { ranges.push({ addr, pages: Math.ceil(len / TARGET_PAGE_SIZE) }); prevHook?.(addr, len); };
        const memFreeBefore = (await side.meminfo()).MemFree;
        if (!virtioBalloonFreePageStart(dev)) { dev.onFreePageHint = prevHook; return rec(false, 'free_page_hint: FREE_PAGE_HINT was not negotiated'); }
        const requested = dev.freePageHintCmdId;
        const stopped = await side.waitUntil(() => dev.freePageHintStatus === FreePageHintStatus.stop, step.timeout);
        const memFreeHinted = (await side.meminfo()).MemFree;
        virtioBalloonFreePageDone(dev);
        let memFreeAfter = memFreeHinted;
        const recovered = await side.waitUntil(async () => {
          memFreeAfter = (await side.meminfo()).MemFree;
          return memFreeAfter >= memFreeBefore - 8 * 1024;
        }, step.timeout);
        dev.onFreePageHint = prevHook;
        const echoed = (dev.trace!.slice(tr0).filter((e) => e.kind === 'hint-cmd') as Array<{ id: number }>).map((e) => e.id);
        rounds.push({ requested, echoed, stop: stopped && echoed.includes(VIRTIO_BALLOON_CMD_ID_STOP), ranges, memFreeBefore, memFreeHinted, memFreeAfter, recovered, ms: Math.round((side.now() - r0) / 1e5) / 10 });
        if (!stopped || !recovered) ok = false;
      }
      const text = rounds.map((r, i) => `round ${i}: id ${hex(r.requested)} echoed [${r.echoed.map(hex).join(' ')}] ${r.ranges.length} ranges ${r.ranges.reduce((n, x) => n + x.pages, 0)} pages${r.stop ? ', STOP' : ', no STOP'}; MemFree ${r.memFreeBefore} -> ${r.memFreeHinted} -> ${r.memFreeAfter} kB${r.recovered ? '' : ' (NOT recovered)'}; ${r.ms} ms`).join('\n      ');
      return rec(ok, `free_page_hint x${step.rounds}:\n      ${text}`, { rounds });
    }
    case 'shell': {
      if (!side.shell) return rec(true, `shell ${JSON.stringify(step.cmd)}: skipped (the model guest has no shell)`, { skipped: true });
      const r = await side.shell(step.cmd, step.timeout);
      return rec(r.status === 0, `shell ${JSON.stringify(step.cmd)}: exit ${r.status}\n${r.output.replace(/\n$/, '').split('\n').map((l) => '      | ' + l).join('\n')}`, { status: r.status, output: r.output });
    }
    case 'alloc': {
      const what = await side.alloc(step.size);
      return rec(true, `alloc ${formatSize(step.size)}: ${what}`);
    }
  }
}

// ---------------------------------------------------------------------------------
// The device's view

export type Distribution = { count: number; total: number; min: number; median: number; max: number };

function distribution(xs: number[]): Distribution {
  if (xs.length === 0) return { count: 0, total: 0, min: 0, median: 0, max: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { count: s.length, total: s.reduce((a, b) => a + b, 0), min: s[0]!, median: s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, max: s[s.length - 1]! };
}

export type TraceSummary = {
  inflate: Distribution;
  deflate: Distribution;
  /** `actual` writes the device saw (one per round of the driver's balloon work). */
  actual_updates: number;
  stats_buffers: number;
  /** Every tag any stats buffer carried. */
  stats_tags: number[];
  /** Every command id the guest sent on the free-page queue, in order (START echoes, STOP = 0). */
  hint_ids_echoed: number[];
  hint_ranges: Distribution;
  reports: { buffers: number; blocks: number; pages: number };
};

export function summariseTrace(trace: BalloonTraceEvent[]): TraceSummary {
  const inf: number[] = [], def: number[] = [], hint: number[] = [], ids: number[] = [];
  const tags = new Set<number>();
  let actual = 0, stats = 0;
  const reports = { buffers: 0, blocks: 0, pages: 0 };
  for (const e of trace) {
    switch (e.kind) {
      case 'inflate': inf.push(e.pfns); break;
      case 'deflate': def.push(e.pfns); break;
      case 'actual': actual++; break;
      case 'stats': stats++; for (const t of e.tags) tags.add(t); break;
      case 'hint-cmd': ids.push(e.id); break;
      case 'hint': hint.push(e.pages); break;
      case 'report': reports.buffers++; reports.blocks += e.blocks; reports.pages += e.pages; break;
    }
  }
  return {
    inflate: distribution(inf), deflate: distribution(def), actual_updates: actual, stats_buffers: stats,
    stats_tags: [...tags].sort((a, b) => a - b), hint_ids_echoed: ids, hint_ranges: distribution(hint), reports,
  };
}

export type DeviceView = {
  features: string[];
  needs_reset: string | null;
  counters: BalloonDevice['counters'];
  actual_bytes: number;
  target_bytes: number;
  free_page_hint_status: string;
  /** The whole trace (the real guest's starts at its driver's probe; the model's once createVm returns). */
  trace: TraceSummary;
  /** The trace from the first step on: the same window on both sides. */
  steps_trace: TraceSummary;
};

export function deviceView(side: GuestSide, stepsFrom = 0): DeviceView {
  const dev = side.device;
  const features: string[] = [];
  for (const [bit, name] of Object.entries(BALLOON_FEATURE_NAMES)) if (hasFeature(dev.t.driverFeatures, Number(bit))) features.push(name);
  return {
    features,
    needs_reset: dev.t.status & VIRTIO_CONFIG_S_NEEDS_RESET ? dev.t.error ?? 'NEEDS_RESET' : dev.t.error,
    counters: { ...dev.counters },
    actual_bytes: actualBytes(side),
    target_bytes: dev.ramSize - dev.numPages * TARGET_PAGE_SIZE,
    free_page_hint_status: FREE_PAGE_HINT_STATUS_NAMES[dev.freePageHintStatus]!,
    trace: summariseTrace(dev.trace ?? []),
    steps_trace: summariseTrace((dev.trace ?? []).slice(stepsFrom)),
  };
}

export type SideReport = {
  kind: 'real' | 'model';
  ok: boolean;
  steps: StepRecord[];
  device: DeviceView;
  guest: { vmstat: BalloonVmstat; meminfo: MemInfo; memtotal_start_kib: number };
  /** Wall-clock ms: boot (real guest), the steps, the whole side. */
  timings: { boot_ms: number; steps_ms: number; total_ms: number };
  /** Guest time the steps took, ms (virtual for the model). */
  guest_ms: number;
};

export type RealGuestReport = { script: string; memory_bytes: number; real: SideReport; model?: SideReport };

/** Runs the script's steps against one side and reads the device's and guest's view at the end. */
export async function runSteps(side: GuestSide, s: RealGuestScript, onStep?: (r: StepRecord) => void): Promise<Omit<SideReport, 'timings'> & { steps_ms: number }> {
  const w0 = performance.now();
  const g0 = side.now();
  const memtotal0 = (await side.meminfo()).MemTotal;
  const stepsFrom = side.device.trace?.length ?? 0;
  const steps: StepRecord[] = [];
  for (let i = 0; i < s.steps.length; i++) {
    const r = await runStep(side, s, s.steps[i]!, i);
    steps.push(r);
    onStep?.(r);
  }
  const guest_ms = Math.round((side.now() - g0) / 1e5) / 10;
  const steps_ms = Math.round(performance.now() - w0);
  const device = deviceView(side, stepsFrom);
  const vmstat = await side.vmstat();
  const meminfo = await side.meminfo();
  return { kind: side.kind, ok: steps.every((r) => r.ok) && device.needs_reset === null, steps, device, guest: { vmstat, meminfo, memtotal_start_kib: memtotal0 }, guest_ms, steps_ms };
}

export type RunRealGuestOptions = RealSideOptions & {
  /** Also run the steps against the model guest. */
  diff?: boolean;
  onStep?: (side: 'real' | 'model', r: StepRecord) => void;
};

/** Runs the script against the model guest only (the model half of --diff). */
export async function runModelSide(s: RealGuestScript, onStep?: (r: StepRecord) => void): Promise<SideReport> {
  const w0 = performance.now();
  const side = modelGuestSide(s);
  const boot = Math.round(performance.now() - w0);
  const { steps_ms, ...r } = await runSteps(side, s, onStep);
  return { ...r, timings: { boot_ms: boot, steps_ms, total_ms: Math.round(performance.now() - w0) } };
}

/** Boots the real guest, runs the script (and, with diff, the model too). */
export async function runRealGuestScript(s: RealGuestScript, opts: RunRealGuestOptions = {}): Promise<RealGuestReport> {
  const w0 = performance.now();
  const side = await realGuestSide(s, opts);
  let real: SideReport;
  try {
    const { steps_ms, ...r } = await runSteps(side, s, (x) => opts.onStep?.('real', x));
    real = { ...r, timings: { boot_ms: Math.round(side.bootMs), steps_ms, total_ms: Math.round(performance.now() - w0) } };
  } finally {
    side.stop();
  }
  const report: RealGuestReport = { script: s.name, memory_bytes: s.memory, real };
  if (opts.diff) report.model = await runModelSide(s, (x) => opts.onStep?.('model', x));
  return report;
}

// ---------------------------------------------------------------------------------
// Printing

function dist(d: Distribution): string {
  return d.count === 0 ? '-' : `${d.count} bufs, ${d.total} total (min ${d.min} / median ${d.median} / max ${d.max})`;
}

function tagNames(tags: number[]): string {
  return tags.length ? `${tags.length}: ${tags.join(',')}` : '-';
}

function idList(ids: number[]): string {
  return ids.length ? ids.map((i) => (i === VIRTIO_BALLOON_CMD_ID_STOP ? 'STOP' : i === VIRTIO_BALLOON_CMD_ID_DONE ? 'DONE' : hex(i))).join(' ') : '-';
}

/** How the ranges of a hint round were ordered by address. */
function rangeOrder(ranges: Array<{ addr: number }>): string {
  if (ranges.length < 2) return ranges.length ? 'single' : '-';
  let up = 0, down = 0;
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i]!.addr > ranges[i - 1]!.addr) up++; else down++;
  }
  return down === 0 ? 'ascending' : up === 0 ? 'descending' : `mixed (${up} up, ${down} down)`;
}

function hintRounds(r: SideReport): HintRound[] {
  return r.steps.flatMap((s) => (s.kind === 'free_page_hint' ? (s.data.rounds as HintRound[]) : []));
}

/** Sizes of a round's ranges, as "count×pages" groups. */
function rangeSizes(ranges: Array<{ pages: number }>): string {
  const m = new Map<number, number>();
  for (const r of ranges) m.set(r.pages, (m.get(r.pages) ?? 0) + 1);
  return [...m.entries()].sort((a, b) => b[0] - a[0]).map(([p, n]) => `${n}×${p}p`).join(' ') || '-';
}

function memtotalChanges(r: SideReport): string {
  const b = r.steps.filter((s) => s.kind === 'balloon');
  if (!b.length) return '-';
  return b.map((s) => `${formatSize(s.data.target as number)}: ${((s.data.memtotal_after_kib as number) - r.guest.memtotal_start_kib) / 1024} MiB`).join('; ');
}

/** The rows of the side-by-side table: [what, real, model]. */
export function diffRows(real: SideReport, model: SideReport): Array<[string, string, string]> {
  const rows: Array<[string, string, string]> = [];
  const row = (what: string, f: (r: SideReport) => string): void => { rows.push([what, f(real), f(model)]); };
  row('negotiated features', (r) => r.device.features.join(',') || '-');
  row('inflate PFNs per buffer', (r) => dist(r.device.trace.inflate));
  row('deflate PFNs per buffer', (r) => dist(r.device.trace.deflate));
  row('actual updates (driver rounds)', (r) => String(r.device.trace.actual_updates));
  row('balloon steps: buffers/PFNs/updates', (r) => r.steps.filter((s) => s.kind === 'balloon').map((s) => `${s.data.buffers}/${s.data.pfns}/${s.data.actual_updates}`).join(' ; ') || '-');
  row('final actual', (r) => formatSize(r.device.actual_bytes));
  row('stats buffers (whole trace)', (r) => String(r.device.trace.stats_buffers));
  row('stats buffers (during the steps)', (r) => String(r.device.steps_trace.stats_buffers));
  row('stats tags', (r) => tagNames(r.device.trace.stats_tags));
  row('stats values (last)', (r) => { const s = r.steps.filter((x) => x.kind === 'stats').pop()?.data.stats as Record<string, number> | undefined; return s ? ['free-memory', 'total-memory', 'available-memory', 'disk-caches', 'minor-faults'].map((k) => `${k.replace('-memory', '')}=${k.endsWith('faults') ? s['stat-' + k] : Math.round(s['stat-' + k]! / 1024) + 'k'}`).join(' ') : '-'; });
  const hr = [hintRounds(real), hintRounds(model)];
  row('hint rounds', (r) => String(hintRounds(r).length));
  const n = Math.max(hr[0]!.length, hr[1]!.length);
  for (let i = 0; i < n; i++) {
    const pick = (r: SideReport) => hintRounds(r)[i];
    row(`hint round ${i}: requested / echoed`, (r) => { const x = pick(r); return x ? `${hex(x.requested)} / ${idList(x.echoed)}` : '-'; });
    row(`hint round ${i}: ranges, pages`, (r) => { const x = pick(r); return x ? `${x.ranges.length} ranges, ${x.ranges.reduce((a, b) => a + b.pages, 0)} pages` : '-'; });
    row(`hint round ${i}: range sizes`, (r) => { const x = pick(r); return x ? rangeSizes(x.ranges) : '-'; });
    row(`hint round ${i}: order by address`, (r) => { const x = pick(r); return x ? rangeOrder(x.ranges) : '-'; });
    row(`hint round ${i}: MemFree before/hinted/after`, (r) => { const x = pick(r); return x ? `${x.memFreeBefore}/${x.memFreeHinted}/${x.memFreeAfter} kB` : '-'; });
  }
  row('hint ids echoed (all)', (r) => idList(r.device.trace.hint_ids_echoed));
  row('hinted pages / ignored', (r) => `${r.device.counters.hintedPages} / ${r.device.counters.hintsIgnored}`);
  row('reports: buffers/blocks/pages', (r) => `${r.device.trace.reports.buffers}/${r.device.trace.reports.blocks}/${r.device.trace.reports.pages}`);
  row('MemTotal at start', (r) => `${r.guest.memtotal_start_kib} kB`);
  row('MemTotal change per balloon step', memtotalChanges);
  row('guest balloon_inflate/deflate/migrate', (r) => `${r.guest.vmstat.balloon_inflate}/${r.guest.vmstat.balloon_deflate}/${r.guest.vmstat.balloon_migrate}`);
  row('device inflate/deflate PFNs', (r) => `${r.device.counters.inflatePfns}/${r.device.counters.deflatePfns}`);
  row('MemTotal/MemFree/MemAvailable at end', (r) => `${r.guest.meminfo.MemTotal}/${r.guest.meminfo.MemFree}/${r.guest.meminfo.MemAvailable} kB`);
  row('NEEDS_RESET', (r) => r.device.needs_reset ?? 'no');
  row('guest time of the steps', (r) => `${r.guest_ms} ms`);
  return rows;
}

export function formatTable(header: [string, string, string], rows: Array<[string, string, string]>): string {
  const w = [0, 0, 0];
  for (const r of [header, ...rows]) r.forEach((c, i) => { w[i] = Math.max(w[i]!, c.length); });
  const line = (r: [string, string, string]) => `| ${r.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`;
  return [line(header), `|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`, ...rows.map(line)].join('\n') + '\n';
}

function formatSide(r: SideReport, title: string): string {
  const out: string[] = [];
  out.push(`== ${title} ==`);
  for (const s of r.steps) out.push(`  [${s.index}] ${s.ok ? 'ok  ' : 'FAIL'} ${s.text}`);
  const d = r.device, t = d.trace;
  out.push('device:');
  out.push(`  features ${d.features.join(',') || '-'}; NEEDS_RESET ${d.needs_reset ?? 'no'}; hint status ${d.free_page_hint_status}`);
  out.push(`  actual ${formatSize(d.actual_bytes)} (target ${formatSize(d.target_bytes)}); ${t.actual_updates} actual updates`);
  out.push(`  counters ${Object.entries(d.counters).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  out.push(`  inflate ${dist(t.inflate)}`);
  out.push(`  deflate ${dist(t.deflate)}`);
  out.push(`  stats ${t.stats_buffers} buffers (${d.steps_trace.stats_buffers} during the steps), tags ${tagNames(t.stats_tags)} (${t.stats_tags.map((x) => BALLOON_STAT_NAMES[x] ?? String(x)).join(' ')})`);
  out.push(`  hint ids echoed: ${idList(t.hint_ids_echoed)}; ranges ${dist(t.hint_ranges)}`);
  for (const [i, h] of hintRounds(r).entries()) out.push(`    round ${i}: ${hex(h.requested)} -> [${idList(h.echoed)}], ${h.ranges.length} ranges (${rangeSizes(h.ranges)}), ${rangeOrder(h.ranges)}`);
  out.push(`  reports ${t.reports.buffers} buffers, ${t.reports.blocks} blocks, ${t.reports.pages} pages`);
  out.push('guest (/proc):');
  out.push(`  vmstat balloon_inflate ${r.guest.vmstat.balloon_inflate} balloon_deflate ${r.guest.vmstat.balloon_deflate} balloon_migrate ${r.guest.vmstat.balloon_migrate}`);
  out.push(`  meminfo MemTotal ${r.guest.meminfo.MemTotal} kB (at start ${r.guest.memtotal_start_kib} kB) MemFree ${r.guest.meminfo.MemFree} kB MemAvailable ${r.guest.meminfo.MemAvailable} kB`);
  out.push(`timing: boot ${(r.timings.boot_ms / 1000).toFixed(1)} s, steps ${(r.timings.steps_ms / 1000).toFixed(1)} s wall (${(r.guest_ms / 1000).toFixed(1)} s guest time), total ${(r.timings.total_ms / 1000).toFixed(1)} s`);
  return out.join('\n') + '\n';
}

export function formatRealGuestReport(rep: RealGuestReport): string {
  let s = `real-guest script ${rep.script}  memory ${formatSize(rep.memory_bytes)}\n\n`;
  s += formatSide(rep.real, 'real guest (Linux in v86)');
  if (rep.model) {
    s += '\n' + formatSide(rep.model, 'model guest (createVm)');
    s += '\n== side by side: what the device saw ==\n';
    s += formatTable(['', 'real guest', 'model guest'], diffRows(rep.real, rep.model));
  }
  return s;
}
