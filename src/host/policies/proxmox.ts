/**
 * Proxmox VE's auto-ballooning: `proxmox/pve-manager PVE/Service/pvestatd.pm`
 * auto_balloning and `PVE/AutoBalloon.pm` compute_alg1 (read at 138cae89), every 10 s
 * (pvestatd's $updatetime), with the VMs' figures as PVE::QemuServer::vmstatus
 * collects them (proxmox/qemu-server PVE/QemuServer.pm, its query-balloon callback).
 *
 * - goal = MemTotal x ballooning-target (node config, default 80) / 100 - memused: the
 *   bytes host memory use should change by; nothing is done within 10 MiB of it.
 * - per VM: balloon = query-balloon `actual` (the logical size), maxmem = RAM,
 *   balloon_min = the VM's `balloon` setting (minimum memory), shares (default 1000; 0
 *   opts out), freemem = the guest's free memory (Proxmox's QEMU adds free_mem to
 *   query-balloon from the balloon stats; here it is stat-free-memory from qom-get
 *   guest-stats, the same number). qemu-server sets guest-stats-polling-interval 2 at
 *   VM start.
 * - VMs without a running balloon driver (no actual), without balloon_min or with
 *   shares 0 are skipped; a VM is "comfortable" when freemem > 25 % of balloon_min and
 *   balloon >= balloon_min (idlist2), otherwise under pressure (idlist1).
 * - to grow, memory goes first to the VMs under pressure, to shrink it comes first from
 *   the comfortable ones; when that makes no progress, from all. Each VM's share of
 *   the memory above the minimums follows its shares; no VM moves more than 100 MiB
 *   ($maxchange) per run.
 */
import { definePolicy, type PolicyDecision, type PolicyHost, type PolicyVm, qmpBalloonActual, qmpGuestStats, stat } from './policy.js';

const MiB = 1024 * 1024;

export const PROXMOX_DEFAULTS = {
  /** pvestatd $updatetime, s. */
  updateTimeS: 10,
  /** Node config `ballooning-target` (%), default 80. */
  ballooningTarget: 80,
  /** auto_balloning's $maxchange, bytes. */
  maxChange: 100 * MiB,
  /** qemu-server's guest-stats-polling-interval, s. */
  statsPollingInterval: 2,
};
export type ProxmoxOptions = typeof PROXMOX_DEFAULTS;

/** One VM of vmstatus, in bytes (absent fields undefined, as Perl's). */
export type PveVmStatus = {
  balloon: number | undefined;
  balloon_min: number | undefined;
  maxmem: number;
  freemem: number | undefined;
  shares: number | undefined;
  lock?: string;
};

/** Perl's int(): truncation toward zero. */
function int(x: number): number {
  return Math.trunc(x);
}

/**
 * @proxmox PVE/AutoBalloon.pm compute_alg1's $change_func: moves up to `bytes` of
 * memory among `idlist`, by shares, at most `maxchange` per VM. `res` collects the new
 * balloon values. Returns what is left of `bytes`.
 */
function changeFunc(vmstatus: PveVmStatus[], res: Map<number, number>, idlist: number[], bytes: number, maxchange: number): number {
  let rest = bytes;
  let repeat = 1;
  const done = new Set<number>();
  let progress = 1;
  while (rest && repeat && progress) {
    repeat = 0;
    progress = 0;
    let sharesTotal = 0;
    let allocOld = 0;
    for (const vmid of idlist) {
      if (done.has(vmid)) continue;
      const d = vmstatus[vmid]!;
      const balloon = res.has(vmid) ? res.get(vmid)! : d.balloon!;
      allocOld += balloon - d.balloon_min!;
      sharesTotal += d.shares || 1000;
    }
    let changes = 0;
    const allocNew = allocOld + rest;
    for (const vmid of idlist) {
      if (done.has(vmid)) continue;
      const d = vmstatus[vmid]!;
      const shares = d.shares || 1000;
      let desired = d.balloon_min! + int((allocNew / sharesTotal) * shares);
      if (desired > d.maxmem) { desired = d.maxmem; repeat = 1; }
      else if (desired < d.balloon_min!) { desired = d.balloon_min!; repeat = 1; }
      let balloon: number;
      if (bytes > 0 && desired - d.balloon! > 0) { // grow
        const n = d.balloon! + maxchange;
        balloon = n > desired ? desired : n;
      } else if (desired - d.balloon! < 0) { // shrink
        const n = d.balloon! - maxchange;
        balloon = n > desired ? n : desired;
      } else {
        done.add(vmid);
        continue;
      }
      const diff = balloon - d.balloon!;
      if (diff !== 0) {
        const oldballoon = res.has(vmid) ? res.get(vmid)! : d.balloon!;
        res.set(vmid, balloon);
        const change = balloon - oldballoon;
        if (change !== 0) {
          changes += change;
          progress += Math.abs(diff);
          repeat = 1;
        }
      }
    }
    rest -= changes;
  }
  return rest;
}

