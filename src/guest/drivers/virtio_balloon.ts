/**
 * The virtio-balloon driver (drivers/virtio/virtio_balloon.c), talking to its device
 * only through the transport and the rings in guest memory.
 *
 * - Size changes: on a config interrupt the update work compares the target
 *   (num_pages) with what the balloon holds and fills or leaks at most 256 pages per
 *   round (one PFN array), telling the host on the inflate or deflate queue and waiting
 *   for its acknowledgement, then writes `actual`. A failed balloon allocation ("Out of
 *   puff!") sleeps 200 ms before the pages got so far go to the host; the work then
 *   runs again. The host is told about a deflate *before* the pages are released, in
 *   that order whether or not MUST_TELL_HOST was negotiated (as Linux does).
 * - Balloon pages are managed by balloon_compaction.ts; with balloon compaction on,
 *   the migrate callback here inflates the new page and deflates the old one.
 * - Without DEFLATE_ON_OOM inflated pages leave the managed page count (MemTotal
 *   shrinks); with it, an OOM notifier gives back 256 pages per OOM instead of a kill.
 * - STATS_VQ: the stats buffer (le16 tag, le64 value) is refilled whenever the device
 *   hands it back.
 * - FREE_PAGE_HINT, in one of two designs (vb.hint): upstream (Linux 5.0 on): a new
 *   command id from the host starts a round: send the id, then take order-10 blocks
 *   (fail-fast, no reserves) and queue each for the host until allocation fails or the
 *   host changes the id, then send STOP. The blocks are held until the host says DONE;
 *   a shrinker gives them back under memory pressure. v33 (the June 2018 series, never
 *   merged): the host sets a bit in host_cmd; the driver walks the free lists of
 *   order-10 blocks under each zone's lock, copies their addresses into one buffer and
 *   hands it over. Nothing is allocated or held: the blocks stay free, the addresses are
 *   hints, and the zone's other allocations wait while its lock is held.
 * - PAGE_POISON: negotiated only when freed pages are zeroed or poisoned
 *   (init_on_free, page_poison), and poison_val tells the host which value; without
 *   it, such a guest refuses REPORTING.
 * - REPORTING: registers page reporting (page_reporting.ts) with the reporting queue
 *   as its report callback.
 *
 * The rings, the PFN array, the stats buffer and the command-id words live in guest
 * pages this driver allocates (Owner.virtio).
 */
import { type Sim, simAfter } from '../../sim/clock.js';
import { type MemLayout, physPfn } from '../mm/layout.js';
import { NO_PAGE, MAX_ORDER, PAGE_SIZE, Owner, listAdd, listDel, listFirst, listHeadAlloc } from '../mm/memmap.js';
import { type PgData, type Shrinker, MigrateMode, MigrateResult, totalramPages, pfnZone } from '../mm/mmzone.js';
import { allocPages, freePages, getFromFreePageList } from '../mm/page_alloc.js';
import { GFP_KERNEL, __GFP_ZERO, __GFP_NORETRY, __GFP_NOWARN, __GFP_NOMEMALLOC, __GFP_ATOMIC } from '../mm/gfp.js';
import { globalZonePageState, globalNodePageState, siMemAvailable } from '../mm/vmstat.js';
import { ZoneStat, NodeStat, VmEvent } from '../mm/vmstat_items.js';
import { type PageReportingDevInfo, PAGE_REPORTING_CAPACITY, pageReportingRegister } from '../mm/page_reporting.js';
import {
  type BalloonDevInfo, balloonDevinfoInit, balloonPageAlloc, balloonPageEnqueue, balloonPageDequeue, balloonPageReplace,
} from '../balloon/balloon_compaction.js';
import { type GuestMemory, writeLe16, writeLe32, writeLe64 } from '../../virtio/guest_memory.js';
import { type VirtqDriver, type Sg, virtqDriverCreate, virtqAddBuf, virtqKickPrepare, virtqGetBuf } from '../../virtio/virtqueue.js';
import { virtqPartSizes } from '../../virtio/virtio_ring.js';
import {
  type VirtioTransport, featureBit, hasFeature, transportSetStatus, transportSetDriverFeatures, transportSetupQueue,
  transportNotify, transportReadConfig, transportWriteConfig,
  VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED, VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_F_VERSION_1, VIRTIO_F_EVENT_IDX,
} from '../../virtio/transport.js';
import {
  VIRTIO_ID_BALLOON, VIRTIO_BALLOON_F_MUST_TELL_HOST, VIRTIO_BALLOON_F_STATS_VQ, VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
  VIRTIO_BALLOON_F_FREE_PAGE_HINT, VIRTIO_BALLOON_F_PAGE_POISON, VIRTIO_BALLOON_F_REPORTING,
  VIRTIO_BALLOON_CONFIG_NUM_PAGES, VIRTIO_BALLOON_CONFIG_ACTUAL, VIRTIO_BALLOON_CONFIG_FREE_PAGE_HINT_CMD_ID,
  VIRTIO_BALLOON_CONFIG_POISON_VAL, VIRTIO_BALLOON_CMD_ID_STOP, VIRTIO_BALLOON_CMD_ID_DONE, VIRTIO_BALLOON_STAT_SIZE,
  BalloonStat, BalloonQueue, NR_BALLOON_QUEUES, BALLOON_QUEUE_NAMES, balloonQueueIndices,
  VIRTIO_BALLOON_CONFIG_HOST_CMD, VIRTIO_BALLOON_HOST_CMD_FREE_PAGE_HINT, VIRTIO_BALLOON_FREE_PAGE_HINTS_HDR_BYTES,
  VIRTIO_BALLOON_FREE_PAGE_HINT_ENTRY_BYTES,
} from '../../virtio/virtio_balloon.js';

/** VIRTIO_BALLOON_ARRAY_PFNS_MAX: PFNs per inflate/deflate buffer. */
export const VIRTIO_BALLOON_ARRAY_PFNS_MAX = 256;
/** Out of puff: msleep(200) before the next try. */
export const FILL_BACKOFF_NS = 200_000_000;
/** OOM_VBALLOON_DEFAULT_PAGES: pages given back per OOM notification (the oom_pages parameter). */
export const OOM_VBALLOON_DEFAULT_PAGES = 256;
/** VIRTIO_BALLOON_HINT_BLOCK_ORDER: free page hints are MAX_ORDER - 1 blocks (4 MiB). */
export const VIRTIO_BALLOON_HINT_BLOCK_ORDER = MAX_ORDER - 1;
const HINT_BLOCK_PAGES = 1 << VIRTIO_BALLOON_HINT_BLOCK_ORDER;
/** VIRTIO_BALLOON_FREE_PAGE_ALLOC_FLAG: no reclaim at all, no warning, no reserves. */
export const VIRTIO_BALLOON_FREE_PAGE_ALLOC_FLAG = __GFP_NORETRY | __GFP_NOWARN | __GFP_NOMEMALLOC;
/** PAGE_POISON: the byte page poisoning fills freed pages with. */
export const PAGE_POISON = 0xaa;
/** Hint blocks taken per step before the worker yields (cond_resched) and time moves on. */
const HINT_BLOCKS_PER_STEP = 64;
/**
 * ... and no more than fit in this much of the step's own work: a slow guest (TCG
 * zeroes a block in ~10 ms) hands its blocks over a few at a time, as the real driver
 * does block by block. 64 blocks of a KVM guest take ~26 ms.
 */
const HINT_STEP_NS = 50_000_000;

/** Guest-side choices that are not negotiated. */
export type VirtioBalloonDriverOptions = {
  /** CONFIG_BALLOON_COMPACTION: balloon pages are movable and compaction can migrate them (Linux >= 3.8). */
  balloonCompaction: boolean;
  /** oom_pages module parameter. */
  oomPages: number;
  /** Stats the driver sends: tags 0-9 (Linux 6.1) or also 10-15 (Linux >= 6.12). */
  statsTags: 'v6.1' | 'v6.12';
  /** The page type of balloon pages: PG_offline (Linux >= 4.20) or PG_balloon (before; the same bit). */
  pageType: 'offline' | 'balloon' | 'none';
  /**
   * How FREE_PAGE_HINT works, when negotiated: upstream (Linux 5.0 on, the cmd_id
   * protocol) or v33 (the June 2018 series: a host_cmd bit, one buffer of free blocks'
   * addresses copied under the zone lock).
   */
  hintDesign: FreePageHintDesignName;
  /** v33's buffer: fixed (16 pages, kmalloc'ed at probe, as posted) or sized (from totalram_pages, at most 1024 pages, allocated when a report starts). */
  hintBuffer: HintBufferRule;
};

