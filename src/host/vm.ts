/**
 * A virtual machine: the host's side (guest RAM and its backing, a virtio-balloon
 * device on a virtio transport) and a guest booted inside it with its virtio-balloon
 * driver probed, on one virtual clock. This is where the two halves are wired — the
 * only place that holds both — and they meet only through guest-physical memory, the
 * transport and the hardware's page writes (PgData.pageWrite, the guest touching its
 * RAM, which the host sees as page faults).
 */
import { type Sim, createSim } from '../sim/clock.js';
import { type Guest, type GuestConfig, createGuest } from '../guest/guest.js';
import { physPfn, memmapPfn } from '../guest/mm/layout.js';
import { Owner, pageOwner, pageTypeOf, PageType, listNext } from '../guest/mm/memmap.js';
import { checkPgdat, InvariantError } from '../guest/mm/check.js';
import { type VirtioBalloon, type VirtioBalloonDriverOptions, virtballoonProbe } from '../guest/drivers/virtio_balloon.js';
import { type GuestMemory, createGuestMemory } from '../virtio/guest_memory.js';
import { type RamBacking, createRamBacking, ramTouch, ramWrite, ramCopy, RamWrite } from './ram.js';
import { type BalloonDevice, type BalloonDeviceOptions, createBalloonDevice } from './virtio_balloon.js';
import { type MigrationState, type MigrationParams, QEMU_MIGRATION_DEFAULTS } from './migration.js';

const GiB = 1024 * 1024 * 1024;

export type VmConfig = {
  guest: GuestConfig;
  /** The virtio-balloon device and the guest's driver options; null: no balloon device. */
  balloon: { device: Partial<BalloonDeviceOptions>; driver: Partial<VirtioBalloonDriverOptions> } | null;
  /** QEMU -mem-prealloc: all of guest RAM is backed from the start. */
  memPrealloc: boolean;
};

export type Vm = {
  config: VmConfig;
  sim: Sim;
  guest: Guest;
  /** Guest-physical memory's bytes (rings and buffers). */
  mem: GuestMemory;
  /** The host's backing of guest RAM (resident set). */
  ram: RamBacking;
  balloon: BalloonDevice | null;
  driver: VirtioBalloon | null;
  /** The last migration started (migration.ts), if any, and the parameters the next one uses. */
  migration: MigrationState | null;
  migrationParams: MigrationParams;
};

/** Creates the machine, boots the guest and probes its balloon driver. */
export function createVm(config: VmConfig, sim: Sim = createSim()): Vm {
  const guest = createGuest(config.guest, sim);
  const { layout, pgdat } = guest;
  const lowBytes = layout.lowmemPages * 4096;
  const highBytes = (layout.nrPages - layout.lowmemPages) * 4096;
  const ranges = [{ start: 0, end: lowBytes }];
  if (highBytes > 0) ranges.push({ start: 4 * GiB, end: 4 * GiB + highBytes });
  const mem = createGuestMemory(ranges);
  const ram = createRamBacking(layout.maxPhysPfn);
  if (config.memPrealloc) {
    for (const r of ranges) ramTouch(ram, r.start / 4096, (r.end - r.start) / 4096);
  }
  // What boot wrote: everything that is not free (kernel, memmap, boot allocations).
  const map = pgdat.map;
  for (let pfn = 0; pfn < layout.nrPages; pfn++) {
    const o = pageOwner(map, pfn);
    if (o !== Owner.free) ramWrite(ram, physPfn(layout, pfn), 1, RamWrite.data);
  }
  // From now on every page the guest writes is faulted in on the host (and logged dirty during migration).
  pgdat.hooks.pageWrite = (pfn, n, what) => ramWrite(ram, physPfn(layout, pfn), n, what as number as RamWrite);
  pgdat.hooks.pageCopy = (dst, src) => ramCopy(ram, physPfn(layout, dst), physPfn(layout, src));
  let balloon: BalloonDevice | null = null;
  let driver: VirtioBalloon | null = null;
  if (config.balloon) {
    balloon = createBalloonDevice(sim, mem, ram, config.guest.memoryBytes, pgdat.costs, config.balloon.device);
    driver = virtballoonProbe(pgdat, layout, sim, mem, balloon.t, config.balloon.driver);
  }
  return { config, sim, guest, mem, ram, balloon, driver, migration: null, migrationParams: { ...QEMU_MIGRATION_DEFAULTS } };
}

/**
 * Checks the whole machine: the guest's page map, the balloon list against the pages
 * marked offline, and the host's ballooned PFNs against the guest's balloon pages.
 * Returns null when all holds, else what is wrong.
 */
export function checkVm(vm: Vm): string | null {
  const pg = checkPgdat(vm.guest.pgdat);
  if (pg !== null) return pg;
  const drv = vm.driver, dev = vm.balloon;
  if (!drv) return null;
  const b = drv.vbDevInfo;
  const map = vm.guest.pgdat.map;
  const problems: string[] = [];
  // the balloon list holds exactly the PageOffline balloon pages that are not isolated
  let listed = 0;
  for (let pfn = listNext(map, b.pages); pfn !== b.pages; pfn = listNext(map, pfn)) {
    if (pfn < 0 || pfn >= map.nrPages) { problems.push(`balloon list links to ${pfn}`); break; }
    if (pageOwner(map, pfn) !== Owner.balloon || pageTypeOf(map, pfn) !== PageType.offline) problems.push(`pfn ${pfn} is on the balloon list but not an offline balloon page`);
    if (++listed > map.nrPages) { problems.push('balloon list loops'); break; }
  }
  if (listed !== b.nrPages) problems.push(`balloon list holds ${listed} pages, nrPages says ${b.nrPages}`);
  const owned = vm.guest.pgdat.ownerPages[Owner.balloon]!;
  if (owned !== b.nrPages + b.isolatedPages) problems.push(`${owned} pages owned by the balloon, list ${b.nrPages} + isolated ${b.isolatedPages}`);
  if (owned !== drv.numPages) problems.push(`driver num_pages ${drv.numPages} but ${owned} balloon pages`);
  // the host's count agrees page by page (when the driver is not stuck mid-conversation)
  if (dev && drv.stuck === null && !dev.opts.inhibited) {
    if (dev.inflatedPages !== owned) problems.push(`host counts ${dev.inflatedPages} ballooned pages, guest ${owned}`);
    for (let p = 0; p < dev.inflated.length && problems.length < 10; p++) {
      if (!dev.inflated[p]) continue;
      const pfn = memmapPfn(vm.guest.layout, p);
      if (pfn < 0 || pageOwner(map, pfn) !== Owner.balloon) problems.push(`host has guest-physical page ${p} ballooned, the guest does not`);
    }
  }
  return problems.length ? problems.slice(0, 10).join('\n') : null;
}

/** checkVm, throwing InvariantError. */
export function assertVm(vm: Vm, where = ''): void {
  const r = checkVm(vm);
  if (r !== null) throw new InvariantError(where ? `${where}: ${r}` : r);
}
