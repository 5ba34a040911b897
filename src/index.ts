/**
 * balloonlab as a library: create and boot guests, drive the allocator, run
 * scenarios, and read the same views the CLI prints.
 */
export { VERSION } from './version.js';
export { createGuest, defaultGuestConfig, type Guest, type GuestConfig } from './guest/guest.js';
export { DEFAULT_BOOT, type BootParams } from './guest/mm/boot.js';
export { InputError } from './sim/errors.js';
export { memLayout, physPfn, memmapPfn, GuestConfigError, type MemLayout } from './guest/mm/layout.js';
export {
  NO_PAGE, MAX_ORDER, PAGEBLOCK_ORDER, PAGEBLOCK_NR_PAGES, PAGE_SIZE, Owner, PageType, PG, MigrateType,
  MIGRATETYPE_NAMES, OWNER_NAMES, pageFlags, pageTypeOf, pageOrder, pageOwner, pageRefcount, pageMapping,
  type MemMap,
} from './guest/mm/memmap.js';
export { ZoneType, ZONE_NAMES, type Zone, type PgData } from './guest/mm/mmzone.js';
export { allocPages, freePages, drainAllPages, getFromFreePageList } from './guest/mm/page_alloc.js';
export * from './guest/mm/gfp.js';
export { checkPgdat, assertPgdat, censusPgdat, InvariantError, type PageCensus } from './guest/mm/check.js';
export { vmstatEntries, vmstatObject } from './guest/mm/vmstat.js';
export { createSim, simAt, simAfter, simRunUntil, type Sim } from './sim/clock.js';
export { createRng, rngNext, rngBelow, rngFloat, type Rng } from './sim/rng.js';
export { COSTS, defaultCostTable, guestCostTable, type CostTable, type Accel } from './sim/cost.js';
export {
  loadScenarioText, runScenario, scenarioEnd, scenarioVmConfig, balloonDeviceOptions, checkSides,
  type ResultDocument, type RunOptions, type RunResult,
} from './scenario/runner.js';
export { validateScenario, validateScenarioFile, ScenarioError, type Scenario, type ScenarioFile, type Action } from './scenario/schema.js';
export { parseSize, parseTime, formatSize, formatTime, UnitError } from './scenario/units.js';
export {
  ACTIONS, ACTION_NAMES, actionDef, actionsInfo, actionsMarkdown, eventsOfKind,
  type ActionName, type ActionEvent, type ResultEvent, type ResultEventKind, type EventOfKind, type ActionInfo,
  type KernelBuildDoneEvent, type StressHighallocDoneEvent, type MigrationCompletedEvent, type SkippedEvent,
} from './actions/index.js';
export { defineAction, actionSides, ActionError, type ActionDef, type ModelContext, type RealContext, type RealEngine, type Side, type WaitResult } from './actions/action.js';
export {
  procVmstat, procBuddyinfo, procPagetypeinfo, procMeminfo, procZoneinfo, procSlabinfo, procExtfragIndex, procUnusableIndex, pageTypes,
  pageTypesSummary, freeBlocksPerOrder, pageblockCounts,
} from './report/proc.js';
export { kpageflags } from './report/kpageflags.js';
export { defaultCompareRows, formatCompare, formatCompareGroups, freePageHintRows, mmtestsVmstatRows, lastEvent, type CompareRow } from './report/compare.js';
export { freePageHintSummary, type FreePageHintSummary } from './report/free_page_hint.js';
export { parseBuddyinfo, parsePageblockCounts, parseVmstat, parseMeminfo } from './report/proc_parse.js';
export { summariseTrace, deviceView, hintRoundsOf, type DeviceView, type TraceSummary, type HintRound } from './report/balloon_trace.js';
export { resultCharts, compareCharts, memoryMapChart, memoryMapCells, isCompareDocument, type Chart, type CompareDocument } from './report/charts.js';
export { memoryMapCodes, memoryMapRecord, memoryMapDecode, MapContent, MAP_CONTENT_NAMES, MEMORY_MAP_LEGEND, type MemoryMapRecord } from './report/memory_map.js';
export { formatJson } from './report/json.js';
export { type ResultSeries, defaultSampleInterval } from './scenario/sampler.js';
export { MIN_GUEST_MEMORY, MAX_GUEST_MEMORY, guestMemoryProblem } from './guest/mm/layout.js';
export { migrateStart, queryMigrate, migrationCheckDestination, bitmapSyncNs, QEMU_MIGRATION_DEFAULTS, type MigrationState, type MigrationParams, type QueryMigrate } from './host/migration.js';
export { createVm, checkVm, assertVm, checkMigrationDestination, guestLivePages, pcRamRanges, vcpuStoreNs, type Vm, type VmConfig } from './machine/machine.js';
export { createHostVm, hostMigrate, type HostVm, type HostVmConfig } from './host/vm.js';
export { qmpExecute, BALLOON_QOM_PATH, type QmpCommand, type QmpResponse } from './host/qmp.js';
export {
  createBalloonDevice, virtioBalloonToTarget, virtioBalloonStat, balloonStatsGetAll, balloonStatsSetPollInterval,
  virtioBalloonFreePageStart, virtioBalloonFreePageStop, virtioBalloonFreePageDone, QEMU_BALLOON_DEFAULTS, FreePageHintStatus,
  FREE_PAGE_HINT_DEVICE_UPSTREAM, FREE_PAGE_HINT_DEVICE_V33, type FreePageHintDeviceDesign, type HintRound as DeviceHintRound,
  type BalloonDevice, type BalloonDeviceOptions,
} from './host/virtio_balloon.js';
export { type RamBacking, ramRssBytes } from './host/ram.js';
export {
  virtballoonProbe, DEFAULT_DRIVER_OPTIONS, FREE_PAGE_HINT_UPSTREAM, FREE_PAGE_HINT_V33, FREE_PAGE_HINT_MEM_SIZE, hintBufferPagesFor, hintBufferEntries,
  type VirtioBalloon, type VirtioBalloonDriverOptions, type FreePageHintDriverDesign, type HintReport,
} from './guest/drivers/virtio_balloon.js';
export * from './virtio/virtio_balloon.js';