export type FreePageHintDesignName = 'upstream' | 'v33';
export type HintBufferRule = 'fixed' | 'sized';

export const DEFAULT_DRIVER_OPTIONS: Readonly<VirtioBalloonDriverOptions> = {
  balloonCompaction: true, oomPages: OOM_VBALLOON_DEFAULT_PAGES, statsTags: 'v6.12', pageType: 'offline', hintDesign: 'upstream', hintBuffer: 'fixed',
};

/** The kernel's system workqueue for one work item: at most one queued run, never two at once. */
type Work = { pending: boolean; running: boolean; fn: () => void };

/** struct virtio_balloon */
export type VirtioBalloon = {
  pgdat: PgData;
  layout: MemLayout;
  sim: Sim;
  /**
   * Runs a work item's function on a kworker (the guest's scheduler charges its CPU
   * time, what the item adds to pgdat.daemonNs, to a vCPU); at once when no scheduler
   * is given.
   */
  kworker: (fn: () => void) => void;
  mem: GuestMemory;
  t: VirtioTransport;
  opts: VirtioBalloonDriverOptions;
  /** Negotiated features, and their low 32 bits as a number (hot-path tests). */
  features: bigint;
  featuresLow: number;
  /** Transport index of each queue (compacted over the queues that exist), -1 if absent. */
  queueIndex: Int32Array;
  vqs: Array<VirtqDriver | null>;
  vbDevInfo: BalloonDevInfo;
  /** Pages in the balloon (vb->num_pages). */
  numPages: number;
  /** Guest-physical addresses of the driver's buffers inside its own page. */
  pfnsAddr: number;
  statsAddr: number;
  cmdIdActiveAddr: number;
  cmdIdStopAddr: number;
  numPfns: number;
  /** vb->balloon_lock held (fill and leak hold it while they enqueue and tell the host). */
  balloonLock: boolean;
  updateWork: Work;
  statsWork: Work;
  freePageWork: Work;
  /** VIRTIO_BALLOON_CONFIG_READ_CMD_ID: re-read the command id before using it. */
  configReadCmdId: boolean;
  cmdIdReceivedCache: number;
  cmdIdActive: number;
  /** Hinted blocks held (vb->free_page_list, a list in the memmap) and their count. */
  freePageList: number;
  numFreePageBlocks: number;
  /** The free page hinting design the driver was built with: every hinting step goes through it. */
  hint: FreePageHintDriverDesign;
  /**
   * v33's buffer (vb->hints): its block (NO_PAGE while none is allocated), order and the
   * bytes it hands over; the walk's scratch (memmap PFNs, entries per zone).
   */
  hintBuf: { pfn: number; order: number; bytes: number; entries: Int32Array; perZone: Int32Array };
  /** What the hint reports did and cost, for the result document's free_page_hint summary. */
  hintLog: HintLog;
  prDevInfo: PageReportingDevInfo | null;
  poisonVal: number;
  /** Set when the driver waits for the host forever (the device stopped answering): no more work runs. */
  stuck: string | null;
  /** Why probing failed, if it did. */
  probeError: string | null;
  counters: {
    fillRounds: number; leakRounds: number; outOfPuff: number; oomDeflates: number; oomPages: number;
    hintRounds: number; hintBlocks: number; hintBlocksReturned: number; statsSent: number; migrations: number;
  };
  /**
   * The pages of the fill round in progress (fill_balloon's private list: it holds them
   * across the 200 ms back-off) and of a leak round; separate, because a leak (an OOM
   * deflate) can run while a fill sleeps.
   */
  fillPages: Int32Array;
  leakPages: Int32Array;
};

// ---------------------------------------------------------------------------------
// Probe

/** Pages to hold a split ring of `size` entries laid out as vring_init does with 64-byte alignment. */
function ringBytes(size: number): { bytes: number; avail: number; used: number } {
  const sz = virtqPartSizes(size);
  const avail = sz.desc;
  const used = Math.ceil((avail + sz.avail) / 64) * 64;
  return { bytes: used + sz.used, avail, used };
}

function orderFor(bytes: number): number {
  let order = 0;
  while ((PAGE_SIZE << order) < bytes) order++;
  return order;
}

function physAddr(vb: VirtioBalloon, pfn: number): number {
  return physPfn(vb.layout, pfn) * PAGE_SIZE;
}

/** virtio_has_feature for the balloon's own bits (all below 32), without a BigInt per test. */
function has(vb: VirtioBalloon, bit: number): boolean {
  // NOTE: fill and leak test a feature per page; the 64-bit mask is a BigInt, so the
  // low word is kept as a number for them.
  return bit < 32 ? ((vb.featuresLow >>> bit) & 1) === 1 : hasFeature(vb.features, bit);
}

function queueWork(vb: VirtioBalloon, w: Work): void {
  if (w.pending) return;
  w.pending = true;
  if (!w.running) simAfter(vb.sim, 0, () => runWork(vb, w));
}

function runWork(vb: VirtioBalloon, w: Work): void {
  if (!w.pending || w.running) return;
  w.pending = false;
  if (vb.stuck !== null) return;
  w.running = true;
  vb.kworker(w.fn);
}

/** The work item finished (after `elapsedNs` of its own time); a run queued meanwhile follows. */
function workDone(vb: VirtioBalloon, w: Work, elapsedNs: number): void {
  const finish = () => {
    w.running = false;
    if (w.pending) runWork(vb, w);
  };
  if (elapsedNs > 0) simAfter(vb.sim, elapsedNs, finish);
  else finish();
}

/**
 * @kernel drivers/virtio/virtio_balloon.c virtballoon_probe (with the virtio core's
 * feature negotiation and virtballoon_validate)
 * Brings the device up: negotiates features, sets up the queues in its own pages,
 * primes the stats buffer, announces poison_val, registers the OOM notifier, the
 * shrinker and page reporting as negotiated, sets DRIVER_OK, and starts moving
 * towards the target if there is one. On failure the driver is left with probeError
 * set and the device FAILED.
 */
