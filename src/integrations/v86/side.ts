/**
 * The v86 side: a scenario's timeline run on a real Linux guest (Debian's i386 6.1
 * kernel in the v86 emulator, boot.ts) whose virtio-balloon device is balloonlab's own
 * (bridge.ts), with the device's trace on. Actions reach the guest through a
 * RealContext: QMP-shaped control of the bridged device, and the guest's serial shell.
 *
 * What of the scenario applies: `guest.memory` (v86's RAM) and `balloon:` (the
 * device's properties). The other `guest:` options describe the model guest; the real
 * guest runs Debian's kernel with its own defaults, on one vCPU (v86 emulates one).
 */
import type { Scenario } from '../../scenario/schema.js';
import { ScenarioError } from '../../scenario/schema.js';
import { formatSize } from '../../scenario/units.js';
import { balloonDeviceOptions, checkSides } from '../../scenario/runner.js';
import type { RealContext } from '../../actions/action.js';
import { deviceView, type DeviceView } from '../../report/balloon_trace.js';
import { parseMeminfo, parseVmstat, diffProbe, splitProbeOutput, DIFF_PROBE_COMMAND } from '../../report/proc_parse.js';
import { ramRssBytes } from '../../host/ram.js';
import { bootRealGuest, type RealGuest } from './boot.js';
import { attachBalloonlabBalloon, type BalloonBridge } from './bridge.js';
import { runRealTimeline, type RealRunResult, type RealEvent } from '../real/runner.js';

const MiB = 2 ** 20;
/** v86's RAM limits for this guest: the kernel and busybox need 64 MiB; above 1 GiB v86's 32-bit guest needs highmem tricks that are not tried. */
export const V86_MEMORY_MIN = 64 * MiB;
export const V86_MEMORY_MAX = 1024 * MiB;

export type V86RunResult = RealRunResult & { engine: 'v86'; device: DeviceView };

/** Refuses, before boot, what the v86 side cannot do: its memory limits, more vCPUs, actions it has no run for. */
export function checkV86Scenario(s: Scenario, source: string): void {
  const m = s.guest.memory;
  if (m < V86_MEMORY_MIN || m > V86_MEMORY_MAX || m % (4 * MiB) !== 0) {
    throw new ScenarioError(`${source}: guest.memory: the v86 real guest takes a multiple of 4MiB from ${formatSize(V86_MEMORY_MIN)} to ${formatSize(V86_MEMORY_MAX)}, got ${formatSize(m)}`);
  }
  if (s.guest.vcpus !== 1) throw new ScenarioError(`${source}: guest.vcpus: v86 emulates one CPU, got ${s.guest.vcpus}`);
  if (s.balloon === false) throw new ScenarioError(`${source}: balloon: the v86 real guest exists to drive balloonlab's balloon device; balloon: false leaves nothing to run`);
  if ((s.balloon.page_type ?? 'offline') !== 'offline') throw new ScenarioError(`${source}: balloon.page_type: the v86 real guest runs Linux 6.1, whose balloon pages are PG_offline`);
  if (s.balloon.free_page_hint === 'v33') throw new ScenarioError(`${source}: balloon.free_page_hint: the v86 real guest's Linux 6.1 driver hints free pages the upstream way (true or upstream); v33 is the model's only`);
  checkSides(s, 'v86', source);
}

/** The meminfo fields the differential report follows entry by entry. */
export function pickMeminfo(m: Record<string, number>): Record<string, number> {
  return { MemTotal: m.MemTotal ?? 0, MemFree: m.MemFree ?? 0, MemAvailable: m.MemAvailable ?? 0 };
}

const sleep = (ns: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ns / 1e6)));

/** A RealContext over a booted v86 guest and its bridged device. */
export function v86Context(guest: RealGuest, bridge: BalloonBridge, ramSize: number): RealContext {
  const t0 = performance.now();
  const now = () => Math.round((performance.now() - t0) * 1e6);
  return {
    engine: 'v86',
    ramSize,
    balloonTargetPages: null,
    qmp: async (cmd) => { bridge.tick(); return bridge.qmp(cmd); },
    shell: (cmd, timeoutNs) => guest.exec(cmd, Math.ceil(timeoutNs / 1e6)),
    now,
    sleep: async (ns) => { await sleep(ns); bridge.tick(); },
    async waitUntil(cond, timeoutNs) {
      const start = now();
      for (;;) {
        bridge.tick();
        if (await cond()) return { reached: true, waited_ns: now() - start };
        if (now() - start >= timeoutNs) return { reached: false, waited_ns: now() - start };
        await sleep(50e6);
      }
    },
    hostRssBytes: () => ramRssBytes(bridge.ram),
  };
}

export type V86RunOptions = {
  cacheDir?: string;
  bootTimeoutMs?: number;
  /** Called as each entry's event is recorded. */
  onEntry?: (i: number, ev: RealEvent) => void;
};

/** Boots the v86 guest with balloonlab's device, runs the timeline, reads the guest's /proc at the end. */
export async function runV86Scenario(s: Scenario, opts: V86RunOptions = {}): Promise<V86RunResult> {
  const w0 = performance.now();
  let bridge: BalloonBridge | null = null;
  const guest = await bootRealGuest({
    memoryBytes: s.guest.memory,
    ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
    ...(opts.bootTimeoutMs ? { timeoutMs: opts.bootTimeoutMs } : {}),
    v86Options: { virtio_balloon: true },
    beforeBoot: (emulator) => {
      bridge = attachBalloonlabBalloon(emulator, s.balloon === false ? {} : balloonDeviceOptions(s.balloon));
      bridge.device.trace = [];
    },
  });
  const br = bridge! as BalloonBridge;
  try {
    const memtotal0 = parseMeminfo(await guest.run('cat /proc/meminfo')).MemTotal ?? 0;
    const from = br.device.trace!.length;
    const w1 = performance.now();
    const timeline = await runRealTimeline(s, v86Context(guest, br, s.guest.memory), {
      ...(opts.onEntry ? { onEntry: opts.onEntry } : {}),
      probe: async () => diffProbe(splitProbeOutput(await guest.run(DIFF_PROBE_COMMAND))),
    });
    const w2 = performance.now();
    br.tick();
    const device = deviceView(br.device, from);
    const vmstat = parseVmstat(await guest.run('cat /proc/vmstat'));
    const meminfo = parseMeminfo(await guest.run('cat /proc/meminfo'));
    return {
      engine: 'v86', scenario: s.name, memory_bytes: s.guest.memory, timeline, device,
      guest: { vmstat, meminfo, memtotal_start_kib: memtotal0 },
      timings: { boot_ms: Math.round(guest.bootMs), timeline_ms: Math.round(w2 - w1), total_ms: Math.round(performance.now() - w0) },
    };
  } finally {
    br.detach();
    guest.stop();
  }
}
