/**
 * The split virtqueue (VIRTIO 1.2 §2.7, "Split Virtqueues"), byte for byte in
 * guest-physical memory, with a driver half and a device half that share nothing but
 * those bytes.
 *
 *   Descriptor table  align 16, 16 * size   struct virtq_desc { le64 addr; le32 len; le16 flags; le16 next; }
 *   Available ring    align 2,  6 + 2*size  struct virtq_avail { le16 flags; le16 idx; le16 ring[size]; le16 used_event; }
 *   Used ring         align 4,  6 + 8*size  struct virtq_used { le16 flags; le16 idx; { le32 id; le32 len; } ring[size]; le16 avail_event; }
 *
 * The device half validates everything the driver controls before using it, as
 * QEMU's virtqueue_pop does (hw/virtio/virtio.c): the available index may not run
 * more than a ring ahead, heads and next indices must be in range, chains may not
 * loop or exceed the ring, indirect tables must be a whole number of descriptors,
 * not nested and not combined with NEXT, buffers must lie in guest RAM, be non-empty,
 * and device-writable buffers must come after device-readable ones. Any violation
 * breaks the queue with a message (the transport sets NEEDS_RESET); the simulator
 * never throws or hangs on what a guest wrote.
 */
import {
  type GuestMemory, GuestMemoryFault, isRam, readLe16, readLe32, readLe64, writeLe16, writeLe32, writeLe64,
} from './guest_memory.js';

export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
export const VIRTQ_USED_F_NO_NOTIFY = 1;
/** The spec's largest queue size. */
export const VIRTQUEUE_MAX_SIZE = 32768;

/** Where a queue's three parts live, and whether VIRTIO_F_EVENT_IDX was negotiated. */
export type VirtqLayout = {
  size: number;
  descAddr: number;
  availAddr: number;
  usedAddr: number;
  eventIdx: boolean;
};

/** Bytes each part needs (for the driver's allocation). */
export function virtqPartSizes(size: number): { desc: number; avail: number; used: number } {
  return { desc: 16 * size, avail: 6 + 2 * size, used: 6 + 8 * size };
}

/** vring_need_event(): notify iff new passed event since old (all u16, wrapping). */
export function vringNeedEvent(event: number, newIdx: number, old: number): boolean {
  return ((newIdx - event - 1) & 0xffff) < ((newIdx - old) & 0xffff);
}

// ---------------------------------------------------------------------------------
// One small function per ring field (byte offsets from the spec).

const descAddrOf = (l: VirtqLayout, i: number) => l.descAddr + 16 * i;
const availFlags = (l: VirtqLayout) => l.availAddr;
const availIdx = (l: VirtqLayout) => l.availAddr + 2;
const availRing = (l: VirtqLayout, i: number) => l.availAddr + 4 + 2 * i;
const usedEvent = (l: VirtqLayout) => l.availAddr + 4 + 2 * l.size;
const usedFlags = (l: VirtqLayout) => l.usedAddr;
const usedIdx = (l: VirtqLayout) => l.usedAddr + 2;
const usedRingId = (l: VirtqLayout, i: number) => l.usedAddr + 4 + 8 * i;
const usedRingLen = (l: VirtqLayout, i: number) => l.usedAddr + 8 + 8 * i;
const availEvent = (l: VirtqLayout) => l.usedAddr + 4 + 8 * l.size;

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
  lastAvailIdx: number;
  usedIdxShadow: number;
  /** used.idx at the last interrupt decision (for event-index suppression). */
  signalledUsed: number;
  /** Elements popped and not yet pushed. */
  inuse: number;
  /** Set by virtioError: the queue is unusable until reset. */
  broken: string | null;
};

/** A popped chain: its head and its device-readable and device-writable buffers. */
export type VirtqElement = { head: number; out: Sg[]; in: Sg[] };

export function virtqDeviceCreate(mem: GuestMemory, layout: VirtqLayout): VirtqDevice {
  return { mem, layout, lastAvailIdx: 0, usedIdxShadow: 0, signalledUsed: 0, inuse: 0, broken: null };
}

/** @qemu hw/virtio/virtio.c virtio_error: the queue is broken; nothing more is processed. */
export function virtioError(dev: VirtqDevice, msg: string): null {
  if (dev.broken === null) dev.broken = msg;
  return null;
}

/**
 * @qemu hw/virtio/virtio.c virtqueue_split_pop
 * The next available chain, validated; null when there is none or the queue broke
 * (dev.broken then says why).
 */
