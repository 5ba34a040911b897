/**
 * The host's side of one virtual machine, as QEMU holds it: guest RAM (its bytes where
 * something wrote real ones, and the host memory backing it), the virtio-balloon
 * device on its transport, the migration of that RAM and its parameters.
 *
 * It knows nothing of the guest's kernel: guest RAM is host RAM here (content classes,
 * a dirty log, a resident set), the guest reaches the device only through the
 * transport and guest-physical memory, and what the guest considers live comes from
 * outside (the machine, src/machine/, installs `livePages` for the migration check).
 * A host running several VMs holds one HostVm per QEMU process.
 */
import { type Sim } from '../sim/clock.js';
import { type CostTable, type Accel } from '../sim/cost.js';
import { type GuestMemory, type RamRange, TARGET_PAGE_SIZE, createGuestMemory } from '../virtio/guest_memory.js';
import { type RamBacking, createRamBacking, ramTouch } from './ram.js';
import { type BalloonDevice, type BalloonDeviceOptions, createBalloonDevice } from './virtio_balloon.js';
import { type MigrationState, type MigrationParams, QEMU_MIGRATION_DEFAULTS, migrateStart } from './migration.js';

export type HostVmConfig = {
  /** Guest RAM in bytes (QEMU's ram_size, -m). */
  ramSize: number;
  /** Where guest RAM sits in guest-physical address space (the machine type's memory map). */
  ranges: RamRange[];
  /** -mem-prealloc: all of guest RAM is backed from the start. */
  memPrealloc: boolean;
  /** The virtio-balloon device's properties; null: the VM has no balloon device. */
  balloon: Partial<BalloonDeviceOptions> | null;
  /** Its id (-device virtio-balloon,id=...; QOM path /machine/peripheral/<id>). Default balloon0. */
  balloonId?: string;
  /**
   * More balloon devices, each on its own transport. QEMU itself refuses a second one
   * (qemu_add_balloon_handler: "Only one balloon device is supported"); the model's
   * device has no such global and QMP here addresses each by id (qmp.ts).
   */
  moreBalloons?: Array<{ id: string; options: Partial<BalloonDeviceOptions> }>;
  /** -accel: kvm (the default) or tcg; decides how dirty pages are tracked during migration. */
  accel?: Accel;
  /** -smp: the vCPUs (TCG resets each one's TLB after a bitmap sync). Default 1. */
  vcpus?: number;
};

export type HostVm = {
  config: HostVmConfig;
  sim: Sim;
  costs: CostTable;
  /** Guest RAM in bytes. */
  ramSize: number;
  /** The accelerator (-accel) and the vCPUs (-smp). */
  accel: Accel;
  vcpus: number;
  /** Guest-physical memory's bytes (rings and buffers). */
  mem: GuestMemory;
  /** The host's backing of guest RAM (resident set, dirty log). */
  ram: RamBacking;
  /** The first balloon device (the one QEMU's balloon commands drive), or null. */
  balloon: BalloonDevice | null;
  /** Every balloon device with its id, the first one first. */
  balloons: Array<{ id: string; dev: BalloonDevice }>;
  /** The last migration started, if any, and the parameters the next one uses (migrate-set-parameters). */
  migration: MigrationState | null;
  migrationParams: MigrationParams;
  /**
   * Which guest-physical pages hold data the guest still needs, for the migration
   * destination check (one byte per page). Only the machine knows; null: all of RAM.
   */
  livePages: (() => Uint8Array) | null;
};

/** The id libvirt gives the balloon device (-device virtio-balloon,id=balloon0). */
export const BALLOON_DEVICE_ID = 'balloon0';

/** The balloon device with QOM id `id`, or null. */
export function hostBalloonById(vm: HostVm, id: string): BalloonDevice | null {
  return vm.balloons.find((b) => b.id === id)?.dev ?? null;
}

/** Creates the VM's host side: RAM (backed now with -mem-prealloc), and the balloon device if it has one. */
export function createHostVm(config: HostVmConfig, sim: Sim, costs: CostTable): HostVm {
  const mem = createGuestMemory(config.ranges);
  const maxPhysPfn = Math.max(...config.ranges.map((r) => r.end)) / TARGET_PAGE_SIZE;
  const ram = createRamBacking(maxPhysPfn);
  if (config.memPrealloc) {
    for (const r of config.ranges) ramTouch(ram, r.start / TARGET_PAGE_SIZE, (r.end - r.start) / TARGET_PAGE_SIZE);
  }
  const balloon = config.balloon ? createBalloonDevice(sim, mem, ram, config.ramSize, costs, config.balloon) : null;
  const balloons = balloon ? [{ id: config.balloonId ?? BALLOON_DEVICE_ID, dev: balloon }] : [];
  for (const b of balloon ? config.moreBalloons ?? [] : []) balloons.push({ id: b.id, dev: createBalloonDevice(sim, mem, ram, config.ramSize, costs, b.options) });
  return { config, sim, costs, ramSize: config.ramSize, accel: config.accel ?? 'kvm', vcpus: config.vcpus ?? 1, mem, ram, balloon, balloons, migration: null, migrationParams: { ...QEMU_MIGRATION_DEFAULTS }, livePages: null };
}

/**
 * @qemu migration/migration.c qmp_migrate
 * Starts migrating the VM's RAM with `params` (QEMU's defaults for what is not given).
 * Throws a RangeError while another migration is in progress, as QEMU refuses one.
 */
export function hostMigrate(vm: HostVm, params: Partial<MigrationParams> = {}): MigrationState {
  if (vm.migration && vm.migration.status !== 'completed' && vm.migration.status !== 'failed') throw new RangeError('There\'s a migration process in progress');
  const m = migrateStart(vm, params);
  vm.migration = m;
  return m;
}
