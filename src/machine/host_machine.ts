/**
 * A host machine: many VMs (each a guest and its QEMU side, machine.ts) on one host
 * (host/host.ts) whose RAM and swap they share. Each VM keeps its own clock (its guest's
 * timers, workloads and devices run on it); the runner steps the clocks in time order
 * (scenario/host_runner.ts), so a VM the host's OOM killer stopped simply is not stepped
 * again — as a killed QEMU process's vCPUs never run again.
 *
 * What this layer wires, beyond machine.ts: the guest's page-write seam goes through the
 * host, so that a write faulting pages in checks the host's watermarks (kswapd, direct
 * reclaim, the OOM killer), and a write to a page the host swapped out costs the guest's
 * vCPU the host's swap-in (hostSwapInPage) and the host's direct reclaim its time. The
 * guest never learns why: the time shows up as time its task took.
 */
import { type Sim, createSim } from '../sim/clock.js';
import { type CostTable, costTable } from '../sim/cost.js';
import { physPfn } from '../guest/mm/layout.js';
import { ramWrite, ramCopy, RamWrite } from '../host/ram.js';
import { type Host, type HostConfig, createHost, hostAddVm, hostAllocCheck, checkHost } from '../host/host.js';
import { type Vm, type VmConfig, createVm, checkVm } from './machine.js';

/** One VM on the host, with what the host made its guest pay. */
export type HostMachineVm = {
  name: string;
  vm: Vm;
  /** Its index in host.guests. */
  index: number;
  /** vCPU time its guest waited for host swap-ins and spent in the host's direct reclaim, ns. */
  hostSwapInNs: number;
  hostReclaimNs: number;
};

export type HostMachine = {
  host: Host;
  vms: HostMachineVm[];
};

/**
 * Creates the host and boots every VM on it (each on its own clock, from its own
 * config and cost table), in order: a VM that does not fit next to the ones before it
 * may get a VM killed already at boot.
 */
export function createHostMachine(config: HostConfig, vms: Array<{ name: string; config: VmConfig }>, hostSim: Sim = createSim(), costs: CostTable = costTable()): HostMachine {
  const host = createHost(config, hostSim, costs);
  const hm: HostMachine = { host, vms: [] };
  for (const v of vms) {
    const vm = createVm(v.config, createSim());
    const index = hostAddVm(host, v.name, vm.host);
    const entry: HostMachineVm = { name: v.name, vm, index, hostSwapInNs: 0, hostReclaimNs: 0 };
    wireHostSeam(hm, entry);
    hm.vms.push(entry);
    hostAllocCheck(host);
  }
  return hm;
}

/**
 * The guest's page writes and copies reach its RAM through the host: a swap-in costs
 * the writing vCPU hostSwapInPage per page, a write that left the host short of free
 * memory costs it the direct reclaim it had to do (pgdat.tasks.stallNs: the time of the
 * burst running now, sched.ts). A stopped VM's writes change only its own dead RAM.
 */
function wireHostSeam(hm: HostMachine, entry: HostMachineVm): void {
  const { host } = hm;
  const vm = entry.vm;
  const { layout, pgdat } = vm.guest;
  const ram = vm.host.ram;
  const g = host.guests[entry.index]!;
  const swapInNs = vm.costs.hostSwapInPage;
  // what a write that faulted pages in costs the vCPU doing it
  const charge = (swapIns0: number, resident0: number) => {
    let ns = 0;
    if (ram.swapIns !== swapIns0) {
      const t = (ram.swapIns - swapIns0) * swapInNs;
      entry.hostSwapInNs += t;
      ns += t;
    }
    if (ram.residentPages > resident0) {
      const t = hostAllocCheck(host);
      entry.hostReclaimNs += t;
      ns += t;
    }
    if (ns > 0) pgdat.tasks.stallNs += ns;
  };
  // NOTE: the page-write seam is the allocator's hot path: the common write (pages
  // already resident) costs two reads and a compare here.
  pgdat.hooks.pageWrite = (pfn, n, what) => {
    const s0 = ram.swapIns, r0 = ram.residentPages;
    ramWrite(ram, pfn < layout.lowmemPages ? pfn : pfn + layout.holePages, n, what as number as RamWrite);
    if (ram.residentPages !== r0 && g.running) charge(s0, r0);
  };
  pgdat.hooks.pageCopy = (dst, src) => {
    const s0 = ram.swapIns, r0 = ram.residentPages;
    ramCopy(ram, physPfn(layout, dst), physPfn(layout, src));
    if ((ram.residentPages !== r0 || ram.swapIns !== s0) && g.running) charge(s0, r0);
  };
}

/** Checks every running VM (checkVm) and the host's accounting; null when all holds. */
export function checkHostMachine(hm: HostMachine): string | null {
  for (const e of hm.vms) {
    if (!hm.host.guests[e.index]!.running) continue;
    const r = checkVm(e.vm);
    if (r !== null) return `${e.name}: ${r}`;
  }
  return checkHost(hm.host);
}
