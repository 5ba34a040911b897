/**
 * The virtio-balloon device on the host side, after QEMU's hw/virtio/virtio-balloon.c.
 *
 * It sees the guest only through the transport (status, features, config space,
 * kicks) and guest-physical memory (the rings and the buffers they point at):
 *
 * - inflate/deflate queues: arrays of le32 4 KiB PFNs. Each PFN is validated (it must
 *   name guest RAM; others are skipped, as QEMU's trace_virtio_balloon_bad_addr does);
 *   inflated pages lose their host backing (resident size drops), deflated pages come
 *   back on the guest's next write.
 * - stats queue: the device keeps the driver's buffer and hands it back when it wants
 *   fresh numbers, on a polling interval (guest-stats-polling-interval), recording the
 *   time of the last update.
 * - free page hints: the four-state machine (STOP, REQUESTED, START, DONE) with a new
 *   command id per round, driven by the caller (the migration engine, or the scenario);
 *   hinted ranges go to the caller's hint handler (QEMU clears them from the migration
 *   bitmap) or are discarded (Firecracker). The same machine takes v33's design (a
 *   host_cmd bit and one buffer of addresses per report; dev.hint says which).
 * - free page reporting: reported ranges are discarded unless the guest announced a
 *   non-zero poison value (QEMU then keeps them).
 * - control in QMP's shape: the target is the guest's *logical size* in bytes, as QEMU's
 *   `balloon` command and `query-balloon` speak it.
 *
 * Anything malformed in a ring breaks the queue and sets NEEDS_RESET with a message;
 * nothing the guest writes can throw here.
 */
import { type Sim, simAfter } from '../sim/clock.js';
import { type CostTable } from '../sim/cost.js';
import { type GuestMemory, TARGET_PAGE_SIZE, isRam, readU8, readLe16, readLe32, readBytes, discardPage } from '../virtio/guest_memory.js';
import {
  type VirtqDevice, type VirtqElement, type Sg, virtqDeviceCreate, virtqueuePop, virtqueuePush, virtqueueShouldNotify,
} from '../virtio/virtqueue.js';
import {
  type VirtioTransport, createTransport, featureBit, hasFeature, virtioError, transportConfigChanged, transportInterrupt,
  transportQueueLayout, configReadLe32, configWriteLe32, VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_F_VERSION_1, VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
} from '../virtio/transport.js';
import {
  VIRTIO_ID_BALLOON, VIRTIO_BALLOON_F_MUST_TELL_HOST, VIRTIO_BALLOON_F_STATS_VQ, VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
  VIRTIO_BALLOON_F_FREE_PAGE_HINT, VIRTIO_BALLOON_F_PAGE_POISON, VIRTIO_BALLOON_F_REPORTING, VIRTIO_BALLOON_PFN_SHIFT,
  VIRTIO_BALLOON_HOST_CMD_FREE_PAGE_HINT, VIRTIO_BALLOON_FREE_PAGE_HINTS_HDR_BYTES, VIRTIO_BALLOON_FREE_PAGE_HINT_ENTRY_BYTES,
  VIRTIO_BALLOON_CONFIG_NUM_PAGES, VIRTIO_BALLOON_CONFIG_ACTUAL, VIRTIO_BALLOON_CONFIG_FREE_PAGE_HINT_CMD_ID,
  VIRTIO_BALLOON_CONFIG_POISON_VAL, VIRTIO_BALLOON_CMD_ID_STOP, VIRTIO_BALLOON_CMD_ID_DONE, VIRTIO_BALLOON_S_NR,
  VIRTIO_BALLOON_STAT_SIZE, BALLOON_STAT_NAMES, BalloonQueue, NR_BALLOON_QUEUES, BALLOON_QUEUE_NAMES, balloonQueueIndices,
} from '../virtio/virtio_balloon.js';
import { type RamBacking, ramDiscard } from './ram.js';


/** What the device does with a hinted free page range. */
export type HintAction = 'clear-bitmap' | 'discard';
/** Who keeps `actual`: the driver writes it (spec, Linux, QEMU) or the device counts PFNs (v86). */
export type ActualSource = 'driver' | 'device';

/** Device properties. The defaults are QEMU's (QEMU_BALLOON_DEFAULTS). */
export type BalloonDeviceOptions = {
  /** deflate-on-oom: offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM (QEMU default off). */
  deflateOnOom: boolean;
  /** free-page-hint: offer VIRTIO_BALLOON_F_FREE_PAGE_HINT (QEMU default off; needs an iothread). */
  freePageHint: boolean;
  /** free-page-reporting: offer VIRTIO_BALLOON_F_REPORTING (QEMU default off). */
  freePageReporting: boolean;
  /** page-poison: offer VIRTIO_BALLOON_F_PAGE_POISON (QEMU default on). */
  pagePoison: boolean;
  /** Offer VIRTIO_BALLOON_F_MUST_TELL_HOST (QEMU never does; crosvm always does). */
  mustTellHost: boolean;
  /** Offer VIRTIO_BALLOON_F_STATS_VQ (QEMU always does). */
  statsVq: boolean;
  /** guest-stats-polling-interval in ns (0: no polling, QEMU's default). */
  statsPollingIntervalNs: number;
  /** Hinted pages: clear them from the migration bitmap (QEMU) or discard them (Firecracker). */
  hintAction: HintAction;
  /** Send DONE as soon as the guest sends STOP (Firecracker's acknowledge_on_stop; QEMU waits for migration). */
  hintAckOnStop: boolean;
  /** `actual`: written by the driver (QEMU) or counted by the device (v86). */
  actualSource: ActualSource;
  /** Ballooning inhibited (QEMU with VFIO, postcopy, background snapshot): inflate, deflate and reports change nothing. */
  inhibited: boolean;
  /** Free page hinting's design: upstream (QEMU 4.0 on, the cmd_id protocol) or v33 (host_cmd and one buffer per report). */
  freePageHintDesign: 'upstream' | 'v33';
};

