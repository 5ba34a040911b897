/**
 * Pre-copy live migration of guest RAM, after QEMU's migration/migration.c
 * (migration_iteration_run, migration_update_counters, migration_completion) and
 * migration/ram.c (ram_save_setup, ram_find_and_save_block, save_zero_page,
 * migration_bitmap_sync, qemu_guest_free_page_hint).
 *
 * Setup turns dirty logging on and marks every page of guest RAM to be sent, then
 * syncs the bitmap once. Iterations walk the bitmap sending each marked page: a page
 * that reads all zero (never touched, discarded by the balloon or reporting, or
 * zeroed) goes as a 9-byte record after a scan of its 4 KiB ("duplicate"), any other
 * page as 4 KiB plus an 8-byte header ("normal"). Sending is limited by max-bandwidth
 * and the link, and costs the migration thread CPU time (the cost table). Every
 * 100 ms the measured bandwidth sets the threshold (bandwidth x downtime-limit); when
 * what is left falls below it the bitmap is synced from the dirty log (cost growing
 * with guest size) and, if still below, the VM stops and the rest is sent: downtime.
 *
 * Free page hints: around every bitmap sync QEMU's precopy notifier stops the
 * balloon's hint round before and starts a new one after (while the VM runs); at the
 * end it says DONE. A hinted range is cleared from the bitmap and from the dirty log
 * (it is not sent unless the guest writes it afterwards). Pages the guest writes
 * after the hint are logged dirty and sent in a later round.
 *
 * The accelerator decides how writes are caught and what clearing the log means
 * (docs/fidelity.md, "TCG and KVM: dirty tracking"):
 * - kvm: KVM's dirty log (KVM_MEM_LOG_DIRTY_PAGES: write-protected pages fault once,
 *   kvm_physical_sync_dirty_bitmap / KVM_GET_DIRTY_LOG per memslot at each sync). The
 *   model clears the log at the sync and re-protects the logged pages there, and a
 *   hint clears the hinted pages' log entries; QEMU with KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2
 *   clears lazily, per 1 GiB clear_bmap chunk, before a chunk's first page is sent
 *   (migration_clear_memory_region_dirty_bitmap), and a hint clears its chunks' log of
 *   the pages the last sync reported (kvm_log_clear_one_slot) — docs/model-limits.md.
 * - tcg: no KVM log. The softmmu TLB catches writes: a sync collects and zeroes the
 *   global bitmap (cpu_physical_memory_sync_dirty_bitmap, qatomic_xchg per word) and
 *   tlb_reset_dirty_range_all marks every TLB entry TLB_NOTDIRTY; the first store to
 *   a clean page takes notdirty_write, which sets its bit in
 *   ram_list.dirty_memory[DIRTY_MEMORY_MIGRATION] (the guest vCPU pays it). The log is
 *   cleared at the sync, eagerly: memory_region_clear_dirty_bitmap has no listener
 *   under TCG (only KVM's has log_clear). So a free page hint clears only the
 *   migration bitmap (qemu_guest_free_page_hint): a hinted page written after the
 *   last sync — before or after its hint, the hint allocation's own zeroing included —
 *   is collected at the next sync and sent.
 *
 * The destination keeps what it received (content class and generation per page);
 * migrationCheckDestination compares it with the source at completion, over the pages
 * the source says are live (the machine knows which; the host alone cannot tell).
 */
import { type Sim, simAfter } from '../sim/clock.js';
import { type CostTable, type Accel } from '../sim/cost.js';
import { type RamBacking, PageContent, ramReadContent } from './ram.js';
import { type GuestMemory, TARGET_PAGE_SIZE } from '../virtio/guest_memory.js';
import { type BalloonDevice, virtioBalloonFreePageStart, virtioBalloonFreePageStop, virtioBalloonFreePageDone } from './virtio_balloon.js';
import { VIRTIO_BALLOON_F_FREE_PAGE_HINT } from '../virtio/virtio_balloon.js';
import { hasFeature } from '../virtio/transport.js';