export function virtballoonProbe(pgdat: PgData, layout: MemLayout, sim: Sim, mem: GuestMemory, t: VirtioTransport, options: Partial<VirtioBalloonDriverOptions> = {}, kworker: (fn: () => void) => void = (fn) => fn()): VirtioBalloon {
  const opts = { ...DEFAULT_DRIVER_OPTIONS, ...options };
  // __SetPageOffline (4.20 on) or __SetPageBalloon: the kernel's one name for the bit
  pgdat.balloonPageType = opts.pageType;
  const vb: VirtioBalloon = {
    pgdat, layout, sim, kworker, mem, t, opts, features: 0n, featuresLow: 0, queueIndex: new Int32Array(NR_BALLOON_QUEUES).fill(-1),
    vqs: new Array<VirtqDriver | null>(NR_BALLOON_QUEUES).fill(null),
    vbDevInfo: balloonDevinfoInit(pgdat, opts.balloonCompaction), numPages: 0,
    pfnsAddr: 0, statsAddr: 0, cmdIdActiveAddr: 0, cmdIdStopAddr: 0, numPfns: 0, balloonLock: false,
    updateWork: { pending: false, running: false, fn: () => {} }, statsWork: { pending: false, running: false, fn: () => {} },
    freePageWork: { pending: false, running: false, fn: () => {} },
    configReadCmdId: false, cmdIdReceivedCache: VIRTIO_BALLOON_CMD_ID_STOP, cmdIdActive: VIRTIO_BALLOON_CMD_ID_STOP,
    freePageList: listHeadAlloc(pgdat.map), numFreePageBlocks: 0, prDevInfo: null, poisonVal: 0,
    hint: opts.hintDesign === 'v33' ? FREE_PAGE_HINT_V33 : FREE_PAGE_HINT_UPSTREAM,
    hintBuf: { pfn: NO_PAGE, order: 0, bytes: 0, entries: new Int32Array(0), perZone: new Int32Array(pgdat.zones.length) }, hintLog: createHintLog(),
    stuck: null, probeError: null,
    counters: { fillRounds: 0, leakRounds: 0, outOfPuff: 0, oomDeflates: 0, oomPages: 0, hintRounds: 0, hintBlocks: 0, hintBlocksReturned: 0, statsSent: 0, migrations: 0 },
    fillPages: new Int32Array(VIRTIO_BALLOON_ARRAY_PFNS_MAX), leakPages: new Int32Array(VIRTIO_BALLOON_ARRAY_PFNS_MAX),
  };
  vb.updateWork.fn = () => updateBalloonSizeFunc(vb);
  vb.statsWork.fn = () => { statsHandleRequest(vb); workDone(vb, vb.statsWork, 0); };
  vb.freePageWork.fn = () => vb.hint.work(vb);
  // The blocks the probe takes for the rings and buffers; freed again if it fails
  // (virtballoon_probe's error path: del_vqs, kfree).
  const taken: Array<[pfn: number, order: number]> = [];
  const fail = (msg: string) => {
    for (const [pfn, order] of taken) freePages(pgdat, pfn, order);
    vb.probeError = msg;
    transportSetStatus(t, t.status | VIRTIO_CONFIG_S_FAILED);
    return vb;
  };
  if (t.deviceId !== VIRTIO_ID_BALLOON) return fail(`device id ${t.deviceId} is not a balloon`);

  // virtio core: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK
  transportSetStatus(t, 0);
  transportSetStatus(t, VIRTIO_CONFIG_S_ACKNOWLEDGE);
  transportSetStatus(t, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  let want = featureBit(VIRTIO_F_VERSION_1) | featureBit(VIRTIO_F_EVENT_IDX);
  // features[]: what this kernel's driver knows (3.6: MUST_TELL_HOST and STATS_VQ)
  for (const b of [VIRTIO_BALLOON_F_MUST_TELL_HOST, VIRTIO_BALLOON_F_STATS_VQ, VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
    VIRTIO_BALLOON_F_FREE_PAGE_HINT, VIRTIO_BALLOON_F_PAGE_POISON, VIRTIO_BALLOON_F_REPORTING]) if (pgdat.kernel.balloon.features.includes(b)) want |= featureBit(b);
  let f = t.deviceFeatures & want;
  // virtballoon_validate: PAGE_POISON only when freed pages are initialised; such a
  // guest must not report free pages unless it can tell the host the poison value.
  if (!pgdat.boot.initOnFree) f &= ~featureBit(VIRTIO_BALLOON_F_PAGE_POISON);
  else if (!hasFeature(f, VIRTIO_BALLOON_F_PAGE_POISON)) f &= ~featureBit(VIRTIO_BALLOON_F_REPORTING);
  if (!hasFeature(f, VIRTIO_F_VERSION_1)) return fail('device does not offer VIRTIO_F_VERSION_1 (legacy devices are not modelled)');
  transportSetDriverFeatures(t, f);
  transportSetStatus(t, t.status | VIRTIO_CONFIG_S_FEATURES_OK);
  if (!(t.status & VIRTIO_CONFIG_S_FEATURES_OK)) return fail('device did not accept the features (FEATURES_OK did not stick)');
  vb.features = f;
  vb.featuresLow = Number(f & 0xffffffffn);

  // struct virtio_balloon's buffers: the PFN array, the stats, the command-id words
  const own = allocPages(pgdat, GFP_KERNEL | __GFP_ZERO, 0, Owner.virtio);
  if (own === NO_PAGE) return fail('out of memory for the driver');
  taken.push([own, 0]);
  const base = physAddr(vb, own);
  vb.pfnsAddr = base;
  vb.statsAddr = base + 4 * VIRTIO_BALLOON_ARRAY_PFNS_MAX;
  vb.cmdIdActiveAddr = vb.statsAddr + VIRTIO_BALLOON_STAT_SIZE * 16;
  vb.cmdIdStopAddr = vb.cmdIdActiveAddr + 4;

  // init_vqs: only the queues whose features were negotiated, numbered densely
  vb.queueIndex = balloonQueueIndices(f);
  for (let q = 0; q < NR_BALLOON_QUEUES; q++) {
    const idx = vb.queueIndex[q]!;
    if (idx < 0) continue;
    const tq = t.queues[idx];
    if (!tq) return fail(`device has no queue ${idx} for ${BALLOON_QUEUE_NAMES[q]}`);
    // vring_alloc_queue: the largest size the device allows, halved while the allocation fails
    let size = tq.maxSize;
    let pfn = NO_PAGE;
    let rb = ringBytes(size);
    for (; size >= 1; size >>= 1) {
      rb = ringBytes(size);
      pfn = allocPages(pgdat, GFP_KERNEL | __GFP_ZERO | __GFP_NOWARN, orderFor(rb.bytes), Owner.virtio);
      if (pfn !== NO_PAGE) break;
    }
    if (pfn === NO_PAGE) return fail(`out of memory for the ${BALLOON_QUEUE_NAMES[q]} ring`);
    taken.push([pfn, orderFor(rb.bytes)]);
    const desc = physAddr(vb, pfn);
    const layout = { size, descAddr: desc, availAddr: desc + rb.avail, usedAddr: desc + rb.used, eventIdx: hasFeature(f, VIRTIO_F_EVENT_IDX) };
    vb.vqs[q] = virtqDriverCreate(mem, layout);
    if (!transportSetupQueue(t, idx, size, layout.descAddr, layout.availAddr, layout.usedAddr)) return fail(`device refused the ${BALLOON_QUEUE_NAMES[q]} queue: ${t.error}`);
  }
  if (vb.vqs[BalloonQueue.freePage] && vb.vqs[BalloonQueue.freePage]!.layout.size < 2) return fail('free page queue needs at least 2 entries');
  if (vb.vqs[BalloonQueue.reporting] && vb.vqs[BalloonQueue.reporting]!.layout.size < PAGE_REPORTING_CAPACITY) return fail(`reporting queue needs at least ${PAGE_REPORTING_CAPACITY} entries`);

  if (vb.vqs[BalloonQueue.stats]) {
    // Prime the stats queue with one buffer the device can hand back to ask for stats.
    const n = updateBalloonStats(vb);
    addBuf(vb, BalloonQueue.stats, [{ addr: vb.statsAddr, len: n * VIRTIO_BALLOON_STAT_SIZE }], []);
    kick(vb, BalloonQueue.stats);
  }
  if (opts.balloonCompaction) vb.vbDevInfo.migratepage = (_b, newPfn, oldPfn, mode) => virtballoonMigratepage(vb, newPfn, oldPfn, mode);
  if (has(vb, VIRTIO_BALLOON_F_FREE_PAGE_HINT)) {
    const bad = vb.hint.probe(vb);
    if (bad !== null) return fail(bad);
  }
  if (has(vb, VIRTIO_BALLOON_F_PAGE_POISON)) {
    // 0 for init_on_free (pages read as zero); PAGE_POISON bytes for page poisoning
    vb.poisonVal = pgdat.boot.pagePoisoning ? PAGE_POISON * 0x01010101 : 0;
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, vb.poisonVal >>> 0, true);
    transportWriteConfig(t, VIRTIO_BALLOON_CONFIG_POISON_VAL, bytes);
  }
  if (has(vb, VIRTIO_BALLOON_F_DEFLATE_ON_OOM)) pgdat.oomNotifiers.push(() => virtioBalloonOomNotify(vb));

  t.onConfigChange = () => virtballoonChanged(vb);
  t.onInterrupt = (idx) => virtballoonInterrupt(vb, idx);
  // virtio_device_ready
  transportSetStatus(t, t.status | VIRTIO_CONFIG_S_DRIVER_OK);
  if (has(vb, VIRTIO_BALLOON_F_REPORTING)) {
    vb.prDevInfo = pageReportingRegister(pgdat, (pfns, orders, start, n) => virtballoonFreePageReport(vb, pfns, orders, start, n), -1, (ns, fn) => simAfter(sim, ns, fn));
  }
  if (towardsTarget(vb) !== 0) virtballoonChanged(vb);
  return vb;
}


// ---------------------------------------------------------------------------------
// Queues

