/**
 * The virtio transport between a driver and a device (VIRTIO 1.2 §2.1-2.5, §3.1, as
 * virtio-pci's common configuration presents it): the device status byte, 64-bit
 * feature negotiation, the device-specific configuration space with its generation
 * counter, the queues' sizes and addresses, and the two kinds of signal — the
 * driver's queue notification (a kick) and the device's interrupts (used buffers,
 * configuration change).
 *
 * Guest and host meet only here and in guest memory. The device half validates what
 * the driver writes: feature bits it did not offer make FEATURES_OK fail, queues with
 * bad sizes or addresses are refused, and any device error goes through virtioError,
 * which breaks the device, sets NEEDS_RESET and raises a configuration interrupt, as
 * QEMU's does.
 */
import { type GuestMemory, isRam } from './guest_memory.js';
import { type VirtqLayout, VIRTQUEUE_MAX_SIZE, virtqPartSizes } from './virtio_ring.js';

/** Device status bits (§2.1). */
export const VIRTIO_CONFIG_S_ACKNOWLEDGE = 1;
export const VIRTIO_CONFIG_S_DRIVER = 2;
export const VIRTIO_CONFIG_S_DRIVER_OK = 4;
export const VIRTIO_CONFIG_S_FEATURES_OK = 8;
export const VIRTIO_CONFIG_S_NEEDS_RESET = 0x40;
export const VIRTIO_CONFIG_S_FAILED = 0x80;

/** Transport feature bits (§6). */
export const VIRTIO_F_INDIRECT_DESC = 28;
export const VIRTIO_F_EVENT_IDX = 29;
export const VIRTIO_F_VERSION_1 = 32;
export const VIRTIO_F_ACCESS_PLATFORM = 33;

/** A feature bit as a mask. */
export function featureBit(bit: number): bigint {
  return 1n << BigInt(bit);
}

export function hasFeature(features: bigint, bit: number): boolean {
  return (features & featureBit(bit)) !== 0n;
}

/** One queue as the transport sees it (queue_size, queue_desc/driver/device, queue_enable). */
export type TransportQueue = {
  /** Largest size the device allows. */
  maxSize: number;
  size: number;
  descAddr: number;
  availAddr: number;
  usedAddr: number;
  enabled: boolean;
};

export type VirtioTransport = {
  mem: GuestMemory;
  /** Device ID (5: traditional memory balloon). */
  deviceId: number;
  status: number;
  /** Features the device offers, and those the driver accepted. */
  deviceFeatures: bigint;
  driverFeatures: bigint;
  /** Device-specific configuration space (little-endian fields). */
  config: Uint8Array;
  /** config_generation: changes whenever the device changes the config. */
  configGeneration: number;
  queues: TransportQueue[];
  /**
   * Why the device is broken (vdev->broken, with the first message virtio_error
   * reported), or null. A broken device processes nothing until the driver resets it.
   */
  error: string | null;
  /**
   * Virtual time the device has spent handling notifications, ns. The device adds to
   * it while it works on a kick; a driver that waits for the device (wait_event on a
   * used buffer) sees the difference as latency.
   */
  busyNs: number;
  /** Device side: a queue was kicked. */
  onNotify: ((queue: number) => void) | null;
  /** Driver side: the device signalled used buffers on a queue. */
  onInterrupt: ((queue: number) => void) | null;
  /** Driver side: the configuration changed (or the device needs a reset). */
  onConfigChange: (() => void) | null;
  /** Device side: the driver wrote config bytes (e.g. `actual`). */
  onConfigWrite: ((offset: number, len: number) => void) | null;
  /** Device side: the driver reset the device or set DRIVER_OK. */
  onStatus: ((status: number) => void) | null;
};

export function createTransport(mem: GuestMemory, deviceId: number, deviceFeatures: bigint, configSize: number, queueMaxSizes: number[]): VirtioTransport {
  return {
    mem, deviceId, status: 0, deviceFeatures, driverFeatures: 0n, config: new Uint8Array(configSize), configGeneration: 0,
    queues: queueMaxSizes.map((maxSize) => ({ maxSize, size: maxSize, descAddr: 0, availAddr: 0, usedAddr: 0, enabled: false })),
    error: null, busyNs: 0, onNotify: null, onInterrupt: null, onConfigChange: null, onConfigWrite: null, onStatus: null,
  };
}

// ---------------------------------------------------------------------------------
// Device side

/**
 * @qemu hw/virtio/virtio.c virtio_error
 * The one way a device reports that the driver broke the protocol: the device is
 * broken (nothing more is processed until a reset), and a modern device sets
 * NEEDS_RESET and raises a configuration interrupt so the driver notices (delivered
 * only once the driver is up, as virtio_notify_config does). The first message is kept.
 */
export function virtioError(t: VirtioTransport, msg: string): void {
  if (t.error === null) t.error = msg;
  if (hasFeature(t.driverFeatures, VIRTIO_F_VERSION_1)) {
    t.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    if (t.status & VIRTIO_CONFIG_S_DRIVER_OK) t.onConfigChange?.();
  }
}

/** The device changes its configuration: new generation, configuration interrupt. */
export function transportConfigChanged(t: VirtioTransport): void {
  t.configGeneration = (t.configGeneration + 1) >>> 0;
  if (t.status & VIRTIO_CONFIG_S_DRIVER_OK) t.onConfigChange?.();
}