/** RAM_SAVE_FLAG header: 8 bytes (offset | flags) per page record. */
const PAGE_HEADER_BYTES = 8;
/** A zero page's record: the header and one byte. */
const ZERO_PAGE_BYTES = PAGE_HEADER_BYTES + 1;
/** BUFFER_DELAY: how often bandwidth, threshold and mbps are recomputed. */
const BUFFER_DELAY_NS = 100_000_000;
/** How much migration-thread time one simulation step covers (guest events interleave between steps). */
const STEP_NS = 10_000_000;

/** Migration parameters, by their QMP names. */
export type MigrationParams = {
  /** max-bandwidth in bytes per second (QEMU's default 128 MiB/s; `migrate_set_speed 100G` sets 100 GiB/s). */
  maxBandwidth: number;
  /** downtime-limit in milliseconds (QEMU's default 300). */
  downtimeLimitMs: number;
  /** The network between the hosts, bytes per second (not a QEMU parameter: the link). Default 10 Gbit/s. */
  linkBandwidth: number;
  /** Use the balloon's free page hints when the guest negotiated them. */
  freePageHint: boolean;
};

export const QEMU_MIGRATION_DEFAULTS: Readonly<MigrationParams> = {
  maxBandwidth: 128 * 1024 * 1024, downtimeLimitMs: 300, linkBandwidth: 1.25e9, freePageHint: true,
};

export type MigrationStatus = 'setup' | 'active' | 'device' | 'completed' | 'failed';

/** What a migration reads and drives on the source: one VM's RAM and balloon (a HostVm is one). */
export type MigrationSource = {
  sim: Sim;
  costs: CostTable;
  mem: GuestMemory;
  ram: RamBacking;
  balloon: BalloonDevice | null;
  /** The accelerator (dirty tracking, sync costs) and the vCPUs (TCG resets each one's TLB at a sync). */
  accel: Accel;
  vcpus: number;
  /** The pages the guest still needs, one byte per guest-physical page; null: all of RAM. */
  livePages: (() => Uint8Array) | null;
};

export type MigrationState = {
  vm: MigrationSource;
  params: MigrationParams;
  status: MigrationStatus;
  startNs: number;
  setupNs: number;
  endNs: number;
  downtimeNs: number;
  /** The migration bitmap: pages still to send (guest-physical PFNs). */
  bmap: Uint8Array;
  /** Pages set in bmap (migration_dirty_pages). */
  dirtyPages: number;
  /** Where the walk of the bitmap resumes. */
  cursor: number;
  /** Guest RAM pages (the `total` of query-migrate, in pages). */
  totalPages: number;
  /** Bytes on the wire; zero-page and normal-page counts; bytes of normal pages. */
  transferred: number;
  duplicate: number;
  normal: number;
  normalBytes: number;
  dirtySyncCount: number;
  /** Passes over the whole bitmap. */
  iterations: number;
  /** Migration-thread time spent (ns). */
  cpuNs: number;
  /** migration_update_counters state: the window's start and bytes, the threshold and the rates. */
  iterationStartNs: number;
  iterationInitialBytes: number;
  thresholdBytes: number;
  mbps: number;
  dirtyPagesRate: number;
  lastSyncNs: number;
  /** Free page hinting: whether it is used, pages hinted, bitmap bits it cleared (pages not sent). */
  hinting: boolean;
  hintedPages: number;
  skippedPages: number;
  /** What the destination received: content class and generation per page, and whether it got the page at all. */
  destContent: Uint8Array;
  destGen: Uint32Array;
  destReceived: Uint8Array;
  /** The destination check taken at the instant of completion (null: nothing lost), or undefined before. */
  destinationCheck: string | null | undefined;
  /** Called when the migration completes. */
  onComplete: ((m: MigrationState) => void) | null;
};

/**
 * @qemu migration/migration.c migrate_fd_connect (migration_thread)
 * Starts migrating the source's RAM now. Returns the state to follow (queryMigrate).
 */
