/**
 * The split virtqueue (VIRTIO 1.2 §2.7, "Split Virtqueues"), byte for byte in
 * guest-physical memory, with a driver half and a device half that share nothing but
 * those bytes.
 * (virtio_ring.ts has the layout.)
 *
 * The device half validates everything the driver controls before using it, as
 * QEMU's virtqueue_pop does (hw/virtio/virtio.c): the available index may not run
 * more than a ring ahead, heads and next indices must be in range, chains may not
 * loop or exceed the ring, indirect tables must be a whole number of descriptors,
 * not nested and not combined with NEXT, buffers must lie in guest RAM, be non-empty,
 * and device-writable buffers must come after device-readable ones. Any violation
 * calls virtioError: the device is broken and needs a reset (NEEDS_RESET), and
 * nothing more is popped until the driver resets it; the simulator never throws or
 * hangs on what a guest wrote.
 */
import {
  type GuestMemory, GuestMemoryFault, isRam, readLe16, readLe32, readLe64, writeLe16, writeLe32, writeLe64,
} from './guest_memory.js';
import {
  type VirtqLayout, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_F_INDIRECT, VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_USED_F_NO_NOTIFY,
  VIRTQUEUE_MAX_SIZE, virtqPartSizes, vringNeedEvent, descAddrOf, availFlags, availIdx, availRing, usedEvent, usedFlags, usedIdx,
  usedRingId, usedRingLen, availEvent,
} from './virtio_ring.js';
import { type VirtioTransport, virtioError } from './transport.js';

/** A buffer: guest-physical address and length. */
export type Sg = { addr: number; len: number };

// ---------------------------------------------------------------------------------
// Driver half (drivers/virtio/virtio_ring.c, split ring)

export type VirtqDriver = {
  mem: GuestMemory;
  layout: VirtqLayout;
  /** Free descriptor list (driver-private, like vq->free_head and desc_extra[].next). */
  freeHead: number;
  freeNext: Int32Array;
  numFree: number;
  /** Shadow of avail.idx and the used index seen last. */
  availIdxShadow: number;
  lastUsedIdx: number;
  /** avail.idx at the last kick (for event-index notification). */
  kickedIdx: number;
  /** The caller's token per head in flight, and the chain length to free. */
  tokens: Array<number | null>;
  chainLen: Int32Array;
};

/** Initialises a queue's memory (zeroed rings) and the driver's state. */
export function virtqDriverCreate(mem: GuestMemory, layout: VirtqLayout): VirtqDriver {
  const { size } = layout;
  if (size < 1 || size > VIRTQUEUE_MAX_SIZE || (size & (size - 1)) !== 0) throw new RangeError(`queue size ${size} is not a power of two up to ${VIRTQUEUE_MAX_SIZE}`);
  const sz = virtqPartSizes(size);
  for (let i = 0; i < sz.desc; i += 4) writeLe32(mem, layout.descAddr + i, 0);
  for (let i = 0; i < sz.avail; i += 2) writeLe16(mem, layout.availAddr + i, 0);
  for (let i = 0; i < sz.used; i += 2) writeLe16(mem, layout.usedAddr + i, 0);
  const freeNext = new Int32Array(size);
  for (let i = 0; i < size; i++) freeNext[i] = i + 1;
  return {
    mem, layout, freeHead: 0, freeNext, numFree: size, availIdxShadow: 0, lastUsedIdx: 0, kickedIdx: 0,
    tokens: new Array<number | null>(size).fill(null), chainLen: new Int32Array(size),
  };
}

/**
 * @kernel drivers/virtio/virtio_ring.c virtqueue_add_split
 * Adds a buffer chain: device-readable `out` buffers then device-writable `inn`
 * buffers, published in the available ring. Returns false when there are not enough
 * free descriptors (the caller retries after collecting used buffers).
 */
export function virtqAddBuf(drv: VirtqDriver, out: Sg[], inn: Sg[], token: number): boolean {
  const n = out.length + inn.length;
  if (n === 0) throw new RangeError('virtqAddBuf: empty buffer list');
  if (n > drv.numFree) return false;
  const { mem, layout } = drv;
  const head = drv.freeHead;
  // NOTE: one plain loop over out then inn rather than a list of (buffer, flags)
  // pairs, so adding a buffer allocates nothing.
  let i = head, prev = -1;
  for (let k = 0; k < n; k++) {
    const sg = k < out.length ? out[k]! : inn[k - out.length]!;
    const d = descAddrOf(layout, i);
    writeLe64(mem, d, sg.addr);
    writeLe32(mem, d + 8, sg.len);
    writeLe16(mem, d + 12, k < out.length ? 0 : VIRTQ_DESC_F_WRITE);
    if (prev >= 0) {
      const pd = descAddrOf(layout, prev);
      writeLe16(mem, pd + 12, readLe16(mem, pd + 12) | VIRTQ_DESC_F_NEXT);
      writeLe16(mem, pd + 14, i);
    }
    prev = i;
    i = drv.freeNext[i]!;
  }
  drv.freeHead = i;
  drv.numFree -= n;
  drv.tokens[head] = token;
  drv.chainLen[head] = n;
  // The ring entry first, then the index (virtio_wmb between them in the kernel).
  writeLe16(mem, availRing(layout, drv.availIdxShadow % layout.size), head);
  drv.availIdxShadow = (drv.availIdxShadow + 1) & 0xffff;
  writeLe16(mem, availIdx(layout), drv.availIdxShadow);
  return true;
}