function addBuf(vb: VirtioBalloon, q: BalloonQueue, out: Sg[], inn: Sg[]): boolean {
  const vq = vb.vqs[q];
  return vq !== null && virtqAddBuf(vq, out, inn, 1);
}

function kick(vb: VirtioBalloon, q: BalloonQueue): void {
  const vq = vb.vqs[q];
  if (vq && virtqKickPrepare(vq)) transportNotify(vb.t, vb.queueIndex[q]!);
}

/** The device stopped answering: like a task in wait_event forever, the driver does nothing more. */
function setStuck(vb: VirtioBalloon, what: string): void {
  if (vb.stuck !== null) return;
  const reset = vb.t.status & VIRTIO_CONFIG_S_NEEDS_RESET ? ` (device needs reset: ${vb.t.error})` : '';
  vb.stuck = `${what}: waiting for the host forever${reset}`;
}

/**
 * @kernel drivers/virtio/virtio_balloon.c tell_host
 * Sends the PFN array on a queue and waits for the host to use it. Returns the time
 * waited (ns), or -1 when the host never answers (the driver is stuck).
 */
function tellHost(vb: VirtioBalloon, q: BalloonQueue.inflate | BalloonQueue.deflate): number {
  const busy0 = vb.t.busyNs;
  if (!addBuf(vb, q, [{ addr: vb.pfnsAddr, len: 4 * vb.numPfns }], [])) { setStuck(vb, `${BALLOON_QUEUE_NAMES[q]} queue full`); return -1; }
  kick(vb, q);
  // wait_event(vb->acked, virtqueue_get_buf(vq, &len))
  if (virtqGetBuf(vb.vqs[q]!) === null) { setStuck(vb, `${BALLOON_QUEUE_NAMES[q]} buffer`); return -1; }
  return vb.t.busyNs - busy0;
}

function setPagePfns(vb: VirtioBalloon, i: number, pfn: number): void {
  // page_to_balloon_pfn: 4 KiB units of guest-physical address
  writeLe32(vb.mem, vb.pfnsAddr + 4 * i, physPfn(vb.layout, pfn));
}

// ---------------------------------------------------------------------------------
// Size changes

function readConfigLe32(vb: VirtioBalloon, off: number): number {
  const b = transportReadConfig(vb.t, off, 4);
  return b ? new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true) : 0;
}

/** @kernel drivers/virtio/virtio_balloon.c towards_target */
export function towardsTarget(vb: VirtioBalloon): number {
  return readConfigLe32(vb, VIRTIO_BALLOON_CONFIG_NUM_PAGES) - vb.numPages;
}

/** @kernel drivers/virtio/virtio_balloon.c update_balloon_size: writes `actual`. */
function updateBalloonSize(vb: VirtioBalloon): void {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, vb.numPages >>> 0, true);
  transportWriteConfig(vb.t, VIRTIO_BALLOON_CONFIG_ACTUAL, bytes);
}

/** adjust_managed_page_count(): the page leaves (or rejoins) its zone's managed pages. */
function adjustManagedPageCount(vb: VirtioBalloon, pfn: number, delta: number): void {
  pfnZone(vb.pgdat, pfn).managedPages += delta;
}

/** The guest's own time for n balloon allocations (and zeroing with init_on_alloc). */
function allocCostNs(vb: VirtioBalloon, n: number, order: number): number {
  const c = vb.pgdat.costs;
  return n * (c.pageAllocFast + (vb.pgdat.boot.initOnAlloc ? c.clearPage << order : 0));
}

/**
 * @kernel drivers/virtio/virtio_balloon.c fill_balloon
 * One round of inflation: up to 256 pages from balloon_page_alloc; when one fails,
 * sleep 200 ms; then enqueue what was got, tell the host, and report the count to
 * `done` with the round's elapsed time.
 */
function fillBalloon(vb: VirtioBalloon, want: number, done: (got: number, elapsedNs: number) => void): void {
  const num = Math.min(want, VIRTIO_BALLOON_ARRAY_PFNS_MAX);
  const pages = vb.fillPages;
  let n = 0;
  let puff = false;
  for (; n < num; n++) {
    const pfn = balloonPageAlloc(vb.vbDevInfo);
    if (pfn === NO_PAGE) { puff = true; break; }
    pages[n] = pfn;
  }
  const cost = allocCostNs(vb, n, 0);
  vb.pgdat.daemonNs += cost; // the kworker's vCPU time
  const enqueue = () => {
    vb.balloonLock = true;
    vb.numPfns = 0;
    for (let i = 0; i < n; i++) {
      const pfn = pages[i]!;
      balloonPageEnqueue(vb.vbDevInfo, pfn);
      setPagePfns(vb, vb.numPfns, pfn);
      vb.numPages++;
      if (!has(vb, VIRTIO_BALLOON_F_DEFLATE_ON_OOM)) adjustManagedPageCount(vb, pfn, -1);
      vb.numPfns++;
    }
    const waited = vb.numPfns ? tellHost(vb, BalloonQueue.inflate) : 0;
    vb.balloonLock = false;
    vb.counters.fillRounds++;
    done(n, cost + Math.max(0, waited));
  };
  if (puff) {
    // "Out of puff! Can't get 1 pages"; msleep(200) with the pages held privately
    vb.counters.outOfPuff++;
    simAfter(vb.sim, cost + FILL_BACKOFF_NS, enqueue);
  } else enqueue();
}

/**
 * @kernel drivers/virtio/virtio_balloon.c leak_balloon
 * One round of deflation: up to 256 pages off the balloon; the host is told first,
 * then the pages go back to the allocator. Returns the pages released; the time spent
 * (balloonLeakPage per page, and the host's answer: the round trip and its
 * hostWillneedPage per PFN) goes to `elapsed`.
 */
function leakBalloon(vb: VirtioBalloon, want: number, elapsed: { ns: number }): number {
  const num = Math.min(want, VIRTIO_BALLOON_ARRAY_PFNS_MAX, vb.numPages);
  const pages = vb.leakPages;
  vb.balloonLock = true;
  vb.numPfns = 0;
  while (vb.numPfns < num) {
    const pfn = balloonPageDequeue(vb.vbDevInfo);
    if (pfn === NO_PAGE) break;
    setPagePfns(vb, vb.numPfns, pfn);
    pages[vb.numPfns] = pfn;
    vb.numPages--;
    vb.numPfns++;
  }
  const n = vb.numPfns;
  // With MUST_TELL_HOST this order is required; Linux keeps it either way.
  const waited = n ? tellHost(vb, BalloonQueue.deflate) : 0;
  if (waited >= 0) {
    // release_pages_balloon
    for (let i = 0; i < n; i++) {
      const pfn = pages[i]!;
      if (!has(vb, VIRTIO_BALLOON_F_DEFLATE_ON_OOM)) adjustManagedPageCount(vb, pfn, 1);
      freePages(vb.pgdat, pfn, 0);
    }
  }
  vb.balloonLock = false;
  vb.counters.leakRounds++;
  // the round's own work per page (dequeue, PFN array, the free: balloonLeakPage,
  // TCG's figure under tcg) and the wait for the host's per-PFN madvise
  elapsed.ns += Math.max(0, waited) + n * vb.pgdat.costs.balloonLeakPage;
  vb.pgdat.daemonNs += n * vb.pgdat.costs.balloonLeakPage; // the kworker's vCPU time
  return n;
}

/**
 * @kernel drivers/virtio/virtio_balloon.c update_balloon_size_func
 * The update work: one fill or leak round towards the target, then `actual`; runs
 * again while the target is not reached.
 */
function updateBalloonSizeFunc(vb: VirtioBalloon): void {
  const diff = towardsTarget(vb);
  if (diff === 0) { workDone(vb, vb.updateWork, 0); return; }
  const finish = (left: number, elapsedNs: number) => {
    updateBalloonSize(vb);
    if (left !== 0 && vb.stuck === null) vb.updateWork.pending = true;
    workDone(vb, vb.updateWork, elapsedNs);
  };
  if (diff > 0) fillBalloon(vb, diff, (got, ns) => finish(diff - got, ns));
  else {
    const elapsed = { ns: 0 };
    const got = leakBalloon(vb, -diff, elapsed);
    finish(diff + got, elapsed.ns);
  }
}

