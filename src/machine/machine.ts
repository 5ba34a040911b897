/**
 * The machine: the composition root that builds a guest and the host side of its VM
 * and wires them where real hardware does — guest-physical memory and the virtio
 * transport (the guest's driver probes the host's device there), and the hardware's
 * page writes (the guest touching its RAM, which the host sees as page faults and
 * dirty-log bits). It owns the simulation and the cost table both sides charge from,
 * and holds the checks that need both sides: the page map against the host's ballooned
 * pages, and which guest pages a migration had to carry.
 *
 * Nothing else imports both src/guest and src/host (docs/architecture.md). QEMU's
 * machine code plays the same part: it builds the RAM blocks and the devices, while
 * migration/ram.c sees only RAM and dirty bitmaps.
 */
import { type Sim, createSim } from '../sim/clock.js';
import { type CostTable, type CostOverrides, type Accel, costTable, guestCostTable } from '../sim/cost.js';
import { type Guest, type GuestConfig, createGuest } from '../guest/guest.js';
import { Kthread, schedKthread } from '../guest/sched.js';
import { type MemLayout, physPfn, memmapPfn } from '../guest/mm/layout.js';
import { Owner, PAGE_SIZE, pageMapping, pageOwner, pageTypeOf, PageType, listNext } from '../guest/mm/memmap.js';
import { checkPgdat, InvariantError } from '../guest/mm/check.js';
import { type VirtioBalloon, type VirtioBalloonDriverOptions, virtballoonProbe } from '../guest/drivers/virtio_balloon.js';
import { type RamRange } from '../virtio/guest_memory.js';
import { ramWrite, ramCopy, RamWrite, RamPageState, PageContent } from '../host/ram.js';
import { type BalloonDevice, type BalloonDeviceOptions } from '../host/virtio_balloon.js';
import { type HostVm, createHostVm } from '../host/vm.js';
import { type MigrationState, migrationCheckDestination } from '../host/migration.js';

const GiB = 1024 * 1024 * 1024;

export type VmConfig = {
  guest: GuestConfig;
  /**
   * The virtio-balloon device and the guest's driver options; null: no balloon device.
   * `more`: further balloon devices (each its own transport, driver instance and
   * balloon_dev_info; the driver's build options are the guest's, shared).
   */
  balloon: { device: Partial<BalloonDeviceOptions>; driver: Partial<VirtioBalloonDriverOptions>; id?: string; more?: Array<{ id: string; device: Partial<BalloonDeviceOptions> }> } | null;
  /** QEMU -mem-prealloc: all of guest RAM is backed from the start. */
  memPrealloc: boolean;
  /** Costs that differ from the cost table's defaults, by name (a scenario's `costs:`). */
  costs?: CostOverrides;
  /**
   * QEMU -accel (default kvm). tcg: the guest's code is emulated — zeroing a page, a
   * balloon leak round's pages and a writer's stores cost the guest TCG's figures
   * (guestCostTable, vcpuStoreNs), and
   * migration tracks dirty pages through the softmmu TLB (host/migration.ts).
   */
  accel?: Accel;
};

/** One virtual machine: a guest and the host side of its VM, on one clock. */
export type Vm = {
  config: VmConfig;
  sim: Sim;
  costs: CostTable;
  guest: Guest;
  /** QEMU's side: RAM and its backing, the balloon device, migration. */
  host: HostVm;
  /** The guest's virtio_balloon driver, probed at creation (null without a balloon device). */
  driver: VirtioBalloon | null;
  /** Every balloon device: its id, the host's device and the guest's driver instance bound to it; the first is `driver`'s. */
  balloons: Array<{ id: string; device: BalloonDevice; driver: VirtioBalloon }>;
};

/**
 * The pc machine's RAM map (QEMU pc_memory_init): RAM below the PCI hole from 0, the
 * rest from 4 GiB. The guest reads the same split from e820 (layout.ts).
 */
export function pcRamRanges(layout: MemLayout): RamRange[] {
  const lowBytes = layout.lowmemPages * PAGE_SIZE;
  const highBytes = (layout.nrPages - layout.lowmemPages) * PAGE_SIZE;
  const ranges = [{ start: 0, end: lowBytes }];
  if (highBytes > 0) ranges.push({ start: 4 * GiB, end: 4 * GiB + highBytes });
  return ranges;
}

