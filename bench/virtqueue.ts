/**
 * `balloonlab bench virtqueue`: buffers per second through the real split rings in
 * guest memory, driver half and device half meeting only in the ring bytes.
 *
 * Method: a 1 GiB guest-physical RAM range holds one 128-entry queue (the size QEMU
 * gives the balloon's inflate queue) with VIRTIO_F_EVENT_IDX negotiated. Each round
 * trip is what the balloon driver's tell_host and QEMU's handle_output do for one
 * inflate: the driver adds one 1024-byte device-readable buffer (an array of 256 le32
 * PFNs, VIRTIO_BALLOON_ARRAY_PFNS_MAX) with virtqAddBuf and asks virtqKickPrepare
 * whether to kick; the device takes it with virtqueuePop (every validation rule
 * applied), returns it with virtqueuePush and asks virtqueueShouldNotify whether to
 * interrupt; the driver collects it with virtqGetBuf. One buffer is in flight at a
 * time, as in tell_host, so every buffer costs a kick and an interrupt decision that
 * says yes. The PFN bytes are written and checked once outside the timed loop: the
 * figure is the ring's cost, not the cost of copying the payload.
 *
 * The second figure is page reporting's shape: one chain of 32 device-writable 2 MiB
 * buffers (PAGE_REPORTING_CAPACITY entries of pageblock order, added with
 * virtqueue_add_inbuf) per round trip. Each figure is the median of `runs` runs after
 * one untimed warm-up run, each on a fresh guest memory and queue.
 */
import { median } from './stats.js';
import { createGuestMemory, readBytes, writeLe32, type GuestMemory } from '../src/virtio/guest_memory.js';
import {
  type Sg, virtqAddBuf, virtqDeviceCreate, virtqDriverCreate, virtqGetBuf, virtqKickPrepare,
  virtqueuePop, virtqueuePush, virtqueueShouldNotify,
} from '../src/virtio/virtqueue.js';
import { type VirtqLayout, virtqPartSizes } from '../src/virtio/virtio_ring.js';
import { type VirtioTransport, createTransport } from '../src/virtio/transport.js';

/** A bare device transport for the queue's device half (balloon id, no features). */
function benchTransport(mem: GuestMemory): VirtioTransport {
  return createTransport(mem, 5, 0n, 8, [VIRTQUEUE_BENCH_MAX]);
}
const VIRTQUEUE_BENCH_MAX = 32768;

export type VirtqueueBenchOptions = {
  /** Inflate round trips timed per run. */
  buffers: number;
  /** Page-reporting round trips (32-entry chains) timed per run. */
  chains: number;
  runs: number;
  queueSize: number;
  eventIdx: boolean;
};

export const DEFAULT_VIRTQUEUE_BENCH: VirtqueueBenchOptions = {
  buffers: 2_000_000, chains: 200_000, runs: 5, queueSize: 128, eventIdx: true,
};

/** VIRTIO_BALLOON_ARRAY_PFNS_MAX: PFNs per inflate buffer (le32 each). */
const PFNS_PER_BUFFER = 256;
/** PAGE_REPORTING_CAPACITY: scatterlist entries per report. */
const REPORT_CAPACITY = 32;
/** Page reporting's smallest order on x86 (pageblock_order), as bytes. */
const REPORT_ENTRY_BYTES = 2 * 1024 * 1024;
const RAM_BYTES = 1024 * 1024 * 1024;
const QUEUE_BASE = 0x100000;
const PFN_ARRAY_ADDR = 0x200000;
const REPORT_BASE = 0x1000000;

export type VirtqueueBenchResult = {
  bench: 'virtqueue';
  /** Inflate round trips (one 1024-byte buffer of 256 PFNs) per second: the headline. */
  buffers_per_s: number;
  buffers_per_s_runs: number[];
  /** Page-reporting round trips (one chain of 32 device-writable buffers) per second. */
  report_chains_per_s: number;
  report_chains_per_s_runs: number[];
  /** The same, counted in descriptors. */
  report_descriptors_per_s: number;
  buffers_per_run: number;
  chains_per_run: number;
  runs: number;
  queue_size: number;
  event_idx: boolean;
  buffer_bytes: number;
  pfns_per_buffer: number;
  chain_descriptors: number;
  /** Kicks and interrupts per inflate buffer (1 and 1 with one buffer in flight). */
  kicks_per_buffer: number;
  interrupts_per_buffer: number;
  /** The device never broke, every token came back, and the device saw the PFNs the driver wrote. */
  ok: boolean;
  node: string;
};

/** Lays out a queue as vring_init does: descriptors, then the available ring, then the used ring on the next 4 KiB. */
function layoutAt(base: number, size: number, eventIdx: boolean): VirtqLayout {
  const sz = virtqPartSizes(size);
  const availAddr = base + sz.desc;
  const usedAddr = Math.ceil((availAddr + sz.avail + 2) / 4096) * 4096;
  return { size, descAddr: base, availAddr, usedAddr, eventIdx };
}