/**
 * @kernel drivers/virtio/virtio_balloon.c virtballoon_changed
 * A config interrupt: the target (or the hint command) may have changed.
 */
function virtballoonChanged(vb: VirtioBalloon): void {
  queueWork(vb, vb.updateWork);
  if (has(vb, VIRTIO_BALLOON_F_FREE_PAGE_HINT)) vb.hint.configChanged(vb);
}

/** Used-buffer interrupts: only the stats queue's needs work (the others wake tell_host). */
function virtballoonInterrupt(vb: VirtioBalloon, idx: number): void {
  if (idx === vb.queueIndex[BalloonQueue.stats]) queueWork(vb, vb.statsWork);
}

/**
 * @kernel drivers/virtio/virtio_balloon.c virtio_balloon_oom_notify
 * The guest is about to OOM: give back oom_pages balloon pages instead. The notifier
 * runs in the allocating task (out_of_memory's blocking notifier chain), which waits
 * for the leak round and the host's answer: the round's time is its stall.
 */
function virtioBalloonOomNotify(vb: VirtioBalloon): number {
  if (vb.stuck !== null) return 0;
  const elapsed = { ns: 0 };
  const freed = leakBalloon(vb, vb.opts.oomPages, elapsed);
  vb.pgdat.tasks.stallNs += elapsed.ns;
  updateBalloonSize(vb);
  vb.counters.oomDeflates++;
  vb.counters.oomPages += freed;
  return freed;
}

/**
 * @kernel drivers/virtio/virtio_balloon.c virtballoon_migratepage
 * Compaction moves a balloon page: the new page joins the balloon and the host is
 * told (inflate), then the old one leaves it and the host is told (deflate); the
 * migration core frees the old page afterwards. Busy balloon lock: try again later.
 */
function virtballoonMigratepage(vb: VirtioBalloon, newPfn: number, oldPfn: number, _mode: MigrateMode): MigrateResult {
  if (vb.balloonLock || vb.stuck !== null) return MigrateResult.again;
  vb.balloonLock = true;
  if (!has(vb, VIRTIO_BALLOON_F_DEFLATE_ON_OOM) && pfnZone(vb.pgdat, oldPfn) !== pfnZone(vb.pgdat, newPfn)) {
    adjustManagedPageCount(vb, oldPfn, 1);
    adjustManagedPageCount(vb, newPfn, -1);
  }
  balloonPageReplace(vb.vbDevInfo, newPfn, oldPfn);
  vb.numPfns = 1;
  setPagePfns(vb, 0, newPfn);
  tellHost(vb, BalloonQueue.inflate);
  vb.numPfns = 1;
  setPagePfns(vb, 0, oldPfn);
  tellHost(vb, BalloonQueue.deflate);
  vb.balloonLock = false;
  vb.counters.migrations++;
  return MigrateResult.success;
}

// ---------------------------------------------------------------------------------
// Statistics

function statAt(vb: VirtioBalloon, idx: number, tag: BalloonStat, val: number): number {
  const a = vb.statsAddr + idx * VIRTIO_BALLOON_STAT_SIZE;
  writeLe16(vb.mem, a, tag);
  writeLe64(vb.mem, a + 2, Math.max(0, Math.floor(val)));
  return idx + 1;
}

/**
 * @kernel drivers/virtio/virtio_balloon.c update_balloon_stats
 * Fills the stats buffer from the guest's counters, in Linux's order. Returns the
 * number of entries.
 */
export function updateBalloonStats(vb: VirtioBalloon): number {
  const ev = vb.pgdat.events;
  const e = (k: VmEvent) => ev[k]!;
  let i = 0;
  i = statAt(vb, i, BalloonStat.swapIn, e(VmEvent.pswpin) * PAGE_SIZE);
  i = statAt(vb, i, BalloonStat.swapOut, e(VmEvent.pswpout) * PAGE_SIZE);
  i = statAt(vb, i, BalloonStat.majflt, e(VmEvent.pgmajfault));
  i = statAt(vb, i, BalloonStat.minflt, e(VmEvent.pgfault));
  if (vb.opts.statsTags === 'v6.12') {
    i = statAt(vb, i, BalloonStat.oomKill, e(VmEvent.oom_kill));
    const stall = e(VmEvent.allocstall_dma) + e(VmEvent.allocstall_dma32) + e(VmEvent.allocstall_normal) + e(VmEvent.allocstall_movable) + e(VmEvent.allocstall_device);
    i = statAt(vb, i, BalloonStat.allocStall, stall);
    i = statAt(vb, i, BalloonStat.asyncScan, e(VmEvent.pgscan_kswapd) * PAGE_SIZE);
    i = statAt(vb, i, BalloonStat.directScan, e(VmEvent.pgscan_direct) * PAGE_SIZE);
    i = statAt(vb, i, BalloonStat.asyncReclaim, e(VmEvent.pgsteal_kswapd) * PAGE_SIZE);
    i = statAt(vb, i, BalloonStat.directReclaim, e(VmEvent.pgsteal_direct) * PAGE_SIZE);
  }
  i = statAt(vb, i, BalloonStat.htlbPgalloc, e(VmEvent.htlb_buddy_alloc_success));
  i = statAt(vb, i, BalloonStat.htlbPgfail, e(VmEvent.htlb_buddy_alloc_fail));
  i = statAt(vb, i, BalloonStat.memfree, globalZonePageState(vb.pgdat, ZoneStat.nr_free_pages) * PAGE_SIZE);
  i = statAt(vb, i, BalloonStat.memtot, totalramPages(vb.pgdat) * PAGE_SIZE);
  i = statAt(vb, i, BalloonStat.avail, siMemAvailable(vb.pgdat) * PAGE_SIZE);
  i = statAt(vb, i, BalloonStat.caches, globalNodePageState(vb.pgdat, NodeStat.nr_file_pages) * PAGE_SIZE);
  return i;
}

/**
 * @kernel drivers/virtio/virtio_balloon.c stats_handle_request
 * The device gave the stats buffer back: refill it and return it.
 */
function statsHandleRequest(vb: VirtioBalloon): void {
  const vq = vb.vqs[BalloonQueue.stats];
  if (!vq) return;
  const n = updateBalloonStats(vb);
  if (virtqGetBuf(vq) === null) return;
  addBuf(vb, BalloonQueue.stats, [{ addr: vb.statsAddr, len: n * VIRTIO_BALLOON_STAT_SIZE }], []);
  kick(vb, BalloonQueue.stats);
  vb.counters.statsSent++;
}

// ---------------------------------------------------------------------------------
// Free page hinting: the two designs

/**
 * One free page hinting design as the driver implements it. The driver calls through
 * vb.hint (probe, config change, the work item) and nowhere asks which design it runs;
 * the device has its counterpart (host/virtio_balloon.ts FreePageHintDeviceDesign).
 */
export type FreePageHintDriverDesign = {
  readonly name: FreePageHintDesignName;
  /** virtballoon_probe's part (the shrinker, the buffer); an error message, or null. */
  probe(vb: VirtioBalloon): string | null;
  /** virtballoon_changed's part: queue the hint work when the config asks for a report. */
  configChanged(vb: VirtioBalloon): void;
  /** The hint work item (report_free_page_func of the design). */
  work(vb: VirtioBalloon): void;
};

/** One hint report as the driver made it (either design). */
export type HintReport = {
  /** When the report began, and when its last hint left (upstream: STOP sent; v33: the buffer handed over); -1 while running. */
  startNs: number;
  endNs: number;
  /** nr_free_pages, and the pages in free order-10 blocks, when it began. */
  freePages: number;
  freeMaxOrderPages: number;
  /** Pages handed to the host (order-10 blocks x 1024). */
  hintedPages: number;
  /** v33: entries written into the buffer, and the buffer's size in pages (0 upstream). */
  entries: number;
  bufferPages: number;
  /** v33: zone->lock held by the walk, summed over the zones, and its longest hold, ns. */
  lockHoldNs: number;
  maxLockHoldNs: number;
  /** Pages zeroed for the report under init_on_alloc (upstream: every block taken; v33 sized: the buffer) and that zeroing's time, ns. */
  zeroedPages: number;
  zeroNs: number;
};