export function migrateStart(vm: MigrationSource, params: Partial<MigrationParams> = {}): MigrationState {
  const p = { ...QEMU_MIGRATION_DEFAULTS, ...params };
  if (!(p.maxBandwidth > 0) || !(p.linkBandwidth > 0)) throw new RangeError('max-bandwidth and the link bandwidth must be positive');
  if (!(p.downtimeLimitMs >= 0)) throw new RangeError('downtime-limit must not be negative');
  const ram = vm.ram;
  const n = ram.maxPhysPfn;
  const dev = vm.balloon;
  const m: MigrationState = {
    vm, params: p, status: 'setup', startNs: vm.sim.now, setupNs: 0, endNs: 0, downtimeNs: 0,
    bmap: new Uint8Array(n), dirtyPages: 0, cursor: 0, totalPages: 0,
    transferred: 0, duplicate: 0, normal: 0, normalBytes: 0, dirtySyncCount: 0, iterations: 0, cpuNs: 0,
    iterationStartNs: 0, iterationInitialBytes: 0, thresholdBytes: 0, mbps: 0, dirtyPagesRate: 0, lastSyncNs: vm.sim.now,
    hinting: p.freePageHint && dev !== null && hasFeature(dev.t.driverFeatures, VIRTIO_BALLOON_F_FREE_PAGE_HINT),
    hintedPages: 0, skippedPages: 0,
    destContent: new Uint8Array(n), destGen: new Uint32Array(n), destReceived: new Uint8Array(n), destinationCheck: undefined, onComplete: null,
  };
  // ram_save_setup: every page of every RAM block is dirty; dirty logging starts (write-protect all)
  for (const r of vm.mem.ranges) {
    const first = r.start / TARGET_PAGE_SIZE, last = r.end / TARGET_PAGE_SIZE;
    m.bmap.fill(1, first, last);
    m.totalPages += last - first;
  }
  m.dirtyPages = m.totalPages;
  ram.dirtyLogging = true;
  ram.dirty.fill(0);
  const c = vm.costs;
  // KVM write-protects all of RAM (memory_global_dirty_log_start); TCG has nothing to
  // protect (the first sync, below, finds nothing logged yet)
  let setupNs = vm.accel === 'tcg' ? 0 : m.totalPages * c.migrationReprotectPage;
  if (m.hinting && dev) {
    dev.onFreePageHint = (addr, len, clearLog) => qemuGuestFreePageHint(m, addr, len, clearLog);
  }
  // ram_init_bitmaps: the first sync, with the precopy notifier around it
  setupNs += migrationBitmapSyncPrecopy(m);
  m.setupNs = setupNs;
  simAfter(vm.sim, setupNs, () => {
    m.status = 'active';
    m.iterationStartNs = vm.sim.now;
    m.iterationInitialBytes = m.transferred;
    migrationIterationRun(m);
  });
  return m;
}

/**
 * @qemu migration/ram.c qemu_guest_free_page_hint
 * A hinted range: its pages leave the bitmap unless written again. Under KVM they leave
 * the dirty log too (migration_clear_memory_region_dirty_bitmap_range reaches
 * kvm_log_clear); under TCG that call has no listener, so writes logged since the
 * last sync stay and the next sync puts the pages back. `clearLog` false (v33's hints,
 * whose blocks the guest does not hold) clears the bitmap only, as QEMU 4.0-6.0's
 * function did (the log clearing came in 2021, for clear_bmap: Wei Wang and Peter Xu on
 * qemu-devel, "Re: [PATCH] migration: Move bitmap_mutex out of
 * migration_bitmap_clear_dirty()", July 2021): a write since the last sync then stays
 * logged and the next sync sends the page.
 */
