/**
 * Auto-balloon policies: host-side programs that decide each VM's balloon target, as
 * oVirt's MOM, Proxmox's pvestatd and ChromeOS's concierge do. A policy sees exactly
 * what such a daemon sees: each VM through QMP (query-balloon, qom-get guest-stats, and
 * `balloon` to set a target; the stats come at the polling interval the policy set with
 * qom-set guest-stats-polling-interval) and the host through its /proc/meminfo and
 * /proc/zoneinfo figures (host.ts hostMeminfo). ChromeOS's concierge also reads the
 * guest's /proc/zoneinfo once, through a shell in the guest (vsh): `guestZoneinfo`.
 *
 * A policy is one file with one `PolicyDef`: its name, what it needs set up, and a
 * `create` that returns its running form — state in a plain object, `run` called every
 * `intervalNs` returning the targets it wants (the runner sends them as QMP `balloon`
 * commands, in VM order). `run` only computes, so tests can feed it hand-made stats.
 */
import type { QmpCommand, QmpResponse } from '../qmp.js';
import type { HostMeminfo } from '../host.js';

/** One VM as a management daemon knows it. */
export type PolicyVm = {
  name: string;
  /** Guest RAM (QEMU -m), bytes: the largest logical size. */
  ramSize: number;
  /**
   * The management layer's floor, bytes: Proxmox's `balloon` (minimum memory), oVirt's
   * guaranteed memory (memtune min_guarantee, MOM's balloon_min). 0: none set.
   */
  minMemory: number;
  /** Proxmox's `shares` (default 1000; 0: excluded from auto-ballooning). */
  shares: number;
  /** False once the VM is gone (host OOM kill): daemons skip it. */
  running(): boolean;
  qmp(cmd: QmpCommand): QmpResponse;
  /** The guest's /proc/zoneinfo, as `vsh -- cat /proc/zoneinfo` prints it. */
  guestZoneinfo(): string;
};

/** The host as a daemon reads it. */
export type PolicyHost = {
  meminfo(): HostMeminfo;
  /** Virtual time, ns (for the daemons' own timers). */
  now(): number;
};

/** A target the policy wants: `balloon` with this logical size (bytes) for VM `index`. */
export type PolicyDecision = { index: number; value: number };

/** A policy while it runs. */
export type PolicyInstance = {
  name: string;
  /** Between runs, ns (0: never runs). */
  intervalNs: number;
  /** guest-stats-polling-interval it sets on every VM at start, whole seconds (0: leaves it). */
  statsPollingInterval: number;
  run(host: PolicyHost, vms: readonly PolicyVm[]): PolicyDecision[];
};

export type PolicyDef<O> = {
  name: string;
  /** One line for docs and `balloonlab` help. */
  doc: string;
  /** The balloon device options the management layer starts every VM with (free page reporting). */
  device?: { freePageReporting?: boolean };
  create(options: O): PolicyInstance;
};

export function definePolicy<O>(def: PolicyDef<O>): PolicyDef<O> {
  return def;
}

// ---------------------------------------------------------------------------------
// What the daemons read over QMP

/** query-balloon's `actual` (the guest's logical size, bytes), or null without a balloon. */
export function qmpBalloonActual(vm: PolicyVm): number | null {
  const r = vm.qmp({ execute: 'query-balloon' });
  if (!('return' in r)) return null;
  const a = (r.return as { actual?: unknown }).actual;
  return typeof a === 'number' ? a : null;
}

/** The guest's stats (qom-get guest-stats): by QEMU's stat names, -1 where not reported; null before the first update. */
export function qmpGuestStats(vm: PolicyVm): Record<string, number> | null {
  const r = vm.qmp({ execute: 'qom-get', arguments: { path: '/machine/peripheral/balloon0', property: 'guest-stats' } });
  if (!('return' in r)) return null;
  const v = r.return as { stats?: Record<string, number>; 'last-update'?: number };
  // before the first update every stat reads -1 (QEMU resets them before each one)
  if (!v.stats || Object.values(v.stats).every((x) => x < 0)) return null;
  return v.stats;
}

/** A stat the guest reported, or null (-1: not reported). */
export function stat(stats: Record<string, number> | null, name: string): number | null {
  if (stats === null) return null;
  const v = stats[name];
  return v === undefined || v < 0 ? null : v;
}