/** @proxmox PVE/AutoBalloon.pm compute_alg1: the new balloon value (logical size, bytes) per VM index. */
export function computeAlg1(vmstatus: PveVmStatus[], goal: number, maxchange: number): Map<number, number> {
  const idlist: number[] = [], idlist1: number[] = [], idlist2: number[] = [];
  vmstatus.forEach((d, vmid) => {
    if (!d.balloon) return; // balloon driver not running
    if (!d.balloon_min) return; // no balloon value in the config
    if (d.lock === 'migrate') return;
    if (d.shares !== undefined && d.shares === 0) return;
    idlist.push(vmid);
    if (d.freemem && d.freemem > d.balloon_min * 0.25 && d.balloon >= d.balloon_min) idlist2.push(vmid);
    else idlist1.push(vmid);
  });
  const res = new Map<number, number>();
  if (goal > 10 * MiB) {
    // prioritise VMs with memory pressure
    let rest = changeFunc(vmstatus, res, idlist1, goal, maxchange);
    if (rest >= goal) rest = changeFunc(vmstatus, res, idlist, rest, maxchange); // no progress: all VMs
  } else if (goal < -10 * MiB) {
    // prioritise VMs with enough free memory
    let rest = changeFunc(vmstatus, res, idlist2, goal, maxchange);
    if (rest <= goal) rest = changeFunc(vmstatus, res, idlist, rest, maxchange);
  }
  return res;
}

/** pvestatd's vmstatus for the balloon: one entry per VM, from QMP. */
export function pveVmstatus(vms: readonly PolicyVm[]): PveVmStatus[] {
  return vms.map((vm) => {
    if (!vm.running()) return { balloon: undefined, balloon_min: undefined, maxmem: vm.ramSize, freemem: undefined, shares: vm.shares };
    const actual = qmpBalloonActual(vm);
    const free = stat(qmpGuestStats(vm), 'stat-free-memory');
    return { balloon: actual ?? undefined, balloon_min: vm.minMemory || undefined, maxmem: vm.ramSize, freemem: free ?? undefined, shares: vm.shares };
  });
}

/** @proxmox PVE/Service/pvestatd.pm auto_balloning: goal from the host, compute_alg1, then `balloon` where the target changed. */
export function autoBallooning(o: ProxmoxOptions, host: PolicyHost, vms: readonly PolicyVm[]): PolicyDecision[] {
  const mi = host.meminfo();
  // PVE::ProcFSTools::read_meminfo: memused = memtotal - memavailable
  const memused = mi.MemTotal - mi.MemAvailable;
  const goal = int((mi.MemTotal * o.ballooningTarget) / 100 - memused);
  const vmstatus = pveVmstatus(vms);
  const res = computeAlg1(vmstatus, goal, o.maxChange);
  const out: PolicyDecision[] = [];
  for (const vmid of [...res.keys()].sort((a, b) => a - b)) {
    const target = int(res.get(vmid)!);
    const current = int(vmstatus[vmid]!.balloon!);
    if (target === current) continue;
    out.push({ index: vmid, value: target });
  }
  return out;
}

export const proxmoxPolicy = definePolicy<Partial<ProxmoxOptions>>({
  name: 'proxmox',
  doc: 'Proxmox VE pvestatd auto-ballooning (compute_alg1): host use toward 80 %, by shares, 100 MiB per VM per 10 s',
  create: (options) => {
    const o = { ...PROXMOX_DEFAULTS, ...options };
    return { name: 'proxmox', intervalNs: o.updateTimeS * 1e9, statsPollingInterval: o.statsPollingInterval, run: (host, vms) => autoBallooning(o, host, vms) };
  },
});
