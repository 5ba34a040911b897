/**
 * balloonlab as a library: create and boot guests, drive the allocator, run
 * scenarios, and read the same views the CLI prints.
 */
export { VERSION } from './version.js';
export { createGuest, defaultGuestConfig, type Guest, type GuestConfig } from './guest/guest.js';
export { DEFAULT_BOOT, type BootParams } from './guest/mm/boot.js';
export { memLayout, physPfn, memmapPfn, GuestConfigError, type MemLayout } from './guest/mm/layout.js';
export {
  NO_PAGE, MAX_ORDER, PAGEBLOCK_ORDER, PAGEBLOCK_NR_PAGES, PAGE_SIZE, Owner, PageType, PG, MigrateType,
  MIGRATETYPE_NAMES, OWNER_NAMES, pageFlags, pageTypeOf, pageOrder, pageOwner, pageRefcount, pageMapping,
  type MemMap,
} from './guest/mm/memmap.js';
export { ZoneType, ZONE_NAMES, type Zone, type PgData } from './guest/mm/mmzone.js';
export { allocPages, freePages, drainAllPages } from './guest/mm/page_alloc.js';
export * from './guest/mm/gfp.js';
export { checkPgdat, assertPgdat, censusPgdat, InvariantError, type PageCensus } from './guest/mm/check.js';
export { vmstatEntries, vmstatObject } from './guest/mm/vmstat.js';
export { createSim, simAt, simAfter, simRunUntil, type Sim } from './sim/clock.js';
export { createRng, rngNext, rngBelow, rngFloat, type Rng } from './sim/rng.js';
export { COSTS, defaultCostTable, type CostTable } from './sim/cost.js';
export { loadScenarioText, runScenario, type ResultDocument, type RunOptions } from './scenario/runner.js';
export { validateScenarioFile, ScenarioError, type Scenario } from './scenario/schema.js';
export { parseSize, parseTime } from './scenario/units.js';
export { createVm, checkVm, assertVm, checkMigrationDestination, guestLivePages, pcRamRanges, type Vm, type VmConfig } from './machine/machine.js';
export { createHostVm, hostMigrate, type HostVm, type HostVmConfig } from './host/vm.js';
export { qmpExecute, BALLOON_QOM_PATH, type QmpCommand, type QmpResponse } from './host/qmp.js';
export {
  createBalloonDevice, virtioBalloonToTarget, virtioBalloonStat, balloonStatsGetAll, balloonStatsSetPollInterval,
  virtioBalloonFreePageStart, virtioBalloonFreePageStop, virtioBalloonFreePageDone, QEMU_BALLOON_DEFAULTS, FreePageHintStatus,
  type BalloonDevice, type BalloonDeviceOptions,
} from './host/virtio_balloon.js';
export { type RamBacking, ramRssBytes } from './host/ram.js';
export { virtballoonProbe, DEFAULT_DRIVER_OPTIONS, type VirtioBalloon, type VirtioBalloonDriverOptions } from './guest/drivers/virtio_balloon.js';
export * from './virtio/virtio_balloon.js';