/**
 * @kernel drivers/virtio/virtio_ring.c virtqueue_kick_prepare_split
 * Whether the device wants a notification for what was added since the last kick.
 */
export function virtqKickPrepare(drv: VirtqDriver): boolean {
  const { mem, layout } = drv;
  const old = drv.kickedIdx, now = drv.availIdxShadow;
  drv.kickedIdx = now;
  if (layout.eventIdx) return vringNeedEvent(readLe16(mem, availEvent(layout)), now, old);
  return (readLe16(mem, usedFlags(layout)) & VIRTQ_USED_F_NO_NOTIFY) === 0;
}

/**
 * @kernel drivers/virtio/virtio_ring.c virtqueue_get_buf_ctx_split
 * The next used buffer: its token and the length the device wrote, or null. A used
 * entry naming a head that is not in flight is the device's bug: it throws (the
 * kernel's BAD_RING), since our own device must never do it.
 */
export function virtqGetBuf(drv: VirtqDriver): { token: number; len: number } | null {
  const { mem, layout } = drv;
  if (drv.lastUsedIdx === readLe16(mem, usedIdx(layout))) return null;
  const slot = drv.lastUsedIdx % layout.size;
  const id = readLe32(mem, usedRingId(layout, slot));
  const len = readLe32(mem, usedRingLen(layout, slot));
  const token = id < layout.size ? drv.tokens[id] : null;
  if (token === null || token === undefined) throw new Error(`virtqueue: device returned id ${id}, which is not in flight`);
  // detach_buf_split: the chain goes back on the free list
  let last = id;
  for (let k = 1; k < drv.chainLen[id]!; k++) last = readLe16(mem, descAddrOf(layout, last) + 14);
  drv.freeNext[last] = drv.freeHead;
  drv.freeHead = id;
  drv.numFree += drv.chainLen[id]!;
  drv.tokens[id] = null;
  drv.lastUsedIdx = (drv.lastUsedIdx + 1) & 0xffff;
  if (layout.eventIdx) writeLe16(mem, usedEvent(layout), drv.lastUsedIdx);
  return { token, len };
}

// ---------------------------------------------------------------------------------
// Device half (hw/virtio/virtio.c)

export type VirtqDevice = {
  mem: GuestMemory;
  layout: VirtqLayout;
  /** The device this queue belongs to (vq->vdev): a violation breaks the whole device. */
  vdev: VirtioTransport;
  /** How messages name the queue, e.g. "virtio-balloon inflate queue". */
  name: string;
  lastAvailIdx: number;
  usedIdxShadow: number;
  /** used.idx at the last interrupt decision (for event-index suppression). */
  signalledUsed: number;
  /** Elements popped and not yet pushed. */
  inuse: number;
};

/** A popped chain: its head and its device-readable and device-writable buffers. */
export type VirtqElement = { head: number; out: Sg[]; in: Sg[] };

export function virtqDeviceCreate(mem: GuestMemory, layout: VirtqLayout, vdev: VirtioTransport, name: string): VirtqDevice {
  return { mem, layout, vdev, name, lastAvailIdx: 0, usedIdxShadow: 0, signalledUsed: 0, inuse: 0 };
}

/** What the driver did wrong on this queue: the device is broken (virtioError). Returns null for `return vqError(...)`. */
function vqError(vq: VirtqDevice, msg: string): null {
  virtioError(vq.vdev, `${vq.name}: ${msg}`);
  return null;
}

/**
 * @qemu hw/virtio/virtio.c virtqueue_split_pop
 * The next available chain, validated; null when there is none or the device is
 * broken (vdev.error says why).
 */