/** What the guest's other work met while it hinted (HintLog.window). */
export type HintDuring = { ns: number; lockWaits: number; lockWaitNs: number; allocstalls: number; oomKills: number; shrunkBlocks: number };

/** The driver's record of its hint reports: the first few in full, totals, and what hinting cost the rest of the guest. */
export type HintLog = {
  /** The first HINT_LOG_REPORTS reports (later ones count only in the totals). */
  reports: HintReport[];
  nReports: number;
  totals: { hintedPages: number; lockHoldNs: number; maxLockHoldNs: number; zeroedPages: number; zeroNs: number; bufferAllocFailures: number };
  /**
   * The hinting window: from a report's start until the guest holds nothing for the host
   * (upstream: DONE; v33: its buffer handed over). `start` holds the counters when the
   * open window began; `during` sums the closed windows.
   */
  window: { open: boolean; start: HintDuring };
  during: HintDuring;
  /** Held blocks the shrinker gave back (upstream), all told. */
  shrunkBlocks: number;
};

/** Reports kept in full in HintLog.reports. */
const HINT_LOG_REPORTS = 64;

function createHintLog(): HintLog {
  const zero = (): HintDuring => ({ ns: 0, lockWaits: 0, lockWaitNs: 0, allocstalls: 0, oomKills: 0, shrunkBlocks: 0 });
  return {
    reports: [], nReports: 0, totals: { hintedPages: 0, lockHoldNs: 0, maxLockHoldNs: 0, zeroedPages: 0, zeroNs: 0, bufferAllocFailures: 0 },
    window: { open: false, start: zero() }, during: zero(), shrunkBlocks: 0,
  };
}

/** The guest-wide counters a hinting window measures, now (window.start's fields; ns is the time). */
function hintCounters(vb: VirtioBalloon, shrunk: number): HintDuring {
  const pg = vb.pgdat, ev = pg.events;
  let lockWaits = 0, lockWaitNs = 0;
  for (const z of pg.zones) { lockWaits += z.lockWaits; lockWaitNs += z.lockWaitNs; }
  const allocstalls = ev[VmEvent.allocstall_dma]! + ev[VmEvent.allocstall_dma32]! + ev[VmEvent.allocstall_normal]! + ev[VmEvent.allocstall_movable]! + ev[VmEvent.allocstall_device]!;
  return { ns: vb.sim.now, lockWaits, lockWaitNs, allocstalls, oomKills: ev[VmEvent.oom_kill]!, shrunkBlocks: shrunk };
}

function hintWindowOpen(vb: VirtioBalloon): void {
  const w = vb.hintLog.window;
  if (w.open) return;
  w.open = true;
  w.start = hintCounters(vb, vb.hintLog.shrunkBlocks);
}

function hintWindowClose(vb: VirtioBalloon): void {
  const w = vb.hintLog.window, d = vb.hintLog.during;
  if (!w.open) return;
  w.open = false;
  const now = hintCounters(vb, vb.hintLog.shrunkBlocks), s = w.start;
  d.ns += now.ns - s.ns; d.lockWaits += now.lockWaits - s.lockWaits; d.lockWaitNs += now.lockWaitNs - s.lockWaitNs;
  d.allocstalls += now.allocstalls - s.allocstalls; d.oomKills += now.oomKills - s.oomKills; d.shrunkBlocks += now.shrunkBlocks - s.shrunkBlocks;
}

/** What the hinting windows cost so far, the open one up to now included. */
export function hintLogDuring(vb: VirtioBalloon): HintDuring {
  const d = { ...vb.hintLog.during }, w = vb.hintLog.window;
  if (w.open) {
    const now = hintCounters(vb, vb.hintLog.shrunkBlocks), s = w.start;
    d.ns += now.ns - s.ns; d.lockWaits += now.lockWaits - s.lockWaits; d.lockWaitNs += now.lockWaitNs - s.lockWaitNs;
    d.allocstalls += now.allocstalls - s.allocstalls; d.oomKills += now.oomKills - s.oomKills; d.shrunkBlocks += now.shrunkBlocks - s.shrunkBlocks;
  }
  return d;
}

function hintReportBegin(vb: VirtioBalloon): HintReport {
  hintWindowOpen(vb);
  let maxOrder = 0;
  for (const z of vb.pgdat.zones) maxOrder += z.nrFree[VIRTIO_BALLOON_HINT_BLOCK_ORDER]! * HINT_BLOCK_PAGES;
  const r: HintReport = {
    startNs: vb.sim.now, endNs: -1, freePages: globalZonePageState(vb.pgdat, ZoneStat.nr_free_pages), freeMaxOrderPages: maxOrder,
    hintedPages: 0, entries: 0, bufferPages: 0, lockHoldNs: 0, maxLockHoldNs: 0, zeroedPages: 0, zeroNs: 0,
  };
  const log = vb.hintLog;
  log.nReports++;
  if (log.reports.length < HINT_LOG_REPORTS) log.reports.push(r);
  return r;
}

function hintReportEnd(vb: VirtioBalloon, r: HintReport, endNs = vb.sim.now): void {
  r.endNs = endNs;
  const t = vb.hintLog.totals;
  t.hintedPages += r.hintedPages; t.lockHoldNs += r.lockHoldNs; t.maxLockHoldNs = Math.max(t.maxLockHoldNs, r.maxLockHoldNs);
  t.zeroedPages += r.zeroedPages; t.zeroNs += r.zeroNs;
}

// ---------------------------------------------------------------------------------
// Free page hinting, upstream (Linux 5.0 on: the cmd_id protocol)

export const FREE_PAGE_HINT_UPSTREAM: FreePageHintDriverDesign = {
  name: 'upstream',
  probe: (vb) => { vb.pgdat.shrinkers.push(freePageShrinker(vb)); return null; },
  /** @kernel drivers/virtio/virtio_balloon.c virtballoon_changed (VIRTIO_BALLOON_CONFIG_READ_CMD_ID) */
  configChanged: (vb) => {
    if (vb.configReadCmdId) return;
    vb.configReadCmdId = true;
    queueWork(vb, vb.freePageWork);
  },
  work: (vb) => reportFreePageFunc(vb),
};

/** @kernel drivers/virtio/virtio_balloon.c virtio_balloon_cmd_id_received: re-read after a config change. */
function cmdIdReceived(vb: VirtioBalloon): number {
  if (vb.configReadCmdId) {
    vb.configReadCmdId = false;
    vb.cmdIdReceivedCache = readConfigLe32(vb, VIRTIO_BALLOON_CONFIG_FREE_PAGE_HINT_CMD_ID);
  }
  return vb.cmdIdReceivedCache;
}

/**
 * @kernel drivers/virtio/virtio_balloon.c return_free_pages_to_mm
 * Gives up to `num` held hint blocks back to the allocator. Returns the blocks freed.
 */
export function returnFreePagesToMm(vb: VirtioBalloon, num: number): number {
  let n = 0;
  const map = vb.pgdat.map;
  while (n < num) {
    const pfn = listFirst(map, vb.freePageList);
    if (pfn === NO_PAGE) break;
    listDel(map, pfn);
    freePages(vb.pgdat, pfn, VIRTIO_BALLOON_HINT_BLOCK_ORDER);
    vb.numFreePageBlocks--;
    n++;
  }
  vb.counters.hintBlocksReturned += n;
  return n;
}

function freePageShrinker(vb: VirtioBalloon): Shrinker {
  return {
    name: 'virtio-balloon',
    seeks: 2,
    /** @kernel drivers/virtio/virtio_balloon.c virtio_balloon_shrinker_count */
    countObjects: () => vb.numFreePageBlocks * HINT_BLOCK_PAGES,
    /** @kernel drivers/virtio/virtio_balloon.c shrink_free_pages: whole blocks, rounded up */
    scanObjects: (_p, nr) => {
      const n = returnFreePagesToMm(vb, Math.ceil(nr / HINT_BLOCK_PAGES));
      vb.hintLog.shrunkBlocks += n;
      return n * HINT_BLOCK_PAGES;
    },
  };
}

function detachUsed(vb: VirtioBalloon): void {
  const vq = vb.vqs[BalloonQueue.freePage]!;
  while (virtqGetBuf(vq) !== null) { /* detach */ }
}