function qemuGuestFreePageHint(m: MigrationState, addr: number, len: number, clearLogAsked: boolean): void {
  if (m.status !== 'setup' && m.status !== 'active') return;
  const first = Math.floor(addr / TARGET_PAGE_SIZE), end = Math.min(Math.ceil((addr + len) / TARGET_PAGE_SIZE), m.bmap.length);
  const dirty = m.vm.ram.dirty;
  const clearLog = clearLogAsked && m.vm.accel !== 'tcg';
  for (let p = first; p < end; p++) {
    m.hintedPages++;
    if (clearLog) dirty[p] = 0;
    if (m.bmap[p]) { m.bmap[p] = 0; m.dirtyPages--; m.skippedPages++; }
  }
}

/**
 * @qemu migration/ram.c migration_bitmap_sync
 * Collects the dirty log into the bitmap and clears it. Returns its cost in ns: KVM
 * (kvm_physical_sync_dirty_bitmap) walks every memslot's bitmap and write-protects the
 * dirty pages again; TCG (cpu_physical_memory_sync_dirty_bitmap) walks the global
 * bitmap, exchanging its dirty words for 0, and when it found any resets every vCPU's
 * TLB to TLB_NOTDIRTY (cpu_physical_memory_dirty_bits_cleared).
 */
function migrationBitmapSync(m: MigrationState): number {
  const dirty = m.vm.ram.dirty, bmap = m.bmap;
  let newlyDirty = 0, logged = 0;
  for (let p = 0; p < dirty.length; p++) {
    if (!dirty[p]) continue;
    dirty[p] = 0;
    logged++;
    if (!bmap[p]) { bmap[p] = 1; newlyDirty++; }
  }
  m.dirtyPages += newlyDirty;
  m.dirtySyncCount++;
  const now = m.vm.sim.now;
  const span = now - m.lastSyncNs;
  if (span > 0 && m.dirtySyncCount > 1) m.dirtyPagesRate = Math.round((logged * 1e9) / span);
  m.lastSyncNs = now;
  return bitmapSyncNs(m.vm, m.totalPages, logged);
}

/**
 * What one bitmap sync over `totalPages` of RAM that collects `logged` dirty pages costs
 * the migration thread (ns), by accelerator (migrationBitmapSync says what each does).
 */
export function bitmapSyncNs(vm: Pick<MigrationSource, 'accel' | 'vcpus' | 'costs'>, totalPages: number, logged: number): number {
  const c = vm.costs;
  if (vm.accel === 'tcg') return Math.round(totalPages * c.tcgSyncPage + logged * c.tcgSyncDirtyPage + (logged > 0 ? vm.vcpus * c.tcgTlbReset : 0));
  return totalPages * c.migrationSyncPage + logged * c.migrationReprotectPage;
}

/**
 * @qemu migration/ram.c migration_bitmap_sync_precopy (with the balloon's
 * virtio_balloon_free_page_hint_notify)
 * Stop the hint round before the sync; after it, start a new one while the VM runs,
 * or say DONE when it is stopped.
 */
function migrationBitmapSyncPrecopy(m: MigrationState): number {
  const dev = m.vm.balloon;
  if (m.hinting && dev) virtioBalloonFreePageStop(dev);
  const ns = migrationBitmapSync(m);
  if (m.hinting && dev) {
    if (m.status === 'device') virtioBalloonFreePageDone(dev);
    else virtioBalloonFreePageStart(dev);
  }
  return ns;
}

/** Sends one page: its record on the wire, its contents at the destination. Returns the thread's CPU ns. */
function savePage(m: MigrationState, p: number): number {
  const ram = m.vm.ram;
  const c = m.vm.costs;
  const content = ramReadContent(ram, p);
  m.destReceived[p] = 1;
  m.destContent[p] = content;
  m.destGen[p] = content === PageContent.data ? ram.gen[p]! : 0;
  if (content === PageContent.zero) {
    // save_zero_page: scanned whole, sent as a flag
    m.duplicate++;
    m.transferred += ZERO_PAGE_BYTES;
    return c.migrationZeroPage;
  }
  m.normal++;
  m.normalBytes += TARGET_PAGE_SIZE;
  m.transferred += TARGET_PAGE_SIZE + PAGE_HEADER_BYTES;
  return c.migrationNormalPage;
}