export const QEMU_BALLOON_DEFAULTS: Readonly<BalloonDeviceOptions> = {
  deflateOnOom: false, freePageHint: false, freePageReporting: false, pagePoison: true, mustTellHost: false, statsVq: true,
  statsPollingIntervalNs: 0, hintAction: 'clear-bitmap', hintAckOnStop: false, actualSource: 'driver', inhibited: false,
  freePageHintDesign: 'upstream',
};

/** Queue sizes QEMU gives each queue (virtio_add_queue): 128, 128, 128, VIRTQUEUE_MAX_SIZE (1024), 32. */
export const QEMU_BALLOON_QUEUE_SIZES: readonly number[] = [128, 128, 128, 1024, 32];

/** FREE_PAGE_HINT_S_* (include/hw/virtio/virtio-balloon.h). */
export const enum FreePageHintStatus {
  stop = 0,
  requested = 1,
  start = 2,
  done = 3,
}
export const FREE_PAGE_HINT_STATUS_NAMES: readonly string[] = ['stop', 'requested', 'start', 'done'];
/** VIRTIO_BALLOON_FREE_PAGE_HINT_CMD_ID_MIN: QEMU's first command id. */
export const FREE_PAGE_HINT_CMD_ID_MIN = 0x80000000;

/**
 * What the device saw, one entry per buffer or command (when tracing is on): the
 * differential report compares this between a model guest and a real one.
 */
export type BalloonTraceEvent =
  | { t_ns: number; kind: 'inflate' | 'deflate'; pfns: number }
  | { t_ns: number; kind: 'stats'; tags: number[] }
  | { t_ns: number; kind: 'hint-cmd'; id: number }
  | { t_ns: number; kind: 'hint'; addr: number; pages: number }
  | { t_ns: number; kind: 'report'; blocks: number; pages: number }
  | { t_ns: number; kind: 'actual'; actual: number };

/** A QMP BALLOON_CHANGE event: the guest's logical size changed. */
export type BalloonChangeEvent = { t_ns: number; actual: number };

export type BalloonDevice = {
  sim: Sim;
  mem: GuestMemory;
  ram: RamBacking;
  costs: CostTable;
  opts: BalloonDeviceOptions;
  t: VirtioTransport;
  /** Guest RAM in bytes (QEMU's ram_size). */
  ramSize: number;
  /** Target balloon size and the size the guest reports, in 4 KiB pages. */
  numPages: number;
  actual: number;
  /** poison_val the driver announced (0 unless PAGE_POISON was virtioVdevHasFeature). */
  poisonVal: number;
  /** Transport index of each queue (by the features the device offers, in creation order). */
  queueIndex: Int32Array;
  /** The device half of each queue once the driver set it up (by BalloonQueue). */
  vq: Array<VirtqDevice | null>;
  /** The stats buffer the device holds (so it can ask for new stats), and the stats last received (-1: not reported). */
  statsVqElem: VirtqElement | null;
  stats: number[];
  /** Virtual time of the last stats update in ns, or -1. */
  statsLastUpdateNs: number;
  /** Bumped to cancel a pending stats poll. */
  statsTimerGen: number;
  freePageHintStatus: FreePageHintStatus;
  freePageHintCmdId: number;
  /**
   * Called for each hinted range while a hint round is running (the migration engine
   * installs it). `clearLog`: whether the hint may also clear the range's dirty log
   * (the model's KVM does for upstream's held blocks; v33's are not held: never).
   */
  onFreePageHint: ((addr: number, len: number, clearLog: boolean) => void) | null;
  /** The free page hinting design (FREE_PAGE_HINT_DEVICE_DESIGNS): the config word, the queue's handler, a stop's duties. */
  hint: FreePageHintDeviceDesign;
  /** Each hint request (the first HINT_ROUNDS_KEPT), for the result document's free_page_hint summary. */
  hintRounds: HintRound[];
  /** v33: requests still unanswered at a stop, whose buffers are to be dropped when they come, and how many were. */
  hintStaleBuffers: number;
  hintStaleDropped: number;
  /** BALLOON_CHANGE events, in order. */
  balloonChanges: BalloonChangeEvent[];
  /** The trace of what the device saw, when enabled (an array), else null. */
  trace: BalloonTraceEvent[] | null;
  /**
   * Which guest-physical pages are in the balloon by the host's count (one byte per
   * PFN). QEMU keeps no such map; the model does so that tests and the checker can
   * compare the host's view with the guest's.
   */
  inflated: Uint8Array;
  inflatedPages: number;
  counters: {
    inflatePfns: number; deflatePfns: number; badPfns: number; deflateNotInflated: number;
    hintedPages: number; hintsIgnored: number; reportedPages: number; reportsKept: number;
    statsUpdates: number; discardedPages: number;
  };
};