/**
 * Creates the machine, boots the guest and probes its balloon driver. Both sides charge
 * from one cost table: the defaults with config.costs applied (or `costs`, given whole).
 */
export function createVm(config: VmConfig, sim: Sim = createSim(), costs: CostTable = costTable(config.costs)): Vm {
  const accel = config.accel ?? 'kvm';
  // the guest's code pays the accelerator's figures (under KVM the same table)
  const guest = createGuest(config.guest, sim, guestCostTable(costs, accel));
  const { layout, pgdat } = guest;
  const more = config.balloon?.more ?? [];
  const host = createHostVm({
    ramSize: config.guest.memoryBytes, ranges: pcRamRanges(layout), memPrealloc: config.memPrealloc, balloon: config.balloon?.device ?? null, accel, vcpus: config.guest.vcpus,
    ...(config.balloon?.id !== undefined ? { balloonId: config.balloon.id } : {}),
    ...(more.length ? { moreBalloons: more.map((b) => ({ id: b.id, options: b.device })) } : {}),
  }, sim, costs);
  const ram = host.ram;
  // What boot wrote: everything that is not free (kernel, memmap, boot allocations).
  const map = pgdat.map;
  for (let pfn = 0; pfn < layout.nrPages; pfn++) {
    if (pageOwner(map, pfn) !== Owner.free) ramWrite(ram, physPfn(layout, pfn), 1, RamWrite.data);
  }
  // From now on every page the guest writes is faulted in on the host (and logged dirty during migration).
  pgdat.hooks.pageWrite = (pfn, n, what) => ramWrite(ram, physPfn(layout, pfn), n, what as number as RamWrite);
  pgdat.hooks.pageCopy = (dst, src) => ramCopy(ram, physPfn(layout, dst), physPfn(layout, src));
  // each device is probed in turn, as the virtio bus finds them; a driver instance per device
  const balloons = config.balloon ? host.balloons.map((b) => ({ id: b.id, device: b.dev, driver: virtballoonProbe(pgdat, layout, sim, host.mem, b.dev.t, config.balloon!.driver, (fn) => schedKthread(guest.sched, Kthread.balloon, fn)) })) : [];
  const driver = balloons[0]?.driver ?? null;
  const vm: Vm = { config, sim, costs, guest, host, driver, balloons };
  host.livePages = () => guestLivePages(vm);
  return vm;
}

/**
 * The vCPU time of one guest store into page `pfn` (a memmap PFN), to be taken before
 * the store. KVM: 0 (the model does not charge a guest's stores; a KVM guest writes at
 * native speed and its write-protect faults are not modelled). TCG: the emulated store
 * (tcgGuestStore), plus notdirty_write (tcgNotdirtyWrite) when the page is clean for
 * migration: dirty logging on and the page not written since the last bitmap sync, so
 * its TLB entry carries TLB_NOTDIRTY.
 */
export function vcpuStoreNs(vm: Vm, pfn: number): number {
  if (vm.host.accel !== 'tcg') return 0;
  const c = vm.costs, ram = vm.host.ram;
  const clean = ram.dirtyLogging && ram.dirty[physPfn(vm.guest.layout, pfn)] === 0;
  return c.tcgGuestStore + (clean ? c.tcgNotdirtyWrite : 0);
}

/**
 * The guest-physical pages whose contents the guest still needs, one byte per page:
 * everything but free pages (buddy and pcp), balloon pages, held free-page hints and
 * blocks out for page reporting — what a migration must deliver intact.
 */
export function guestLivePages(vm: Vm): Uint8Array {
  const { layout, pgdat } = vm.guest;
  const map = pgdat.map;
  const live = new Uint8Array(layout.maxPhysPfn);
  for (let pfn = 0; pfn < map.nrPages; pfn++) {
    const o = pageOwner(map, pfn);
    if (o === Owner.free || o === Owner.pcp || o === Owner.balloon || o === Owner.freePageHint || o === Owner.reporting) continue;
    live[physPfn(layout, pfn)] = 1;
  }
  return live;
}

/**
 * What the guest's page at memmap PFN `pfn` reads as, seen from the host's RAM: all
 * zero (never touched, discarded, or last written with zeros), and whether the host
 * holds no memory for it (a read would fault it in). For dump tools (report/mem_usage.ts).
 */