/** Bytes per ns the stream can carry. */
function wireRate(m: MigrationState): number {
  return Math.min(m.params.maxBandwidth, m.params.linkBandwidth) / 1e9;
}

/**
 * @qemu migration/ram.c ram_find_and_save_block (ram_save_iterate)
 * Sends marked pages from the cursor on for up to `budgetNs` of time (the larger of
 * the thread's CPU time and the wire time). At the end of the bitmap a pass is over.
 * Returns the time taken.
 */
function ramSaveIterate(m: MigrationState, budgetNs: number): number {
  const bmap = m.bmap, n = bmap.length, rate = wireRate(m);
  let cpu = 0;
  const bytes0 = m.transferred;
  let p = m.cursor;
  let looked = 0;
  while (m.dirtyPages > 0) {
    if (p >= n) { p = 0; m.iterations++; }
    // dirtyPages counts the bits set in bmap; two passes without one would be a bug, never a hang
    if (++looked > 2 * n) throw new Error(`migration: ${m.dirtyPages} dirty pages counted but none in the bitmap`);
    if (bmap[p]) {
      bmap[p] = 0;
      m.dirtyPages--;
      cpu += savePage(m, p);
      if (Math.max(cpu, (m.transferred - bytes0) / rate) >= budgetNs) { p++; break; }
    }
    p++;
  }
  m.cursor = p;
  m.cpuNs += cpu;
  return Math.max(cpu, (m.transferred - bytes0) / rate);
}

/**
 * @qemu migration/migration.c migration_update_counters
 * Every BUFFER_DELAY: bandwidth measured over the window, threshold = bandwidth x
 * downtime-limit, mbps.
 */
function migrationUpdateCounters(m: MigrationState): void {
  const now = m.vm.sim.now;
  const spent = now - m.iterationStartNs;
  if (spent < BUFFER_DELAY_NS) return;
  const transferred = m.transferred - m.iterationInitialBytes;
  const bandwidthPerMs = transferred / (spent / 1e6);
  m.thresholdBytes = bandwidthPerMs * m.params.downtimeLimitMs;
  m.mbps = (transferred * 8) / (spent / 1e9) / 1e6;
  m.iterationStartNs = now;
  m.iterationInitialBytes = m.transferred;
}

/**
 * @qemu migration/migration.c migration_iteration_run
 * One step: if what is left is under the threshold, sync and maybe complete;
 * otherwise send for a while and come back.
 */
function migrationIterationRun(m: MigrationState): void {
  if (m.status !== 'active') return;
  const sim = m.vm.sim;
  migrationUpdateCounters(m);
  if (m.dirtyPages * TARGET_PAGE_SIZE < m.thresholdBytes) {
    // qemu_savevm_state_pending_exact: a sync for the true figure
    const syncNs = migrationBitmapSyncPrecopy(m);
    if (m.dirtyPages * TARGET_PAGE_SIZE < m.thresholdBytes) { migrationCompletion(m, syncNs); return; }
    simAfter(sim, syncNs, () => migrationIterationRun(m));
    return;
  }
  let ns = ramSaveIterate(m, STEP_NS);
  // nothing was left to send before the threshold is known: wait for the next window
  if (ns === 0) ns = STEP_NS;
  simAfter(sim, ns, () => migrationIterationRun(m));
}

/**
 * @qemu migration/migration.c migration_completion
 * Stop the VM, sync once more, send everything left and the device state; the
 * downtime runs from the stop to the destination's start.
 */