export function virtqueuePop(dev: VirtqDevice): VirtqElement | null {
  if (dev.vdev.error !== null) return null; // virtio_device_disabled
  const { mem, layout } = dev;
  const size = layout.size;
  try {
    const avail = readLe16(mem, availIdx(layout));
    const numHeads = (avail - dev.lastAvailIdx) & 0xffff;
    if (numHeads > size) return vqError(dev, `Guest moved avail index from ${dev.lastAvailIdx} to ${avail}`);
    if (numHeads === 0) return null;
    const head = readLe16(mem, availRing(layout, dev.lastAvailIdx % size));
    if (head >= size) return vqError(dev, `Guest says index ${head} is available`);
    const elem: VirtqElement = { head, out: [], in: [] };
    // NOTE: the descriptor's four fields are read into locals (in struct order, so the
    // first out-of-RAM field faults first) rather than into an object per descriptor.
    let table = layout.descAddr;
    let max = size;
    let d = table + 16 * head;
    let addr = readLe64(mem, d), len = readLe32(mem, d + 8), flags = readLe16(mem, d + 12), next = readLe16(mem, d + 14);
    if (flags & VIRTQ_DESC_F_INDIRECT) {
      if (flags & VIRTQ_DESC_F_NEXT) return vqError(dev, 'Indirect descriptor may not also have NEXT');
      if (len === 0 || len % 16 !== 0) return vqError(dev, `Invalid size for indirect buffer table (${len})`);
      if (len / 16 > VIRTQUEUE_MAX_SIZE) return vqError(dev, `Indirect buffer table too large (${len / 16} descriptors)`);
      if (!isRam(mem, addr, len)) return vqError(dev, 'Indirect buffer table is outside guest RAM');
      table = addr;
      max = len / 16;
      d = table;
      addr = readLe64(mem, d); len = readLe32(mem, d + 8); flags = readLe16(mem, d + 12); next = readLe16(mem, d + 14);
    }
    let seen = 0;
    for (;;) {
      if (++seen > max) return vqError(dev, 'Looped descriptor');
      if (flags & VIRTQ_DESC_F_INDIRECT) return vqError(dev, table === layout.descAddr ? 'Indirect descriptor in a chain' : 'Nested indirect descriptor');
      if (len === 0) return vqError(dev, 'zero sized buffers are not allowed');
      if (!isRam(mem, addr, len)) return vqError(dev, `virtqueue_map_desc: bad address 0x${addr.toString(16)} length ${len}`);
      if (flags & VIRTQ_DESC_F_WRITE) elem.in.push({ addr, len });
      else {
        if (elem.in.length) return vqError(dev, 'Incorrect order for descriptors');
        elem.out.push({ addr, len });
      }
      if (!(flags & VIRTQ_DESC_F_NEXT)) break;
      if (next >= max) return vqError(dev, `Desc next is ${next}`);
      d = table + 16 * next;
      addr = readLe64(mem, d); len = readLe32(mem, d + 8); flags = readLe16(mem, d + 12); next = readLe16(mem, d + 14);
    }
    dev.lastAvailIdx = (dev.lastAvailIdx + 1) & 0xffff;
    if (layout.eventIdx) writeLe16(mem, availEvent(layout), dev.lastAvailIdx);
    dev.inuse++;
    return elem;
  } catch (e) {
    if (e instanceof GuestMemoryFault) return vqError(dev, `ring access outside guest RAM: ${e.message}`);
    throw e;
  }
}

/**
 * @qemu hw/virtio/virtio.c virtqueue_push (fill + flush)
 * Returns an element to the driver with the number of bytes written, publishing the
 * used entry before the index.
 */
export function virtqueuePush(dev: VirtqDevice, elem: VirtqElement, len: number): void {
  if (dev.vdev.error !== null) return;
  const { mem, layout } = dev;
  try {
    const slot = dev.usedIdxShadow % layout.size;
    writeLe32(mem, usedRingId(layout, slot), elem.head);
    writeLe32(mem, usedRingLen(layout, slot), len);
    dev.usedIdxShadow = (dev.usedIdxShadow + 1) & 0xffff;
    writeLe16(mem, usedIdx(layout), dev.usedIdxShadow);
    dev.inuse--;
  } catch (e) {
    if (e instanceof GuestMemoryFault) { vqError(dev, `used ring outside guest RAM: ${e.message}`); return; }
    throw e;
  }
}

/**
 * @qemu hw/virtio/virtio.c virtio_split_should_notify
 * Whether the driver wants an interrupt for what was pushed since the last one.
 */
export function virtqueueShouldNotify(dev: VirtqDevice): boolean {
  if (dev.vdev.error !== null) return false;
  const { mem, layout } = dev;
  try {
    const old = dev.signalledUsed, now = dev.usedIdxShadow;
    dev.signalledUsed = now;
    if (layout.eventIdx) return vringNeedEvent(readLe16(mem, usedEvent(layout)), now, old);
    return (readLe16(mem, availFlags(layout)) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  } catch (e) {
    if (e instanceof GuestMemoryFault) return vqError(dev, e.message) ?? false;
    throw e;
  }
}