/** The device signals used buffers on a queue. */
export function transportInterrupt(t: VirtioTransport, queue: number): void {
  if (t.status & VIRTIO_CONFIG_S_DRIVER_OK) t.onInterrupt?.(queue);
}

/** The queue's ring layout once the driver enabled it, with event-index as negotiated. */
export function transportQueueLayout(t: VirtioTransport, queue: number): VirtqLayout | null {
  const q = t.queues[queue];
  if (!q || !q.enabled) return null;
  return { size: q.size, descAddr: q.descAddr, availAddr: q.availAddr, usedAddr: q.usedAddr, eventIdx: hasFeature(t.driverFeatures, VIRTIO_F_EVENT_IDX) };
}

/** Little-endian config field accessors for the device. */
export function configWriteLe32(t: VirtioTransport, offset: number, v: number): void {
  new DataView(t.config.buffer).setUint32(offset, v >>> 0, true);
}

export function configReadLe32(t: VirtioTransport, offset: number): number {
  return new DataView(t.config.buffer).getUint32(offset, true);
}

// ---------------------------------------------------------------------------------
// Driver side (what a virtio-pci driver writes to the common configuration)

/** Writes the device status; 0 resets the device (queues disabled, features cleared). */
export function transportSetStatus(t: VirtioTransport, status: number): void {
  if (status === 0) {
    t.status = 0;
    t.driverFeatures = 0n;
    t.error = null;
    for (const q of t.queues) { q.enabled = false; q.size = q.maxSize; q.descAddr = q.availAddr = q.usedAddr = 0; }
    t.onStatus?.(0);
    return;
  }
  if ((status & VIRTIO_CONFIG_S_FEATURES_OK) && !(t.status & VIRTIO_CONFIG_S_FEATURES_OK)) {
    // The device refuses features it never offered: FEATURES_OK does not stick.
    if ((t.driverFeatures & ~t.deviceFeatures) !== 0n) status &= ~VIRTIO_CONFIG_S_FEATURES_OK;
  }
  const wasOk = (t.status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0;
  t.status = (status & ~VIRTIO_CONFIG_S_NEEDS_RESET) | (t.status & VIRTIO_CONFIG_S_NEEDS_RESET);
  if (!wasOk && (t.status & VIRTIO_CONFIG_S_DRIVER_OK)) t.onStatus?.(t.status);
}

/** Writes the driver's accepted features (before FEATURES_OK). */
export function transportSetDriverFeatures(t: VirtioTransport, features: bigint): void {
  if (t.status & VIRTIO_CONFIG_S_FEATURES_OK) return; // read-only after FEATURES_OK
  t.driverFeatures = features & 0xffffffffffffffffn;
}

/**
 * Sets up a queue (queue_size, queue_desc, queue_driver, queue_device, queue_enable).
 * The device refuses sizes that are not a power of two up to its maximum, and rings
 * that are misaligned or not in guest RAM: the queue stays disabled and the device
 * needs a reset.
 */
export function transportSetupQueue(t: VirtioTransport, queue: number, size: number, descAddr: number, availAddr: number, usedAddr: number): boolean {
  const q = t.queues[queue];
  if (!q) { virtioError(t, `queue ${queue} does not exist`); return false; }
  const sz = virtqPartSizes(size);
  const bad = size < 1 || size > Math.min(q.maxSize, VIRTQUEUE_MAX_SIZE) || (size & (size - 1)) !== 0 ? `queue ${queue}: invalid size ${size}`
    : descAddr % 16 || availAddr % 2 || usedAddr % 4 ? `queue ${queue}: misaligned ring`
    : !isRam(t.mem, descAddr, sz.desc) || !isRam(t.mem, availAddr, sz.avail) || !isRam(t.mem, usedAddr, sz.used) ? `queue ${queue}: ring outside guest RAM`
    : null;
  if (bad) { virtioError(t, bad); return false; }
  Object.assign(q, { size, descAddr, availAddr, usedAddr, enabled: true });
  return true;
}

/** The driver kicks a queue. */
export function transportNotify(t: VirtioTransport, queue: number): void {
  if (!(t.status & VIRTIO_CONFIG_S_DRIVER_OK) || (t.status & VIRTIO_CONFIG_S_NEEDS_RESET)) return;
  if (!t.queues[queue]?.enabled) return;
  t.onNotify?.(queue);
}

/**
 * Reads config bytes as a driver does (virtio_cread): retried until the generation is
 * the same before and after, so a multi-field read is consistent.
 */
export function transportReadConfig(t: VirtioTransport, offset: number, len: number): Uint8Array | null {
  if (offset < 0 || offset + len > t.config.length) return null;
  for (;;) {
    const gen = t.configGeneration;
    const out = t.config.slice(offset, offset + len);
    if (gen === t.configGeneration) return out;
  }
}

/** Writes config bytes as a driver does (virtio_cwrite); out-of-range writes are ignored. */
export function transportWriteConfig(t: VirtioTransport, offset: number, bytes: Uint8Array): void {
  if (offset < 0 || offset + bytes.length > t.config.length) return;
  t.config.set(bytes, offset);
  t.onConfigWrite?.(offset, bytes.length);
}