type RunFigures = { rate: number; kicks: number; interrupts: number; ok: boolean };

/** Times `count` round trips of the chain `out`/`inn` on a fresh queue. */
function timedRun(mem: GuestMemory, opts: VirtqueueBenchOptions, out: Sg[], inn: Sg[], count: number, now: () => number): RunFigures {
  const layout = layoutAt(QUEUE_BASE, opts.queueSize, opts.eventIdx);
  const drv = virtqDriverCreate(mem, layout);
  const dev = virtqDeviceCreate(mem, layout, benchTransport(mem), 'bench queue');
  const descs = out.length + inn.length;
  let kicks = 0, interrupts = 0, ok = true;
  const t0 = now();
  for (let i = 0; i < count; i++) {
    if (!virtqAddBuf(drv, out, inn, i)) { ok = false; break; }
    if (virtqKickPrepare(drv)) kicks++;
    const e = virtqueuePop(dev);
    if (e === null || e.out.length + e.in.length !== descs) { ok = false; break; }
    virtqueuePush(dev, e, 0);
    if (virtqueueShouldNotify(dev)) interrupts++;
    const used = virtqGetBuf(drv);
    if (used === null || used.token !== i) { ok = false; break; }
  }
  const dt = (now() - t0) / 1000;
  return { rate: Math.round(count / dt), kicks, interrupts, ok: ok && dev.vdev.error === null };
}

/** Whether the device, popping one inflate buffer, reads the PFNs the driver wrote. */
function pfnsArrive(mem: GuestMemory, opts: VirtqueueBenchOptions, out: Sg[]): boolean {
  const layout = layoutAt(QUEUE_BASE, opts.queueSize, opts.eventIdx);
  const drv = virtqDriverCreate(mem, layout);
  const dev = virtqDeviceCreate(mem, layout, benchTransport(mem), 'bench queue');
  virtqAddBuf(drv, out, [], 1);
  const e = virtqueuePop(dev);
  if (e === null || e.out.length !== 1) return false;
  const bytes = readBytes(mem, e.out[0]!.addr, e.out[0]!.len);
  const pfns = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let k = 0; k < PFNS_PER_BUFFER; k++) if (pfns.getUint32(4 * k, true) !== 0x40000 + 7 * k) return false;
  virtqueuePush(dev, e, 0);
  return virtqGetBuf(drv)?.token === 1;
}

export function benchVirtqueue(opts: VirtqueueBenchOptions = DEFAULT_VIRTQUEUE_BENCH, now: () => number = () => performance.now()): VirtqueueBenchResult {
  const inflate: Sg[] = [{ addr: PFN_ARRAY_ADDR, len: 4 * PFNS_PER_BUFFER }];
  const report: Sg[] = Array.from({ length: REPORT_CAPACITY }, (_, k) => ({ addr: REPORT_BASE + k * REPORT_ENTRY_BYTES, len: REPORT_ENTRY_BYTES }));
  const fresh = (): GuestMemory => {
    const mem = createGuestMemory([{ start: 0, end: RAM_BYTES }]);
    for (let k = 0; k < PFNS_PER_BUFFER; k++) writeLe32(mem, PFN_ARRAY_ADDR + 4 * k, 0x40000 + 7 * k);
    return mem;
  };
  let ok = pfnsArrive(fresh(), opts, inflate);
  // One untimed warm-up run of each, so the figures are steady-state (JIT-compiled) throughput.
  timedRun(fresh(), opts, inflate, [], opts.buffers, now);
  timedRun(fresh(), opts, [], report, opts.chains, now);
  const rates: number[] = [];
  const chainRates: number[] = [];
  let kicks = 0, interrupts = 0;
  for (let run = 0; run < opts.runs; run++) {
    const a = timedRun(fresh(), opts, inflate, [], opts.buffers, now);
    rates.push(a.rate);
    kicks = a.kicks;
    interrupts = a.interrupts;
    const b = timedRun(fresh(), opts, [], report, opts.chains, now);
    chainRates.push(b.rate);
    ok &&= a.ok && b.ok;
  }
  const chainsPerS = median(chainRates);
  return {
    bench: 'virtqueue',
    buffers_per_s: median(rates),
    buffers_per_s_runs: rates,
    report_chains_per_s: chainsPerS,
    report_chains_per_s_runs: chainRates,
    report_descriptors_per_s: Math.round(chainsPerS * REPORT_CAPACITY),
    buffers_per_run: opts.buffers,
    chains_per_run: opts.chains,
    runs: opts.runs,
    queue_size: opts.queueSize,
    event_idx: opts.eventIdx,
    buffer_bytes: 4 * PFNS_PER_BUFFER,
    pfns_per_buffer: PFNS_PER_BUFFER,
    chain_descriptors: REPORT_CAPACITY,
    kicks_per_buffer: +(kicks / opts.buffers).toFixed(4),
    interrupts_per_buffer: +(interrupts / opts.buffers).toFixed(4),
    ok,
    node: typeof process !== 'undefined' ? process.version : 'unknown',
  };
}