/** @kernel drivers/virtio/virtio_balloon.c send_cmd_id_start / send_cmd_id_stop */
function sendCmdId(vb: VirtioBalloon, addr: number, id: number): boolean {
  detachUsed(vb);
  writeLe32(vb.mem, addr, id);
  if (!addBuf(vb, BalloonQueue.freePage, [{ addr, len: 4 }], [])) return false;
  kick(vb, BalloonQueue.freePage);
  return true;
}

/** get_free_page_and_send's outcomes: sent one, no more free blocks (-EINTR), ring full (-ENOSPC). */
const enum HintResult { sent = 0, noMore = 1, full = 2 }

/**
 * @kernel drivers/virtio/virtio_balloon.c get_free_page_and_send
 * One order-10 block, queued for the host and held on the driver's list.
 */
function getFreePageAndSend(vb: VirtioBalloon): HintResult {
  const vq = vb.vqs[BalloonQueue.freePage]!;
  detachUsed(vb);
  const pfn = allocPages(vb.pgdat, VIRTIO_BALLOON_FREE_PAGE_ALLOC_FLAG, VIRTIO_BALLOON_HINT_BLOCK_ORDER, Owner.freePageHint);
  if (pfn === NO_PAGE) return HintResult.noMore;
  // one entry is always kept for the command id
  if (vq.numFree <= 1 || !addBuf(vb, BalloonQueue.freePage, [], [{ addr: physAddr(vb, pfn), len: HINT_BLOCK_PAGES * PAGE_SIZE }])) {
    freePages(vb.pgdat, pfn, VIRTIO_BALLOON_HINT_BLOCK_ORDER);
    return HintResult.full;
  }
  kick(vb, BalloonQueue.freePage);
  listAdd(vb.pgdat.map, pfn, vb.freePageList);
  vb.numFreePageBlocks++;
  vb.counters.hintBlocks++;
  return HintResult.sent;
}

/**
 * @kernel drivers/virtio/virtio_balloon.c report_free_page_func
 * The hint work: DONE gives every held block back (and ends the hinting window); a new
 * id starts a round.
 */
function reportFreePageFunc(vb: VirtioBalloon): void {
  const id = cmdIdReceived(vb);
  if (id === VIRTIO_BALLOON_CMD_ID_DONE) {
    returnFreePagesToMm(vb, Infinity);
    hintWindowClose(vb);
    workDone(vb, vb.freePageWork, 0);
  } else if (id !== VIRTIO_BALLOON_CMD_ID_STOP && id !== vb.cmdIdActive) {
    virtioBalloonReportFreePage(vb);
  } else workDone(vb, vb.freePageWork, 0);
}

/**
 * @kernel drivers/virtio/virtio_balloon.c virtio_balloon_report_free_page (send_free_pages)
 * A hint round: the start id, blocks until allocation fails or the id changes (the
 * host's STOP or DONE arrives as a config change), then STOP. Runs in steps of
 * HINT_BLOCKS_PER_STEP blocks (fewer when they would take more than HINT_STEP_NS),
 * each taking its virtual time, so the host can stop it midway. With init_on_alloc
 * every block is zeroed as it is allocated (the report's zeroedPages and zeroNs). Each
 * step runs on a kworker, whose vCPU the allocations and the zeroing keep busy.
 */
function virtioBalloonReportFreePage(vb: VirtioBalloon): void {
  vb.counters.hintRounds++;
  const rep = hintReportBegin(vb);
  vb.cmdIdActive = cmdIdReceived(vb);
  sendCmdId(vb, vb.cmdIdActiveAddr, vb.cmdIdActive);
  const zeroing = vb.pgdat.boot.initOnAlloc;
  const step = () => {
    const busy0 = vb.t.busyNs;
    let blocks = 0;
    let end = false;
    while (blocks < HINT_BLOCKS_PER_STEP && (blocks === 0 || allocCostNs(vb, blocks + 1, VIRTIO_BALLOON_HINT_BLOCK_ORDER) <= HINT_STEP_NS)) {
      if (vb.cmdIdActive !== cmdIdReceived(vb)) { end = true; break; }
      const r = getFreePageAndSend(vb);
      if (r !== HintResult.sent) { end = true; break; }
      blocks++;
    }
    rep.hintedPages += blocks * HINT_BLOCK_PAGES;
    if (zeroing) {
      rep.zeroedPages += blocks * HINT_BLOCK_PAGES;
      rep.zeroNs += blocks * (vb.pgdat.costs.clearPage << VIRTIO_BALLOON_HINT_BLOCK_ORDER);
    }
    // the allocations and their zeroing are the kworker's vCPU time (its next step runs on a kworker again)
    const cpuNs = allocCostNs(vb, blocks, VIRTIO_BALLOON_HINT_BLOCK_ORDER);
    vb.pgdat.daemonNs += cpuNs;
    const ns = cpuNs + (vb.t.busyNs - busy0);
    if (!end) { simAfter(vb.sim, ns, () => vb.kworker(step)); return; }
    sendCmdId(vb, vb.cmdIdStopAddr, VIRTIO_BALLOON_CMD_ID_STOP);
    // the model sends STOP as the last step starts; the report is done when its work is
    hintReportEnd(vb, rep, vb.sim.now + ns);
    workDone(vb, vb.freePageWork, ns);
  };
  step();
}

// ---------------------------------------------------------------------------------
// Free page hinting, v33 (Wei Wang's series of 2018-06-15, never merged)
//
// "[PATCH v33 2/4] virtio-balloon: VIRTIO_BALLOON_F_FREE_PAGE_HINT" (linux-mm, Message-Id
// <1529037793-35521-3-git-send-email-wei.w.wang@intel.com>): virtballoon_changed reads
// host_cmd and queues report_free_page_func on the balloon's own workqueue when
// VIRTIO_BALLOON_HOST_CMD_FREE_PAGE_HINT is set; the work calls
// get_from_free_page_list(MAX_ORDER - 1, hints->buf, avail_entries) into a
// FREE_PAGE_HINT_MEM_SIZE (PAGE_SIZE * 16) buffer kmalloc'ed at probe, sets num_hints and
// size, and adds the whole buffer as one outbuf. The review (Michael S. Tsirkin,
// 2018-06-15, <20180615144000-mutt-send-email-mst@kernel.org>: "Doesn't this limit memory
// size of the guest we can report? ... OTOH huge guests with lots of free memory is
// exactly where we would gain the most") got Wei Wang's answer the same day
// (<286AC319A985734F985F78AFA26841F7396A3D04@shsmsx102.ccr.corp.intel.com>): 16 pages
// report at most 32 GB; size the buffer from totalram_pages instead, 512 blocks a page,
// at most 1024 pages (2 TB), and MST's conditions (<20180615171635-mutt-send-email-mst@kernel.org>):
// allocate it with __GFP_ATOMIC | __GFP_NOMEMALLOC ("You only want to take it off the
// free list") and not at device start ("totalram_pages can change ... too much memory
// to tie up forever"). `balloon.free_page_hint_buffer` picks fixed (as posted) or sized
// (the answer, never posted as a patch: v34 went on to 4 MiB arrays).

/** FREE_PAGE_HINT_MEM_SIZE: v33's buffer, PAGE_SIZE * 16, kmalloc'ed at probe. */
export const FREE_PAGE_HINT_MEM_SIZE = PAGE_SIZE * 16;
/** The sized rule's cap: 1024 pages, 524287 entries of 4 MiB (2 TiB). */
export const HINT_BUFFER_MAX_PAGES = 1024;
/** The sized buffer's allocation at report start: only off the free lists, no reserves (MST's review). */
export const V33_HINT_BUFFER_GFP = __GFP_ATOMIC | __GFP_NOMEMALLOC;

/**
 * The sized rule (Wei Wang, 2018-06-15): 4m_page_blocks = totalram_pages / 1024;
 * pages_to_allocate = min(4m_page_blocks / 512, 1024). The mail's integer division
 * would give no buffer at all below 2 GiB; the model rounds up (v34's max_array_num
 * did), so every guest gets at least one page.
 */
