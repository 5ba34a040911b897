/**
 * oVirt's Memory Overcommitment Manager (MOM) with vdsm's balloon policy: the rules of
 * `oVirt/vdsm static/etc/vdsm/mom.d/02-balloon.policy` (read at 3fa92bb3; MOM's own
 * `oVirt/mom doc/balloon.rules`@7e561ce3 is the older form: it floors the target with
 * `min` where vdsm fixed it to `max`, and has no guaranteed-memory rule), run as MOM
 * runs them (`oVirt/mom doc/mom-balloon.conf`@0288969c): host and guest monitors every
 * 5 s, the policy engine every 10 s, moving averages (StatAvg) over the last 10
 * samples (sample-history-length).
 *
 * What the rules read, and where it comes from here:
 * - Host.mem_available and Host.StatAvg "mem_free" (mom/Collectors/HostMemory.py
 *   collect: MemTotal, and MemFree + Buffers + Cached): the host's MemTotal and MemFree
 *   (the model's host has no page cache).
 * - guest.balloon_cur / balloon_max / balloon_min (libvirt interface getVmBalloonInfo:
 *   the domain's current memory — the balloon's `actual`, QMP query-balloon — its
 *   maximum memory, and memtune/min_guarantee, which vdsm fills with the VM's
 *   guaranteed memory): query-balloon, the VM's RAM and its `min_memory`.
 * - guest.Stat "mem_unused" (libvirt memoryStats `unused` = QEMU's stat-free-memory):
 *   qom-get guest-stats. The guest-stats polling interval is set to the guest monitor's
 *   5 s (vdsm asks libvirt for that period; a modelling choice, docs/policies.md).
 * - Targets (guest.Control "balloon_target", KiB) go out as QMP `balloon` (bytes).
 *
 * Units: MOM works in KiB; so does this file, as the rules do, and targets are whole KiB.
 */
import { definePolicy, type PolicyDecision, type PolicyHost, type PolicyVm, qmpBalloonActual, qmpGuestStats, stat } from './policy.js';

/** 02-balloon.policy's constants (defvar), and MOM's intervals (mom-balloon.conf). */
export const MOM_DEFAULTS = {
  /** Host free below this share of host memory: the host is under pressure (shrink guests). */
  pressureThreshold: 0.20,
  /** At or below this: critical pressure, guests are pushed into swapping. */
  pressureCritical: 0.05,
  /** The free share an unconstrained guest would like to keep. */
  minGuestFreePercent: 0.20,
  /** Never change a guest by more than this share of its current size per run. */
  maxBalloonChangePercent: 0.05,
  /** Changes smaller than this share of the current size are not worth a balloon operation. */
  minBalloonChangePercent: 0.0025,
  /** policy-engine-interval, host/guest-monitor-interval (s), sample-history-length. */
  policyIntervalS: 10,
  monitorIntervalS: 5,
  sampleHistoryLength: 10,
  /** vdsm's balloonEnabled (the VM's balloon is managed). */
  balloonEnabled: true,
};

export type MomOptions = typeof MOM_DEFAULTS;

/** A moving average over the last `length` samples (MOM's StatAvg). */
type History = { values: number[]; length: number };

function push(h: History, v: number): void {
  h.values.push(v);
  if (h.values.length > h.length) h.values.shift();
}
function avg(h: History): number {
  let s = 0;
  for (const v of h.values) s += v;
  return h.values.length ? s / h.values.length : 0;
}

/** One guest as MOM's entity holds it: the last sample and the histories. */
export type MomGuest = {
  /** KiB; null when the collectors could not read them this time (valid() fails). */
  balloonCur: number | null;
  memUnused: number | null;
  balloonMax: number;
  balloonMin: number;
  hist: { balloonCur: History; memUnused: History };
};

export type MomState = {
  o: MomOptions;
  /** Monitor ticks so far; the policy runs every policyIntervalS / monitorIntervalS of them. */
  ticks: number;
  hostMemAvailable: number;
  hostMemFree: History;
  guests: MomGuest[];
};

export function createMomState(o: MomOptions, nVms: number): MomState {
  const h = (): History => ({ values: [], length: o.sampleHistoryLength });
  return {
    o, ticks: 0, hostMemAvailable: 0, hostMemFree: h(),
    guests: Array.from({ length: nVms }, () => ({ balloonCur: null, memUnused: null, balloonMax: 0, balloonMin: 0, hist: { balloonCur: h(), memUnused: h() } })),
  };
}