/** @qemu hw/virtio/virtio-balloon.c virtio_balloon_get_features: what the device offers, by its properties. */
function virtioBalloonGetFeatures(o: BalloonDeviceOptions): bigint {
  let f = featureBit(VIRTIO_F_VERSION_1) | featureBit(VIRTIO_F_EVENT_IDX) | featureBit(VIRTIO_F_INDIRECT_DESC);
  if (o.mustTellHost) f |= featureBit(VIRTIO_BALLOON_F_MUST_TELL_HOST);
  if (o.statsVq) f |= featureBit(VIRTIO_BALLOON_F_STATS_VQ);
  if (o.deflateOnOom) f |= featureBit(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
  if (o.freePageHint) f |= featureBit(VIRTIO_BALLOON_F_FREE_PAGE_HINT);
  if (o.pagePoison) f |= featureBit(VIRTIO_BALLOON_F_PAGE_POISON);
  if (o.freePageReporting) f |= featureBit(VIRTIO_BALLOON_F_REPORTING);
  return f;
}

/** @qemu hw/virtio/virtio-balloon.c virtio_balloon_config_size: 16 bytes with PAGE_POISON, 12 with FREE_PAGE_HINT, else 8. */
function virtioBalloonConfigSize(f: bigint): number {
  if (hasFeature(f, VIRTIO_BALLOON_F_PAGE_POISON)) return 16;
  if (hasFeature(f, VIRTIO_BALLOON_F_FREE_PAGE_HINT)) return 12;
  return 8;
}

/**
 * @qemu hw/virtio/virtio-balloon.c virtio_balloon_device_realize
 * Creates the device: offered features, queues (numbered in creation order over the
 * queues its features create), config space, and the transport hooks.
 */
export function createBalloonDevice(sim: Sim, mem: GuestMemory, ram: RamBacking, ramSize: number, costs: CostTable, options: Partial<BalloonDeviceOptions> = {}): BalloonDevice {
  const opts = { ...QEMU_BALLOON_DEFAULTS, ...options };
  const features = virtioBalloonGetFeatures(opts);
  const queueIndex = balloonQueueIndices(features);
  const sizes: number[] = [];
  for (let q = 0; q < NR_BALLOON_QUEUES; q++) if (queueIndex[q]! >= 0) sizes.push(QEMU_BALLOON_QUEUE_SIZES[q]!);
  const t = createTransport(mem, VIRTIO_ID_BALLOON, features, virtioBalloonConfigSize(features), sizes);
  const dev: BalloonDevice = {
    sim, mem, ram, costs, opts, t, ramSize, numPages: 0, actual: 0, poisonVal: 0, queueIndex,
    vq: new Array<VirtqDevice | null>(NR_BALLOON_QUEUES).fill(null), statsVqElem: null,
    stats: new Array<number>(VIRTIO_BALLOON_S_NR).fill(-1), statsLastUpdateNs: -1, statsTimerGen: 0,
    freePageHintStatus: FreePageHintStatus.stop, freePageHintCmdId: FREE_PAGE_HINT_CMD_ID_MIN - 1, onFreePageHint: null,
    hint: opts.freePageHintDesign === 'v33' ? FREE_PAGE_HINT_DEVICE_V33 : FREE_PAGE_HINT_DEVICE_UPSTREAM, hintRounds: [], hintStaleBuffers: 0, hintStaleDropped: 0,
    balloonChanges: [], trace: null, inflated: new Uint8Array(Math.ceil((mem.ranges.reduce((m, r) => Math.max(m, r.end), 0)) / TARGET_PAGE_SIZE)), inflatedPages: 0,
    counters: { inflatePfns: 0, deflatePfns: 0, badPfns: 0, deflateNotInflated: 0, hintedPages: 0, hintsIgnored: 0, reportedPages: 0, reportsKept: 0, statsUpdates: 0, discardedPages: 0 },
  };
  virtioBalloonGetConfig(dev);
  t.onStatus = (status) => virtioBalloonSetStatus(dev, status);
  t.onNotify = (idx) => virtioQueueNotify(dev, idx);
  t.onConfigWrite = () => virtioBalloonSetConfig(dev);
  return dev;
}

/** @qemu include/hw/virtio/virtio.h virtio_vdev_has_feature: the driver accepted `bit`. */
function virtioVdevHasFeature(dev: BalloonDevice, bit: number): boolean {
  return hasFeature(dev.t.driverFeatures, bit);
}

/**
 * @qemu hw/virtio/virtio-balloon.c virtio_balloon_get_config
 * Writes the device's view into the config bytes: num_pages, actual, the hint command
 * id by state (REQUESTED: the id; STOP: 0; DONE: 1; START: left 0, as QEMU's zeroed
 * struct leaves it), poison_val.
 */
function virtioBalloonGetConfig(dev: BalloonDevice): void {
  const t = dev.t;
  configWriteLe32(t, VIRTIO_BALLOON_CONFIG_NUM_PAGES, dev.numPages);
  configWriteLe32(t, VIRTIO_BALLOON_CONFIG_ACTUAL, dev.actual);
  if (t.config.length >= 12) configWriteLe32(t, VIRTIO_BALLOON_CONFIG_FREE_PAGE_HINT_CMD_ID, dev.hint.configWord(dev));
  if (t.config.length >= 16) configWriteLe32(t, VIRTIO_BALLOON_CONFIG_POISON_VAL, dev.poisonVal);
}

/** @qemu hw/virtio/virtio.c virtio_notify_config: new config, generation bump, config interrupt. */
function virtioNotifyConfig(dev: BalloonDevice): void {
  virtioBalloonGetConfig(dev);
  transportConfigChanged(dev.t);
}

/** The guest's logical size changed: a BALLOON_CHANGE event (qapi_event_send_balloon_change). */
function balloonChangeEvent(dev: BalloonDevice, old: number): void {
  if (dev.actual === old) return;
  dev.balloonChanges.push({ t_ns: dev.sim.now, actual: dev.ramSize - dev.actual * TARGET_PAGE_SIZE });
  dev.trace?.push({ t_ns: dev.sim.now, kind: 'actual', actual: dev.actual });
}

/**
 * @qemu hw/virtio/virtio-balloon.c virtio_balloon_set_config
 * The driver wrote the config: take `actual` (unless the device counts it itself) and,
 * with PAGE_POISON negotiated, poison_val.
 */
function virtioBalloonSetConfig(dev: BalloonDevice): void {
  const t = dev.t;
  if (dev.opts.actualSource === 'driver') {
    const old = dev.actual;
    dev.actual = configReadLe32(t, VIRTIO_BALLOON_CONFIG_ACTUAL);
    balloonChangeEvent(dev, old);
  } else {
    // v86: `actual` is read-only to the driver; put the device's count back
    configWriteLe32(t, VIRTIO_BALLOON_CONFIG_ACTUAL, dev.actual);
  }
  dev.poisonVal = t.config.length >= 16 && virtioVdevHasFeature(dev, VIRTIO_BALLOON_F_PAGE_POISON) ? configReadLe32(t, VIRTIO_BALLOON_CONFIG_POISON_VAL) : 0;
}

/**
 * @qemu hw/virtio/virtio-balloon.c virtio_balloon_set_status
 * DRIVER_OK: the queues the driver set up come alive, and the stats buffer the driver
 * primed is taken. Reset: everything the driver gave is forgotten.
 */
function virtioBalloonSetStatus(dev: BalloonDevice, status: number): void {
  if (status === 0) {
    dev.vq.fill(null);
    dev.statsVqElem = null;
    dev.poisonVal = 0;
    dev.statsTimerGen++;
    if (dev.freePageHintStatus !== FreePageHintStatus.done) dev.freePageHintStatus = FreePageHintStatus.stop;
    virtioBalloonGetConfig(dev);
    return;
  }
  if (!(status & VIRTIO_CONFIG_S_DRIVER_OK)) return;
  for (let q = 0; q < NR_BALLOON_QUEUES; q++) {
    const idx = dev.queueIndex[q]!;
    const layout = idx >= 0 ? transportQueueLayout(dev.t, idx) : null;
    dev.vq[q] = layout ? virtqDeviceCreate(dev.mem, layout, dev.t, `virtio-balloon ${BALLOON_QUEUE_NAMES[q]} queue`) : null;
  }
  if (dev.vq[BalloonQueue.stats]) virtioBalloonReceiveStats(dev);
  if (dev.opts.statsPollingIntervalNs > 0) balloonStatsChangeTimer(dev, dev.opts.statsPollingIntervalNs);
}

function virtioQueueNotify(dev: BalloonDevice, idx: number): void {
  for (let q = 0; q < NR_BALLOON_QUEUES; q++) {
    if (dev.queueIndex[q] !== idx) continue;
    switch (q) {
      case BalloonQueue.inflate: case BalloonQueue.deflate: virtioBalloonHandleOutput(dev, q); break;
      case BalloonQueue.stats: virtioBalloonReceiveStats(dev); break;
      case BalloonQueue.freePage: dev.hint.handleQueue(dev); break;
      case BalloonQueue.reporting: virtioBalloonHandleReport(dev); break;
    }
    return;
  }
}

/** Pushes an element back and interrupts the driver if it wants one. */
/** virtqueue_push then virtio_notify, as every balloon queue handler does. */
function pushAndNotify(dev: BalloonDevice, q: BalloonQueue, elem: VirtqElement, len: number): void {
  const vq = dev.vq[q]!;
  virtqueuePush(vq, elem, len);
  if (virtqueueShouldNotify(vq)) transportInterrupt(dev.t, dev.queueIndex[q]!);
}

/** Reads `n` bytes starting at byte `off` of a chain's buffers as one stream (iov_to_buf); null if short. */
function iovReadLe(mem: GuestMemory, sgs: Sg[], off: number, n: 2 | 4): number | null {
  let base = 0;
  for (const sg of sgs) {
    if (off < base + sg.len) {
      const at = off - base;
      if (at + n <= sg.len) return n === 2 ? readLe16(mem, sg.addr + at) : readLe32(mem, sg.addr + at);
      // straddles two buffers: byte by byte
      let v = 0;
      for (let i = n - 1; i >= 0; i--) {
        const b = iovByte(mem, sgs, off + i);
        if (b === null) return null;
        v = v * 256 + b;
      }
      return v;
    }
    base += sg.len;
  }
  return null;
}

function iovByte(mem: GuestMemory, sgs: Sg[], off: number): number | null {
  let base = 0;
  for (const sg of sgs) {
    if (off < base + sg.len) return readU8(mem, sg.addr + off - base);
    base += sg.len;
  }
  return null;
}

function iovPages(sgs: Sg[]): number {
  let n = 0;
  for (const sg of sgs) n += Math.ceil(sg.len / TARGET_PAGE_SIZE);
  return n;
}

function iovLen(sgs: Sg[]): number {
  let n = 0;
  for (const sg of sgs) n += sg.len;
  return n;
}

/** @qemu system/physmem.c ram_block_discard_range: the host drops the range's backing; the bytes read as zero. */
function ramBlockDiscardRange(dev: BalloonDevice, addr: number, len: number, perPageNs: number): void {
  const first = Math.floor(addr / TARGET_PAGE_SIZE), n = Math.ceil((addr + len) / TARGET_PAGE_SIZE) - first;
  dev.counters.discardedPages += ramDiscard(dev.ram, first, n);
  for (let p = first; p < first + n; p++) discardPage(dev.mem, p);
  dev.t.busyNs += n * perPageNs;
}

/** @qemu hw/virtio/virtio-balloon.c balloon_inflate_page: the page's backing is discarded. */
function balloonInflatePage(dev: BalloonDevice, pfn: number): void {
  dev.counters.inflatePfns++;
  if (!dev.inflated[pfn]) { dev.inflated[pfn] = 1; dev.inflatedPages++; }
  ramBlockDiscardRange(dev, pfn * TARGET_PAGE_SIZE, TARGET_PAGE_SIZE, dev.costs.hostDiscardPage);
  if (dev.opts.actualSource === 'device') dev.actual++;
}

/**
 * @qemu hw/virtio/virtio-balloon.c balloon_deflate_page
 * The page comes back on the guest's next write; QEMU still makes one system call per
 * PFN, qemu_madvise(MADV_WILLNEED) of the host page (which for anonymous memory only
 * looks for swap entries to read ahead), whether or not the page was inflated:
 * hostWillneedPage, with the PFN's lookup.
 */
function balloonDeflatePage(dev: BalloonDevice, pfn: number): void {
  dev.t.busyNs += dev.costs.hostWillneedPage;
  dev.counters.deflatePfns++;
  if (dev.inflated[pfn]) { dev.inflated[pfn] = 0; dev.inflatedPages--; } else dev.counters.deflateNotInflated++;
  if (dev.opts.actualSource === 'device') dev.actual = Math.max(0, dev.actual - 1);
}

/**
 * @qemu hw/virtio/virtio-balloon.c virtio_balloon_handle_output
 * Inflate or deflate: every le32 PFN in every available buffer. PFNs outside guest RAM
 * are skipped; inflated pages are discarded, deflated ones are left to fault back in.
 */
function virtioBalloonHandleOutput(dev: BalloonDevice, q: BalloonQueue.inflate | BalloonQueue.deflate): void {
  const vq = dev.vq[q];
  if (!vq) return;
  const inflate = q === BalloonQueue.inflate;
  const c = dev.counters;
  for (;;) {
    const elem = virtqueuePop(vq);
    if (!elem) break;
    dev.t.busyNs += dev.costs.virtqueueKick;
    const before = dev.actual;
    const total = iovLen(elem.out);
    // virtqueuePop checked that every buffer lies in guest RAM: these reads cannot fault.
    // NOTE: Linux hands the PFN array as one buffer: its bytes are read once, not per PFN.
    const one = elem.out.length === 1 ? readBytes(dev.mem, elem.out[0]!.addr, total) : null;
    for (let off = 0; off + 4 <= total; off += 4) {
      const pfn = one !== null ? (one[off]! | (one[off + 1]! << 8) | (one[off + 2]! << 16) | (one[off + 3]! << 24)) >>> 0 : iovReadLe(dev.mem, elem.out, off, 4)!;
      const pa = pfn * 2 ** VIRTIO_BALLOON_PFN_SHIFT;
      if (!isRam(dev.mem, pa, TARGET_PAGE_SIZE)) { c.badPfns++; continue; }
      if (dev.opts.inhibited) continue;
      if (inflate) balloonInflatePage(dev, pfn);
      else balloonDeflatePage(dev, pfn);
    }
    dev.trace?.push({ t_ns: dev.sim.now, kind: inflate ? 'inflate' : 'deflate', pfns: Math.floor(total / 4) });
    pushAndNotify(dev, q, elem, 0);
    if (dev.opts.actualSource === 'device') {
      virtioBalloonGetConfig(dev);
      balloonChangeEvent(dev, before);
    }
  }
}

// ---------------------------------------------------------------------------------
// Statistics

/**
 * @qemu hw/virtio/virtio-balloon.c virtio_balloon_receive_stats
 * The driver returned the stats buffer: read its (le16 tag, le64 value) entries, keep
 * the buffer to ask again later.
 */
function virtioBalloonReceiveStats(dev: BalloonDevice): void {
  const vq = dev.vq[BalloonQueue.stats];
  if (!vq) return;
  const elem = virtqueuePop(vq);
  if (!elem) return;
  if (dev.statsVqElem !== null) {
    // Not the spec's protocol (one buffer at a time), but QEMU copes: give the old one back.
    pushAndNotify(dev, BalloonQueue.stats, dev.statsVqElem, 0);
  }
  dev.statsVqElem = elem;
  dev.stats.fill(-1);
  const total = iovLen(elem.out);
  for (let off = 0; off + VIRTIO_BALLOON_STAT_SIZE <= total; off += VIRTIO_BALLOON_STAT_SIZE) {
    const tag = iovReadLe(dev.mem, elem.out, off, 2)!;
    const lo = iovReadLe(dev.mem, elem.out, off + 2, 4)!, hi = iovReadLe(dev.mem, elem.out, off + 6, 4)!;
    if (tag < VIRTIO_BALLOON_S_NR) dev.stats[tag] = hi * 0x100000000 + lo;
  }
  dev.counters.statsUpdates++;
  if (dev.trace) {
    const tags: number[] = [];
    for (let off = 0; off + VIRTIO_BALLOON_STAT_SIZE <= total; off += VIRTIO_BALLOON_STAT_SIZE) tags.push(iovReadLe(dev.mem, elem.out, off, 2)!);
    tags.sort((a, b) => a - b);
    dev.trace.push({ t_ns: dev.sim.now, kind: 'stats', tags });
  }
  dev.statsLastUpdateNs = dev.sim.now;
  if (dev.opts.statsPollingIntervalNs > 0) balloonStatsChangeTimer(dev, dev.opts.statsPollingIntervalNs);
}

/** balloon_stats_change_timer(): (re)arms the poll `delayNs` from now. */
function balloonStatsChangeTimer(dev: BalloonDevice, delayNs: number): void {
  const gen = ++dev.statsTimerGen;
  simAfter(dev.sim, delayNs, () => { if (gen === dev.statsTimerGen) balloonStatsPollCb(dev); });
}

/**
 * @qemu hw/virtio/virtio-balloon.c balloon_stats_poll_cb
 * Time for fresh stats: hand the buffer back to the driver, which refills it. Without
 * a buffer (the driver has not returned it yet) just try again an interval later.
 */
function balloonStatsPollCb(dev: BalloonDevice): void {
  if (dev.statsVqElem === null || !dev.vq[BalloonQueue.stats] || !(dev.t.status & VIRTIO_CONFIG_S_DRIVER_OK)) {
    if (dev.opts.statsPollingIntervalNs > 0) balloonStatsChangeTimer(dev, dev.opts.statsPollingIntervalNs);
    return;
  }
  const elem = dev.statsVqElem;
  dev.statsVqElem = null;
  pushAndNotify(dev, BalloonQueue.stats, elem, 0);
}

/**
 * @qemu hw/virtio/virtio-balloon.c balloon_stats_set_poll_interval
 * qom-set guest-stats-polling-interval: 0 stops polling; otherwise poll now and then
 * every interval.
 */
export function balloonStatsSetPollInterval(dev: BalloonDevice, intervalNs: number): void {
  dev.opts.statsPollingIntervalNs = intervalNs;
  if (intervalNs <= 0) { dev.statsTimerGen++; return; }
  balloonStatsChangeTimer(dev, 0);
}

/**
 * @qemu hw/virtio/virtio-balloon.c balloon_stats_get_all
 * The guest-stats QOM property, exactly as QEMU returns it (stats not reported are -1).
 */
export function balloonStatsGetAll(dev: BalloonDevice): { stats: Record<string, number>; 'last-update': number } {
  const stats: Record<string, number> = {};
  BALLOON_STAT_NAMES.forEach((name, i) => { stats[name] = dev.stats[i]!; });
  return { stats, 'last-update': dev.statsLastUpdateNs < 0 ? 0 : Math.floor(dev.statsLastUpdateNs / 1e9) };
}

// ---------------------------------------------------------------------------------
// Free page hinting

/**
 * One free page hinting design as the device takes it; the driver's counterpart is
 * guest/drivers/virtio_balloon.ts FreePageHintDriverDesign. The state machine
 * (FreePageHintStatus, start/stop/done below) is QEMU's for both.
 */
export type FreePageHintDeviceDesign = {
  readonly name: 'upstream' | 'v33';
  /** The config word at offset 8 in the current state (free_page_hint_cmd_id; v33's host_cmd). */
  configWord(dev: BalloonDevice): number;
  /** The free page queue's handler. */
  handleQueue(dev: BalloonDevice): void;
  /** What a stop (before a bitmap sync) owes the design, before the state becomes STOP. */
  stop(dev: BalloonDevice): void;
};

/** One hint request, and the guest's answer to it. */
export type HintRound = {
  /** When the host asked (free_page_start), and when the round ended (upstream: the guest's STOP, or the host's stop; v33: the guest's buffer); -1 before, and for ever when unanswered. */
  requestNs: number;
  endNs: number;
  /** Pages the device took as hints in it. */
  pages: number;
  /** Upstream: the host stopped the round (a bitmap sync) before the guest ran out of blocks; endNs is then the stop. */
  byHost: boolean;
};

/** Hint requests kept in dev.hintRounds. */
const HINT_ROUNDS_KEPT = 64;

/** The request the guest is answering now: the last one, if not over. */
function hintRoundOpen(dev: BalloonDevice): HintRound | null {
  const r = dev.hintRounds.at(-1);
  return r !== undefined && r.endNs < 0 ? r : null;
}

function hintRoundEnd(dev: BalloonDevice, byHost: boolean): void {
  const r = hintRoundOpen(dev);
  if (r === null) return;
  r.endNs = dev.sim.now;
  r.byHost = byHost;
}

/** One hinted range: counted, traced, and cleared from the migration (or discarded, Firecracker's way). */
function freePageHintRange(dev: BalloonDevice, addr: number, len: number, clearLog: boolean): void {
  const pages = Math.ceil(len / TARGET_PAGE_SIZE);
  dev.counters.hintedPages += pages;
  const r = hintRoundOpen(dev);
  if (r !== null) r.pages += pages;
  dev.trace?.push({ t_ns: dev.sim.now, kind: 'hint', addr, pages });
  if (dev.opts.hintAction === 'discard') ramBlockDiscardRange(dev, addr, len, dev.costs.hostDiscardRangePage);
  else dev.onFreePageHint?.(addr, len, clearLog);
}

export const FREE_PAGE_HINT_DEVICE_UPSTREAM: FreePageHintDeviceDesign = {
  name: 'upstream',
  /** REQUESTED: the id; STOP: 0; DONE: 1; START: left 0, as QEMU's zeroed struct leaves it */
  configWord: (dev) => {
    const s = dev.freePageHintStatus;
    return s === FreePageHintStatus.requested ? dev.freePageHintCmdId : s === FreePageHintStatus.done ? VIRTIO_BALLOON_CMD_ID_DONE : VIRTIO_BALLOON_CMD_ID_STOP;
  },
  handleQueue: (dev) => getFreePageHints(dev),
  /** a started round the host stops is over for the host (the guest's STOP follows); one never started stays unanswered */
  stop: (dev) => { if (dev.freePageHintStatus === FreePageHintStatus.start) hintRoundEnd(dev, true); },
};

/**
 * @qemu hw/virtio/virtio-balloon.c get_free_page_hints
 * Drains the free page queue: an output buffer is a command id (the guest's echo of
 * the current id starts the round; anything else while started stops it); input
 * buffers are free ranges, used only while started.
 */
function getFreePageHints(dev: BalloonDevice): void {
  const vq = dev.vq[BalloonQueue.freePage];
  if (!vq) return;
  for (;;) {
    const elem = virtqueuePop(vq);
    if (!elem) break;
    if (elem.out.length) {
      if (iovLen(elem.out) !== 4) {
        virtioError(dev.t, 'virtio-balloon: received an incorrect cmd id');
        return;
      }
      const id = iovReadLe(dev.mem, elem.out, 0, 4)!;
      dev.trace?.push({ t_ns: dev.sim.now, kind: 'hint-cmd', id });
      if (dev.freePageHintStatus === FreePageHintStatus.requested && id === dev.freePageHintCmdId) {
        dev.freePageHintStatus = FreePageHintStatus.start;
        virtioBalloonGetConfig(dev);
      } else if (dev.freePageHintStatus === FreePageHintStatus.start) {
        // the guest's STOP (only a started round can be stopped: no stale stop for an old id)
        hintRoundEnd(dev, false);
        dev.freePageHintStatus = FreePageHintStatus.stop;
        virtioBalloonGetConfig(dev);
        if (dev.opts.hintAckOnStop) virtioBalloonFreePageDone(dev);
      }
    }
    for (const sg of elem.in) {
      if (dev.freePageHintStatus !== FreePageHintStatus.start) { dev.counters.hintsIgnored += Math.ceil(sg.len / TARGET_PAGE_SIZE); continue; }
      freePageHintRange(dev, sg.addr, sg.len, true);
    }
    pushAndNotify(dev, BalloonQueue.freePage, elem, 0);
  }
}

/**
 * v33's device side. No QEMU series for v33's host_cmd interface was found (QEMU's
 * free page hinting, commit c13c4153f7 of 2018-12, speaks the cmd_id protocol of
 * kernel v35 on), so this device keeps QEMU's rules with v33's wire: REQUESTED shows
 * VIRTIO_BALLOON_HOST_CMD_FREE_PAGE_HINT in host_cmd; a report (one output buffer) is
 * taken only while REQUESTED and answers that request; hints are never applied across
 * a bitmap sync (c13c4153f7: "Guest reporting must be disabled before the migration
 * dirty bitmap is synchronized") — v33 carries no id to tell an old report from a new
 * one, so a request still unanswered at a stop has its buffer dropped when it comes;
 * and a hint clears the migration bitmap only (QEMU 4.0's qemu_guest_free_page_hint:
 * the pages are not held, and a write since the last sync must stay in the dirty log).
 */
export const FREE_PAGE_HINT_DEVICE_V33: FreePageHintDeviceDesign = {
  name: 'v33',
  configWord: (dev) => (dev.freePageHintStatus === FreePageHintStatus.requested ? VIRTIO_BALLOON_HOST_CMD_FREE_PAGE_HINT : 0),
  handleQueue: (dev) => getFreePageHintsV33(dev),
  stop: (dev) => { if (dev.freePageHintStatus === FreePageHintStatus.requested) dev.hintStaleBuffers++; },
};

/** Reads a le64 at byte `off` of a chain's buffers (two le32 halves); null if short, Infinity above 2^53. */
function iovReadLe64(mem: GuestMemory, sgs: Sg[], off: number): number | null {
  const lo = iovReadLe(mem, sgs, off, 4), hi = iovReadLe(mem, sgs, off + 4, 4);
  if (lo === null || hi === null) return null;
  return hi >= 0x200000 ? Infinity : hi * 0x100000000 + lo;
}

/**
 * v33's free page queue: each output buffer is struct virtio_balloon_free_page_hints
 * (le32 num_hints, le32 size, le64 addresses). A buffer too short for its header or its
 * num_hints, a size that is not whole pages, or input buffers break the device
 * (virtio_error). Addresses outside guest RAM are skipped (counted as badPfns). A
 * buffer taken while REQUESTED ends the request.
 */
function getFreePageHintsV33(dev: BalloonDevice): void {
  const vq = dev.vq[BalloonQueue.freePage];
  if (!vq) return;
  for (;;) {
    const elem = virtqueuePop(vq);
    if (!elem) break;
    const total = iovLen(elem.out);
    if (elem.in.length || total < VIRTIO_BALLOON_FREE_PAGE_HINTS_HDR_BYTES) {
      virtioError(dev.t, 'virtio-balloon: a free page report must be one output buffer with num_hints and size');
      return;
    }
    const num = iovReadLe(dev.mem, elem.out, 0, 4)!, size = iovReadLe(dev.mem, elem.out, 4, 4)!;
    if (VIRTIO_BALLOON_FREE_PAGE_HINTS_HDR_BYTES + num * VIRTIO_BALLOON_FREE_PAGE_HINT_ENTRY_BYTES > total) {
      virtioError(dev.t, `virtio-balloon: num_hints ${num} overruns the ${total}-byte report`);
      return;
    }
    if (num > 0 && (size === 0 || size % TARGET_PAGE_SIZE !== 0)) {
      virtioError(dev.t, `virtio-balloon: hint size ${size} is not whole pages`);
      return;
    }
    let take = dev.freePageHintStatus === FreePageHintStatus.requested;
    if (dev.hintStaleBuffers > 0) {
      // walked before the last sync: its free blocks may have been written since
      dev.hintStaleBuffers--;
      dev.hintStaleDropped++;
      take = false;
    }
    // NOTE: one buffer of up to 524287 entries; read in place
    for (let i = 0; i < num; i++) {
      const addr = iovReadLe64(dev.mem, elem.out, VIRTIO_BALLOON_FREE_PAGE_HINTS_HDR_BYTES + i * VIRTIO_BALLOON_FREE_PAGE_HINT_ENTRY_BYTES)!;
      if (!isRam(dev.mem, addr, size)) { dev.counters.badPfns++; continue; }
      if (!take) { dev.counters.hintsIgnored += size / TARGET_PAGE_SIZE; continue; }
      freePageHintRange(dev, addr, size, false);
    }
    if (take) {
      hintRoundEnd(dev, false);
      dev.freePageHintStatus = FreePageHintStatus.stop;
      virtioBalloonGetConfig(dev);
    }
    pushAndNotify(dev, BalloonQueue.freePage, elem, 0);
  }
}

/**
 * @qemu hw/virtio/virtio-balloon.c virtio_balloon_free_page_start
 * Asks the guest for a new round of hints: next command id (from 0x80000000, wrapping
 * back there after UINT_MAX), state REQUESTED, config interrupt. Returns false when
 * the feature was not negotiated.
 */
export function virtioBalloonFreePageStart(dev: BalloonDevice): boolean {
  if (!virtioVdevHasFeature(dev, VIRTIO_BALLOON_F_FREE_PAGE_HINT)) return false;
  dev.freePageHintCmdId = dev.freePageHintCmdId >= 0xffffffff ? FREE_PAGE_HINT_CMD_ID_MIN : dev.freePageHintCmdId + 1;
  dev.freePageHintStatus = FreePageHintStatus.requested;
  if (dev.hintRounds.length < HINT_ROUNDS_KEPT) dev.hintRounds.push({ requestNs: dev.sim.now, endNs: -1, pages: 0, byHost: false });
  virtioNotifyConfig(dev);
  return true;
}

/**
 * @qemu hw/virtio/virtio-balloon.c virtio_balloon_free_page_stop
 * Stops the round (the guest keeps the pages it holds until DONE).
 */
export function virtioBalloonFreePageStop(dev: BalloonDevice): void {
  if (dev.freePageHintStatus === FreePageHintStatus.stop) return;
  dev.hint.stop(dev);
  dev.freePageHintStatus = FreePageHintStatus.stop;
  virtioNotifyConfig(dev);
}

/**
 * @qemu hw/virtio/virtio-balloon.c virtio_balloon_free_page_done
 * The host no longer needs the hinted pages: the guest gives them all back.
 */
export function virtioBalloonFreePageDone(dev: BalloonDevice): void {
  dev.freePageHintStatus = FreePageHintStatus.done;
  virtioNotifyConfig(dev);
}

// ---------------------------------------------------------------------------------
// Free page reporting

/**
 * @qemu hw/virtio/virtio-balloon.c virtio_balloon_handle_report
 * Reported free ranges are discarded — unless ballooning is inhibited or the guest
 * announced a non-zero poison value (the pages must keep it, and a discarded page
 * would come back as zeroes).
 */
function virtioBalloonHandleReport(dev: BalloonDevice): void {
  const vq = dev.vq[BalloonQueue.reporting];
  if (!vq) return;
  for (;;) {
    const elem = virtqueuePop(vq);
    if (!elem) break;
    dev.t.busyNs += dev.costs.virtqueueKick;
    for (const sg of elem.in) {
      const pages = Math.ceil(sg.len / TARGET_PAGE_SIZE);
      dev.counters.reportedPages += pages;
      if (dev.opts.inhibited || dev.poisonVal !== 0) { dev.counters.reportsKept += pages; continue; }
      ramBlockDiscardRange(dev, sg.addr, sg.len, dev.costs.hostDiscardRangePage);
    }
    dev.trace?.push({ t_ns: dev.sim.now, kind: 'report', blocks: elem.in.length, pages: iovPages(elem.in) });
    pushAndNotify(dev, BalloonQueue.reporting, elem, 0);
  }
}

// ---------------------------------------------------------------------------------
// Control (what QMP's balloon and query-balloon do)

/**
 * @qemu hw/virtio/virtio-balloon.c virtio_balloon_to_target
 * Sets the guest's logical size in bytes: num_pages = (ram_size - target) / 4 KiB,
 * targets above RAM clamp to RAM; a config interrupt tells the driver.
 */
export function virtioBalloonToTarget(dev: BalloonDevice, targetBytes: number): void {
  const target = Math.min(targetBytes, dev.ramSize);
  if (target <= 0) return;
  dev.numPages = Math.floor((dev.ramSize - target) / TARGET_PAGE_SIZE);
  virtioNotifyConfig(dev);
}

/** query-balloon's `actual`: the guest's logical size in bytes (RAM minus the balloon). */
export function virtioBalloonStat(dev: BalloonDevice): number {
  return dev.ramSize - dev.actual * TARGET_PAGE_SIZE;
}