export function virtqueuePop(dev: VirtqDevice): VirtqElement | null {
  if (dev.broken !== null) return null;
  const { mem, layout } = dev;
  const size = layout.size;
  try {
    const avail = readLe16(mem, availIdx(layout));
    const numHeads = (avail - dev.lastAvailIdx) & 0xffff;
    if (numHeads > size) return virtioError(dev, `Guest moved avail index from ${dev.lastAvailIdx} to ${avail}`);
    if (numHeads === 0) return null;
    const head = readLe16(mem, availRing(layout, dev.lastAvailIdx % size));
    if (head >= size) return virtioError(dev, `Guest says index ${head} is available`);
    const elem: VirtqElement = { head, out: [], in: [] };
    // NOTE: the descriptor's four fields are read into locals (in struct order, so the
    // first out-of-RAM field faults first) rather than into an object per descriptor.
    let table = layout.descAddr;
    let max = size;
    let d = table + 16 * head;
    let addr = readLe64(mem, d), len = readLe32(mem, d + 8), flags = readLe16(mem, d + 12), next = readLe16(mem, d + 14);
    if (flags & VIRTQ_DESC_F_INDIRECT) {
      if (flags & VIRTQ_DESC_F_NEXT) return virtioError(dev, 'Indirect descriptor may not also have NEXT');
      if (len === 0 || len % 16 !== 0) return virtioError(dev, `Invalid size for indirect buffer table (${len})`);
      if (len / 16 > VIRTQUEUE_MAX_SIZE) return virtioError(dev, `Indirect buffer table too large (${len / 16} descriptors)`);
      if (!isRam(mem, addr, len)) return virtioError(dev, 'Indirect buffer table is outside guest RAM');
      table = addr;
      max = len / 16;
      d = table;
      addr = readLe64(mem, d); len = readLe32(mem, d + 8); flags = readLe16(mem, d + 12); next = readLe16(mem, d + 14);
    }
    let seen = 0;
    for (;;) {
      if (++seen > max) return virtioError(dev, 'Looped descriptor');
      if (flags & VIRTQ_DESC_F_INDIRECT) return virtioError(dev, table === layout.descAddr ? 'Indirect descriptor in a chain' : 'Nested indirect descriptor');
      if (len === 0) return virtioError(dev, 'zero sized buffers are not allowed');
      if (!isRam(mem, addr, len)) return virtioError(dev, `virtqueue_map_desc: bad address 0x${addr.toString(16)} length ${len}`);
      if (flags & VIRTQ_DESC_F_WRITE) elem.in.push({ addr, len });
      else {
        if (elem.in.length) return virtioError(dev, 'Incorrect order for descriptors');
        elem.out.push({ addr, len });
      }
      if (!(flags & VIRTQ_DESC_F_NEXT)) break;
      if (next >= max) return virtioError(dev, `Desc next is ${next}`);
      d = table + 16 * next;
      addr = readLe64(mem, d); len = readLe32(mem, d + 8); flags = readLe16(mem, d + 12); next = readLe16(mem, d + 14);
    }
    dev.lastAvailIdx = (dev.lastAvailIdx + 1) & 0xffff;
    if (layout.eventIdx) writeLe16(mem, availEvent(layout), dev.lastAvailIdx);
    dev.inuse++;
    return elem;
  } catch (e) {
    if (e instanceof GuestMemoryFault) return virtioError(dev, `ring access outside guest RAM: ${e.message}`);
    throw e;
  }
}

/**
 * @qemu hw/virtio/virtio.c virtqueue_push (fill + flush)
 * Returns an element to the driver with the number of bytes written, publishing the
 * used entry before the index.
 */
export function virtqueuePush(dev: VirtqDevice, elem: VirtqElement, len: number): void {
  if (dev.broken !== null) return;
  const { mem, layout } = dev;
  try {
    const slot = dev.usedIdxShadow % layout.size;
    writeLe32(mem, usedRingId(layout, slot), elem.head);
    writeLe32(mem, usedRingLen(layout, slot), len);
    dev.usedIdxShadow = (dev.usedIdxShadow + 1) & 0xffff;
    writeLe16(mem, usedIdx(layout), dev.usedIdxShadow);
    dev.inuse--;
  } catch (e) {
    if (e instanceof GuestMemoryFault) { virtioError(dev, `used ring outside guest RAM: ${e.message}`); return; }
    throw e;
  }
}

/**
 * @qemu hw/virtio/virtio.c virtio_split_should_notify
 * Whether the driver wants an interrupt for what was pushed since the last one.
 */
export function virtqueueShouldNotify(dev: VirtqDevice): boolean {
  if (dev.broken !== null) return false;
  const { mem, layout } = dev;
  try {
    const old = dev.signalledUsed, now = dev.usedIdxShadow;
    dev.signalledUsed = now;
    if (layout.eventIdx) return vringNeedEvent(readLe16(mem, usedEvent(layout)), now, old);
    return (readLe16(mem, availFlags(layout)) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  } catch (e) {
    if (e instanceof GuestMemoryFault) return virtioError(dev, e.message) ?? false;
    throw e;
  }
}