function migrationCompletion(m: MigrationState, syncNs: number): void {
  const c = m.vm.costs;
  m.status = 'device';
  const stopAt = m.vm.sim.now + syncNs;
  // vm_stop_force_state, then the last sync (the notifier says DONE now the VM is stopped)
  let ns = migrationBitmapSyncPrecopy(m);
  ns += ramSaveIterate(m, Infinity);
  ns += c.migrationSwitchover;
  m.downtimeNs = ns;
  m.endNs = stopAt + ns;
  m.destinationCheck = migrationCheckDestination(m, m.vm.livePages?.() ?? null);
  m.vm.ram.dirtyLogging = false;
  if (m.vm.balloon) m.vm.balloon.onFreePageHint = null;
  // The pages and device state were computed at the stop; query-migrate says 'device'
  // until the destination starts, then 'completed' (and a wait on it ends then).
  simAfter(m.vm.sim, m.endNs - m.vm.sim.now, () => {
    m.status = 'completed';
    m.onComplete?.(m);
  });
}

/** query-migrate's `ram` object (MigrationStats). */
export type QueryMigrateRam = {
  transferred: number; remaining: number; total: number; duplicate: number; normal: number; 'normal-bytes': number;
  'dirty-sync-count': number; mbps: number; 'dirty-pages-rate': number; 'page-size': number;
};

/** query-migrate's answer (MigrationInfo), the fields the model fills in. */
export type QueryMigrate = {
  status: MigrationStatus; 'setup-time': number; 'total-time': number; ram: QueryMigrateRam;
  downtime?: number; 'expected-downtime'?: number;
};

/** The `query-migrate` answer, as QEMU writes it (times in ms, bytes). */
export function queryMigrate(m: MigrationState): QueryMigrate {
  const now = m.status === 'completed' ? m.endNs : m.vm.sim.now;
  const ram = {
    transferred: m.transferred,
    remaining: m.dirtyPages * TARGET_PAGE_SIZE,
    total: m.totalPages * TARGET_PAGE_SIZE,
    duplicate: m.duplicate,
    normal: m.normal,
    'normal-bytes': m.normalBytes,
    'dirty-sync-count': m.dirtySyncCount,
    mbps: Math.round(m.mbps * 1000) / 1000,
    'dirty-pages-rate': m.dirtyPagesRate,
    'page-size': TARGET_PAGE_SIZE,
  };
  const out: QueryMigrate = {
    status: m.status,
    'setup-time': Math.round(m.setupNs / 1e6),
    'total-time': Math.round((now - m.startNs) / 1e6),
    ram,
  };
  if (m.status === 'completed') out.downtime = Math.round(m.downtimeNs / 1e6);
  else out['expected-downtime'] = m.params.downtimeLimitMs;
  return out;
}

/**
 * The destination check: every live page (live[p] set; every page of RAM when live is
 * null) must have arrived with the contents the source has now. Run at the stop (the
 * migration computes it there, as destinationCheck) or after, while the guest is idle. Returns null when
 * nothing was lost, else what was.
 */
export function migrationCheckDestination(m: MigrationState, live: Uint8Array | null): string | null {
  // completed, or stopped with the last pass sent (endNs is set then: the device phase)
  if (m.status !== 'completed' && !(m.status === 'device' && m.endNs !== 0)) return `migration is ${m.status}, not completed`;
  const ram = m.vm.ram;
  const problems: string[] = [];
  let bad = 0;
  for (const r of m.vm.mem.ranges) {
    for (let phys = r.start / TARGET_PAGE_SIZE, end = r.end / TARGET_PAGE_SIZE; phys < end; phys++) {
      if (live !== null && !live[phys]) continue;
      const src = ramReadContent(ram, phys);
      const srcGen = src === PageContent.data ? ram.gen[phys]! : 0;
      if (!m.destReceived[phys] || m.destContent[phys] !== src || m.destGen[phys] !== srcGen) {
        bad++;
        if (problems.length < 5) problems.push(`guest-physical page ${phys}: source ${describe(src, srcGen)}, destination ${m.destReceived[phys] ? describe(m.destContent[phys]! as PageContent, m.destGen[phys]!) : 'never received'}`);
      }
    }
  }
  return bad ? `${bad} pages differ at the destination:\n${problems.join('\n')}` : null;
}

function describe(c: PageContent, gen: number): string {
  return c === PageContent.zero ? 'zero' : c === PageContent.poison ? 'poison' : `data gen ${gen}`;
}