/** The host and guest monitors: one sample each (mom/HostMonitor, GuestMonitor collect). */
export function momCollect(st: MomState, host: PolicyHost, vms: readonly PolicyVm[]): void {
  const mi = host.meminfo();
  st.hostMemAvailable = mi.MemTotal / 1024;
  push(st.hostMemFree, mi.MemFree / 1024);
  vms.forEach((vm, i) => {
    const g = st.guests[i]!;
    if (!vm.running()) { g.balloonCur = null; g.memUnused = null; return; }
    const actual = qmpBalloonActual(vm);
    const unused = stat(qmpGuestStats(vm), 'stat-free-memory');
    g.balloonMax = vm.ramSize / 1024;
    g.balloonMin = vm.minMemory / 1024;
    g.balloonCur = actual === null ? null : actual / 1024;
    g.memUnused = unused === null ? null : unused / 1024;
    if (g.balloonCur !== null) push(g.hist.balloonCur, g.balloonCur);
    if (g.memUnused !== null) push(g.hist.memUnused, g.memUnused);
  });
}

/** 02-balloon.policy change_big_enough: |new - cur| > min_balloon_change_percent x cur. */
function changeBigEnough(o: MomOptions, cur: number, v: number): boolean {
  return Math.abs(v - cur) > o.minBalloonChangePercent * cur;
}

/** The guest free share the rules aim at under this host pressure (shrink_guest/grow_guest's first `if`). */
export function momGuestFreePercent(o: MomOptions, hostFreePercent: number): number {
  return hostFreePercent <= o.pressureCritical
    ? -0.05 + hostFreePercent // critical: force the guest to swap by making free memory negative
    : o.minGuestFreePercent * (hostFreePercent / o.pressureThreshold);
}

/** 02-balloon.policy shrink_guest: the new target (KiB), or null for no change. */
export function momShrinkGuest(o: MomOptions, g: MomGuest, hostFreePercent: number): number | null {
  const cur = g.balloonCur!;
  const gfp = momGuestFreePercent(o, hostFreePercent);
  const used = avg(g.hist.balloonCur) - avg(g.hist.memUnused);
  const balloonMin = Math.max(g.balloonMin, used + gfp * cur);
  let size = cur * (1 - o.maxBalloonChangePercent);
  if (size < balloonMin) size = balloonMin;
  return size <= cur && changeBigEnough(o, cur, size) ? size : null;
}

/** 02-balloon.policy grow_guest: the new target (KiB), or null for no change. */
export function momGrowGuest(o: MomOptions, g: MomGuest, hostFreePercent: number): number | null {
  const cur = g.balloonCur!;
  if (!(cur < g.balloonMax)) return null;
  const gfp = momGuestFreePercent(o, hostFreePercent);
  const used = avg(g.hist.balloonCur) - avg(g.hist.memUnused);
  const balloonMin = Math.max(g.balloonMin, used + gfp * cur);
  let size = cur * (1 + o.maxBalloonChangePercent);
  if (size < balloonMin) size = balloonMin;
  if (size > g.balloonMax) size = g.balloonMax;
  return changeBigEnough(o, cur, size) ? size : null;
}

/**
 * One evaluation of the policy (the main script, then the guaranteed-memory rules):
 * host_free_percent = StatAvg(mem_free) / mem_available; under pressure (below
 * pressure_threshold, balloon enabled) every guest shrinks, otherwise every guest
 * grows; a guest below its balloon_min is set back to it (guest_qos; a later Control
 * of the same guest replaces an earlier one, as in MOM). Guests without balloon_cur or
 * mem_unused are skipped ("Memory information is missing"). Targets in KiB.
 */
export function momEvaluate(st: MomState): Array<{ index: number; targetKiB: number }> {
  const o = st.o;
  const hostFreePercent = avg(st.hostMemFree) / st.hostMemAvailable;
  const out = new Map<number, number>();
  st.guests.forEach((g, i) => {
    if (g.balloonCur === null || g.memUnused === null) return;
    const t = hostFreePercent < o.pressureThreshold && o.balloonEnabled ? momShrinkGuest(o, g, hostFreePercent) : momGrowGuest(o, g, hostFreePercent);
    if (t !== null) out.set(i, t);
  });
  st.guests.forEach((g, i) => {
    if (g.balloonCur !== null && g.balloonCur < g.balloonMin) out.set(i, g.balloonMin);
  });
  return [...out.entries()].sort((a, b) => a[0] - b[0]).map(([index, t]) => ({ index, targetKiB: Math.floor(t) }));
}

export const momPolicy = definePolicy<Partial<MomOptions>>({
  name: 'mom',
  doc: 'oVirt MOM with vdsm 02-balloon.policy: shrink every guest 5 % per 10 s while host free < 20 %, grow 5 % otherwise',
  create: (options) => {
    const o = { ...MOM_DEFAULTS, ...options };
    let st: MomState | null = null;
    const every = Math.max(1, Math.round(o.policyIntervalS / o.monitorIntervalS));
    return {
      name: 'mom', intervalNs: o.monitorIntervalS * 1e9, statsPollingInterval: o.monitorIntervalS,
      run: (host, vms): PolicyDecision[] => {
        st ??= createMomState(o, vms.length);
        momCollect(st, host, vms);
        if (++st.ticks % every !== 0) return [];
        return momEvaluate(st).map((d) => ({ index: d.index, value: d.targetKiB * 1024 }));
      },
    };
  },
});