export function guestPageReadsZero(vm: Vm): (pfn: number) => boolean {
  const { layout } = vm.guest, ram = vm.host.ram;
  return (pfn) => {
    const p = physPfn(layout, pfn);
    return ram.state[p] !== RamPageState.resident || ram.content[p] === PageContent.zero;
  };
}
export function guestPageUnbacked(vm: Vm): (pfn: number) => boolean {
  const { layout } = vm.guest, ram = vm.host.ram;
  return (pfn) => ram.state[physPfn(layout, pfn)] !== RamPageState.resident;
}

/** The destination check of a finished migration, now: every page the guest holds arrived as the source has it. */
export function checkMigrationDestination(vm: Vm, m: MigrationState): string | null {
  return migrationCheckDestination(m, guestLivePages(vm));
}

/**
 * Checks the whole machine: the guest's page map, the balloon list against the pages
 * marked offline, and the host's ballooned PFNs against the guest's balloon pages.
 * Returns null when all holds, else what is wrong.
 */
export function checkVm(vm: Vm): string | null {
  const pg = checkPgdat(vm.guest.pgdat);
  if (pg !== null) return pg;
  if (!vm.balloons.length) return null;
  const map = vm.guest.pgdat.map;
  const problems: string[] = [];
  let sum = 0;
  for (const { id, device: dev, driver: drv } of vm.balloons) {
    const b = drv.vbDevInfo;
    const where = vm.balloons.length > 1 ? `${id}: ` : '';
    // the balloon list holds exactly this device's PageOffline balloon pages that are not isolated
    let listed = 0;
    for (let pfn = listNext(map, b.pages); pfn !== b.pages; pfn = listNext(map, pfn)) {
      if (pfn < 0 || pfn >= map.nrPages) { problems.push(`${where}balloon list links to ${pfn}`); break; }
      if (pageOwner(map, pfn) !== Owner.balloon || pageTypeOf(map, pfn) !== PageType.offline) problems.push(`${where}pfn ${pfn} is on the balloon list but not an offline balloon page`);
      else if (pageMapping(map, pfn) !== b.id) problems.push(`${where}pfn ${pfn} is on the balloon list but its mapping says balloon ${pageMapping(map, pfn)}`);
      if (++listed > map.nrPages) { problems.push(`${where}balloon list loops`); break; }
    }
    if (listed !== b.nrPages) problems.push(`${where}balloon list holds ${listed} pages, nrPages says ${b.nrPages}`);
    const owned = b.nrPages + b.isolatedPages;
    sum += owned;
    if (owned !== drv.numPages) problems.push(`${where}driver num_pages ${drv.numPages} but ${owned} balloon pages`);
    // the host's count agrees page by page (when the driver is not stuck mid-conversation)
    if (drv.stuck === null && !dev.opts.inhibited) {
      if (dev.inflatedPages !== owned) problems.push(`${where}host counts ${dev.inflatedPages} ballooned pages, guest ${owned}`);
      for (let p = 0; p < dev.inflated.length && problems.length < 10; p++) {
        if (!dev.inflated[p]) continue;
        const pfn = memmapPfn(vm.guest.layout, p);
        if (pfn < 0 || pageOwner(map, pfn) !== Owner.balloon) problems.push(`${where}host has guest-physical page ${p} ballooned, the guest does not`);
        else if (vm.balloons.length > 1 && pageMapping(map, pfn) !== b.id) problems.push(`${where}host has guest-physical page ${p} ballooned, the guest has it in balloon ${pageMapping(map, pfn)}`);
      }
    }
  }
  const owned = vm.guest.pgdat.ownerPages[Owner.balloon]!;
  if (owned !== sum) problems.push(`${owned} pages owned by the balloon${vm.balloons.length > 1 ? 's' : ''}, ${vm.balloons.length > 1 ? 'their lists' : 'list'} and isolated ${sum}`);
  return problems.length ? problems.slice(0, 10).join('\n') : null;
}

/** checkVm, throwing InvariantError. */
export function assertVm(vm: Vm, where = ''): void {
  const r = checkVm(vm);
  if (r !== null) throw new InvariantError(where ? `${where}: ${r}` : r);
}