export function hintBufferPagesFor(totalramPages: number): number {
  const blocks = Math.floor(totalramPages / HINT_BLOCK_PAGES);
  return Math.min(Math.max(1, Math.ceil(blocks / (PAGE_SIZE / VIRTIO_BALLOON_FREE_PAGE_HINT_ENTRY_BYTES))), HINT_BUFFER_MAX_PAGES);
}

/** Entries a buffer of `bytes` holds after struct virtio_balloon_free_page_hints' header (avail_entries). */
export function hintBufferEntries(bytes: number): number {
  return Math.max(0, Math.floor((bytes - VIRTIO_BALLOON_FREE_PAGE_HINTS_HDR_BYTES) / VIRTIO_BALLOON_FREE_PAGE_HINT_ENTRY_BYTES));
}

export const FREE_PAGE_HINT_V33: FreePageHintDriverDesign = {
  name: 'v33',
  /**
   * @kernel drivers/virtio/virtio_balloon.c virtballoon_probe (v33)
   * vb->hints = kmalloc(FREE_PAGE_HINT_MEM_SIZE, GFP_KERNEL): an order-4 block for good
   * (kmalloc_large). No shrinker: v33 holds nothing. The sized rule allocates per report.
   */
  probe: (vb) => {
    if (vb.opts.hintBuffer !== 'fixed') return null;
    const order = orderFor(FREE_PAGE_HINT_MEM_SIZE);
    const pfn = allocPages(vb.pgdat, GFP_KERNEL, order, Owner.virtio);
    if (pfn === NO_PAGE) return 'out of memory for the free page hint buffer';
    vb.hintBuf.pfn = pfn;
    vb.hintBuf.order = order;
    vb.hintBuf.bytes = FREE_PAGE_HINT_MEM_SIZE;
    vb.hintBuf.entries = new Int32Array(hintBufferEntries(FREE_PAGE_HINT_MEM_SIZE));
    return null;
  },
  /** @kernel drivers/virtio/virtio_balloon.c virtballoon_changed (v33): host_cmd's bit asks for a report */
  configChanged: (vb) => {
    if (readConfigLe32(vb, VIRTIO_BALLOON_CONFIG_HOST_CMD) & VIRTIO_BALLOON_HOST_CMD_FREE_PAGE_HINT) queueWork(vb, vb.freePageWork);
  },
  work: (vb) => reportFreePageFuncV33(vb),
};

/**
 * The sized rule's buffer for one report: pages from totalram_pages now, a block of
 * get_order of them taken off the free lists (zeroed under init_on_alloc). Returns the
 * work's time, or -1 when the allocation failed (then nothing can be reported: "If that
 * allocation fails, that implies that nothing would be got from the 4MB free page list").
 */
function v33HintBufferAlloc(vb: VirtioBalloon, rep: HintReport): number {
  const pages = hintBufferPagesFor(totalramPages(vb.pgdat));
  const order = orderFor(pages * PAGE_SIZE);
  const pfn = allocPages(vb.pgdat, V33_HINT_BUFFER_GFP, order, Owner.virtio);
  if (pfn === NO_PAGE) return -1;
  const b = vb.hintBuf;
  b.pfn = pfn;
  b.order = order;
  b.bytes = pages * PAGE_SIZE;
  const entries = hintBufferEntries(b.bytes);
  if (b.entries.length < entries) b.entries = new Int32Array(entries);
  const c = vb.pgdat.costs;
  if (vb.pgdat.boot.initOnAlloc) {
    rep.zeroedPages += 1 << order;
    rep.zeroNs += c.clearPage << order;
  }
  return c.pageAllocBuddy + (vb.pgdat.boot.initOnAlloc ? c.clearPage << order : 0);
}

/**
 * @kernel drivers/virtio/virtio_balloon.c report_free_page_func (v33, with
 * free_page_vq_cb)
 * One report: (sized) the buffer; get_from_free_page_list of order-10 blocks into it,
 * zone after zone, each under its zone->lock for hintWalkZone + hintWalkEntry per entry
 * — the zone's other allocations and frees wait that long (page_alloc.ts zoneLockSpin)
 * and the kworker's vCPU is busy (irqs off) for the whole walk; then num_hints, size and
 * the addresses go into the buffer, which is added as one outbuf and kicked. The walk
 * takes its snapshot when it starts (a burst's effects come first in the model); the
 * buffer reaches the host when the walk's time is over, so the blocks of a zone whose
 * lock dropped earlier may be allocated and written before the host reads their hint.
 * A used buffer is detached (free_page_vq_cb) and, sized, freed.
 */
function reportFreePageFuncV33(vb: VirtioBalloon): void {
  vb.counters.hintRounds++;
  const rep = hintReportBegin(vb);
  const c = vb.pgdat.costs, buf = vb.hintBuf;
  let ns = 0;
  if (vb.opts.hintBuffer === 'sized') {
    const a = v33HintBufferAlloc(vb, rep);
    if (a < 0) {
      vb.hintLog.totals.bufferAllocFailures++;
      hintReportEnd(vb, rep);
      hintWindowClose(vb);
      workDone(vb, vb.freePageWork, 0);
      return;
    }
    ns += a;
  }
  const n = getFromFreePageList(vb.pgdat, VIRTIO_BALLOON_HINT_BLOCK_ORDER, buf.entries, hintBufferEntries(buf.bytes), buf.perZone);
  // each zone's lock, one after the other, from when the buffer is there
  const t0 = vb.sim.now + ns;
  let t = t0;
  for (const zone of vb.pgdat.zones) {
    const got = buf.perZone[zone.idx]!;
    if (got < 0) continue;
    const hold = c.hintWalkZone + got * c.hintWalkEntry;
    zone.lockHeldFrom = t;
    zone.lockHeldUntil = t + hold;
    t += hold;
    rep.maxLockHoldNs = Math.max(rep.maxLockHoldNs, hold);
  }
  rep.lockHoldNs = t - t0;
  rep.entries = n;
  rep.hintedPages = n * HINT_BLOCK_PAGES;
  rep.bufferPages = buf.bytes / PAGE_SIZE;
  ns = t - vb.sim.now;
  vb.pgdat.daemonNs += ns; // the kworker's vCPU: the buffer, then the walk with irqs off
  simAfter(vb.sim, ns, () => {
    const base = physAddr(vb, buf.pfn);
    writeLe32(vb.mem, base, n);
    writeLe32(vb.mem, base + 4, HINT_BLOCK_PAGES * PAGE_SIZE);
    const entries = buf.entries;
    // NOTE: one le64 per entry straight into the buffer's guest pages (up to 524287)
    for (let i = 0; i < n; i++) writeLe64(vb.mem, base + VIRTIO_BALLOON_FREE_PAGE_HINTS_HDR_BYTES + i * VIRTIO_BALLOON_FREE_PAGE_HINT_ENTRY_BYTES, physAddr(vb, entries[i]!));
    detachUsed(vb);
    if (addBuf(vb, BalloonQueue.freePage, [{ addr: base, len: buf.bytes }], [])) kick(vb, BalloonQueue.freePage);
    // free_page_vq_cb: the host has used it
    detachUsed(vb);
    if (vb.opts.hintBuffer === 'sized') {
      freePages(vb.pgdat, buf.pfn, buf.order);
      buf.pfn = NO_PAGE;
    }
    hintReportEnd(vb, rep);
    hintWindowClose(vb);
    workDone(vb, vb.freePageWork, 0);
  });
}

// ---------------------------------------------------------------------------------
// Free page reporting

/**
 * @kernel drivers/virtio/virtio_balloon.c virtballoon_free_page_report
 * Page reporting's callback: the isolated blocks go to the host as one chain of
 * device-writable buffers; wait until it is used.
 */
function virtballoonFreePageReport(vb: VirtioBalloon, pfns: Int32Array, orders: Int32Array, start: number, n: number): number {
  const sgs: Sg[] = [];
  for (let i = start; i < start + n; i++) sgs.push({ addr: physAddr(vb, pfns[i]!), len: PAGE_SIZE << orders[i]! });
  if (vb.stuck !== null || !addBuf(vb, BalloonQueue.reporting, [], sgs)) return -1;
  kick(vb, BalloonQueue.reporting);
  if (virtqGetBuf(vb.vqs[BalloonQueue.reporting]!) === null) {
    setStuck(vb, 'reporting buffer');
    return -1;
  }
  return 0;
}
