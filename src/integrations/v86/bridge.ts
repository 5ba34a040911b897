/**
 * balloonlab's virtio-balloon device behind v86's PCI virtio transport, so that a real
 * Linux virtio_balloon driver (booted in the v86 x86 emulator) drives it.
 *
 * The seam. v86 builds every virtio device from its internal `VirtIO` class
 * (node_modules/v86/build/libv86-debug.mjs: `$VirtIO$$module$src$virtio$$`, from v86's
 * src/virtio.js): the constructor takes a description (PCI id, queues, feature bits,
 * and per-capability I/O port structs of {bytes, read, write} fields), lays out the
 * PCI capabilities (common, notify, ISR, device-specific), registers the port
 * handlers and the PCI function (`PCI.prototype.register_device`). The rings are NOT
 * the transport's: only a device that calls `VirtQueue.pop_request`/`push_reply`
 * uses v86's ring code. So the bridge builds a second VirtIO instance at the PCI slot
 * and ports of v86's own balloon (`VirtioBalloon`, pci_id 0x58, ports 0xD600-0xD9xx),
 * which replaces it on the bus, and makes that instance a pass-through to a balloonlab
 * VirtioTransport:
 *
 * - common config: v86's handlers read and write plain fields of the instance; the
 *   bridge turns `device_status` and `config_generation` into accessors over the
 *   transport (transportSetStatus after pushing the two driver-feature words), and
 *   each queue's `enable` into transportSetupQueue with the size and ring addresses
 *   the driver wrote; a queue reads as enabled only if balloonlab accepted it.
 *   Feature words stay v86's (it masks unoffered bits and strips FEATURES_OK for them,
 *   the same rule the transport applies).
 * - notify capability: one 2-byte register per queue, each calling transportNotify.
 * - device-specific config: one 4-byte field per le32 of the transport's config,
 *   read from it and written through transportWriteConfig (so `actual` and
 *   poison_val are what the driver writes).
 * - interrupts: transport.onInterrupt raises v86's ISR bit 1 (queue) and
 *   onConfigChange bit 2 (config) on the PCI INTx line (VirtIO.raise_irq,
 *   notify_config_changes); the ISR read lowers it (v86's own code).
 *
 * balloonlab's device (src/host/virtio_balloon.ts) pops and pushes the rings itself in
 * v86's RAM through createGuestMemoryOver(cpu.mem8): the same code path as with the
 * model guest; it does not know which guest it serves.
 *
 * Time. The device's timers (stats polling) run on a balloonlab Sim whose virtual time
 * is the emulator's wall clock: v86 paces its own timers (PIT, RTC, APIC) from
 * performance.now() (cpu.microtick), so the bridge does the same — a setInterval
 * (unref'd, every `tickMs`) runs the Sim up to the wall time since attach, and every
 * notification and QMP command catches the Sim up first. v86 offers no tick hook of
 * its own that an outside device could join.
 *
 * Host memory. v86's RAM is one wasm memory that cannot shrink: nothing is freed. The
 * bridge keeps a RamBacking over the guest's RAM with every page resident at start
 * (v86 allocates it all up front, as -mem-prealloc does) and lets the device discard
 * pages as it would on a real host; a discarded page that the guest has since written
 * (it reads non-zero in v86's RAM) counts as refaulted. `ramRssWouldRelease` is what a
 * real host would have released. It undercounts refaults of pages the guest only
 * zeroed (a write of zeroes looks like a discarded page).
 *
 * Lifecycle. Attach before the guest loads virtio_pci (any time before the kernel's
 * PCI probe, e.g. on "emulator-loaded"); a v86 state snapshot neither captures nor
 * restores balloonlab's device (its get_state throws).
 */
import { type Sim, createSim, simRunUntil } from '../../sim/clock.js';
import { defaultCostTable } from '../../sim/cost.js';
import { type RamRange, TARGET_PAGE_SIZE, createGuestMemoryOver, guestMemoryRebase } from '../../virtio/guest_memory.js';
import {
  type VirtioTransport, transportSetStatus, transportSetDriverFeatures, transportSetupQueue, transportNotify, transportWriteConfig,
  configReadLe32, VIRTIO_CONFIG_S_NEEDS_RESET,
} from '../../virtio/transport.js';
import { type RamBacking, createRamBacking, ramTouch, RamPageState } from '../../host/ram.js';
import {
  type BalloonDevice, type BalloonDeviceOptions, createBalloonDevice, virtioBalloonFreePageStart, virtioBalloonFreePageStop, virtioBalloonFreePageDone,
  FREE_PAGE_HINT_STATUS_NAMES,
} from '../../host/virtio_balloon.js';
import { type QmpCommand, type QmpResponse, qmpBalloonExecute, qmpCommandNotFound } from '../../host/qmp.js';


/** v86's PCI slot and port bases for its balloon (src/virtio_balloon.js); the bridge takes them over. */
export const V86_BALLOON_PCI_ID = 0x58;
const V86_BALLOON_PORTS = { common: 0xd800, notify: 0xd900, isr: 0xd700, device: 0xd600 } as const;
/** PCI device id of a modern virtio-balloon (0x1040 + VIRTIO_ID_BALLOON). */
const VIRTIO_PCI_DEVICE_ID_BALLOON = 0x1045;
/** ISR status bits (VIRTIO 1.2 §4.1.4.5). */
const VIRTIO_PCI_ISR_QUEUE = 1;

// ---------------------------------------------------------------------------------
// The parts of v86's internals the bridge touches (not in v86's public typings).

/** One register of a capability struct, as v86's VirtIO constructor takes it. */
type V86CapField = { bytes: 1 | 2 | 4; name: string; read: () => number; write: (data: number) => void };

type V86VirtQueue = {
  size: number;
  desc_addr: number;
  avail_addr: number;
  used_addr: number;
  enabled: boolean;
  enable(): void;
};

type V86VirtIO = {
  queues: V86VirtQueue[];
  driver_feature: Uint32Array;
  device_status: number;
  config_generation: number;
  raise_irq(type: number): void;
  notify_config_changes(): void;
  reset(): void;
};

type V86VirtIOOptions = {
  name: string; pci_id: number; device_id: number; subsystem_device_id: number;
  common: { initial_port: number; queues: { size_supported: number; notify_offset: number }[]; features: number[]; on_driver_ok: () => void };
  notification: { initial_port: number; single_handler: boolean; handlers: ((data: number) => void)[] };
  isr_status: { initial_port: number };
  device_specific: { initial_port: number; struct: V86CapField[] };
};

type V86VirtIOConstructor = new (cpu: V86Cpu, options: V86VirtIOOptions) => V86VirtIO;

type V86Cpu = {
  /** A Proxy that makes a fresh view of wasm_memory on every access (slow): the bridge makes its own. */
  mem8: { byteOffset: number; length: number };
  /** The wasm memory holding guest RAM; it grows (detaching its buffer) as v86 allocates. */
  wasm_memory: { readonly buffer: ArrayBuffer };
  memory_size: Uint32Array | number[];
  devices: Record<string, unknown>;
};

/** What the bridge needs of a V86 emulator instance (`new V86(...)`). */
export type V86Like = { v86?: { cpu?: V86Cpu } };

function v86Cpu(emulator: V86Like): V86Cpu {
  const cpu = emulator.v86?.cpu;
  if (!cpu || !cpu.mem8 || !cpu.wasm_memory || !cpu.devices) {
    throw new Error('balloonlab bridge: the emulator has no CPU yet; attach after the "emulator-loaded" event');
  }
  return cpu;
}

/**
 * v86's VirtIO class, taken from a virtio device v86 already built (its balloon when
 * started with `virtio_balloon: true`, else its console, net or 9p device).
 */
function v86VirtIOClass(cpu: V86Cpu): V86VirtIOConstructor {
  for (const name of ['virtio_balloon', 'virtio_console', 'virtio_net', 'virtio_9p', 'virtio9p']) {
    const dev = cpu.devices[name] as { virtio?: { constructor?: unknown } } | undefined;
    const ctor = dev?.virtio?.constructor;
    if (typeof ctor === 'function' && ctor !== Object) return ctor as V86VirtIOConstructor;
  }
  throw new Error('balloonlab bridge: v86 built no virtio device to borrow its VirtIO transport from; start the emulator with virtio_balloon: true');
}

/** Guest RAM ranges: v86's memory minus the legacy VGA/BIOS hole [640 KiB, 1 MiB). */
function v86RamRanges(size: number): RamRange[] {
  return [{ start: 0, end: 0xa0000 }, { start: 0x100000, end: size }];
}

// ---------------------------------------------------------------------------------

export type BalloonBridgeOptions = Partial<BalloonDeviceOptions> & {
  /** Wall-clock period of the Sim's catch-up timer, ms (default 20). */
  tickMs?: number;
};

export type BalloonBridge = {
  device: BalloonDevice;
  /** The Sim the device's timers run on (virtual ns = wall ns since attach). */
  sim: Sim;
  /** The host-RSS model of the guest's RAM. */
  ram: RamBacking;
  /**
   * QMP in QEMU's shape: balloon, query-balloon, qom-get/qom-set on
   * /machine/peripheral/balloon0 (guest-stats, guest-stats-polling-interval), plus a
   * free-page-hint cycle QEMU drives from migration and has no command for:
   * x-balloonlab-free-page-hint-start / -stop / -done, and
   * x-balloonlab-query-free-page-hint ({ status, cmd-id }).
   */
  qmp(cmd: QmpCommand): QmpResponse;
  /** Bytes of guest RAM a real host would have released now (discarded, not refaulted). */
  ramRssWouldRelease(): number;
  /** Runs the device's timers up to the wall clock now. */
  tick(): void;
  /** Stops the clock timer (the device stays on the bus). */
  detach(): void;
};

/**
 * Puts balloonlab's virtio-balloon device on v86's PCI bus in place of v86's own
 * balloon, for the guest's real virtio_balloon driver to find and drive.
 */
export function attachBalloonlabBalloon(emulator: V86Like, options: BalloonBridgeOptions = {}): BalloonBridge {
  const { tickMs = 20, ...deviceOptions } = options;
  const cpu = v86Cpu(emulator);
  const VirtIO = v86VirtIOClass(cpu);
  // NOTE: v86's cpu.mem8 is a Proxy that builds a new view of wasm_memory on every
  // access; the ring code wants a plain view. v86's wasm memory grows while the guest
  // runs (its old buffer then detaches), so every entry into the device first checks
  // the view and rebases guest memory on a fresh one when it went stale.
  const ramSize = cpu.mem8.length, ramOffset = cpu.mem8.byteOffset;
  let bytes = new Uint8Array(cpu.wasm_memory.buffer, ramOffset, ramSize);
  const ranges = v86RamRanges(ramSize);
  const mem = createGuestMemoryOver(bytes, ranges);
  const checkRam = (): void => {
    if (bytes.byteLength !== 0) return;
    bytes = new Uint8Array(cpu.wasm_memory.buffer, ramOffset, ramSize);
    guestMemoryRebase(mem, bytes);
  };
  const maxPfn = ramSize / TARGET_PAGE_SIZE;
  const ram = createRamBacking(maxPfn);
  for (const r of ranges) ramTouch(ram, r.start / TARGET_PAGE_SIZE, (r.end - r.start) / TARGET_PAGE_SIZE);
  ram.firstTouches = 0;

  const sim = createSim();
  const t0 = performance.now();
  const tick = (): void => { checkRam(); simRunUntil(sim, Math.floor((performance.now() - t0) * 1e6)); };

  const device = createBalloonDevice(sim, mem, ram, ramSize, defaultCostTable(), deviceOptions);
  const t = device.t;

  const features: number[] = [];
  for (let bit = 0; bit < 64; bit++) if ((t.deviceFeatures >> BigInt(bit)) & 1n) features.push(bit);

  const virtio = new VirtIO(cpu, {
    name: 'balloonlab-virtio-balloon',
    pci_id: V86_BALLOON_PCI_ID,
    device_id: VIRTIO_PCI_DEVICE_ID_BALLOON,
    subsystem_device_id: t.deviceId,
    common: {
      initial_port: V86_BALLOON_PORTS.common,
      queues: t.queues.map((q, i) => ({ size_supported: q.maxSize, notify_offset: i })),
      features,
      on_driver_ok: () => {},
    },
    notification: {
      initial_port: V86_BALLOON_PORTS.notify,
      single_handler: false,
      handlers: t.queues.map((_, i) => () => { tick(); transportNotify(t, i); }),
    },
    isr_status: { initial_port: V86_BALLOON_PORTS.isr },
    device_specific: { initial_port: V86_BALLOON_PORTS.device, struct: configFields(t) },
  });
  bindTransport(virtio, t, tick);

  t.onInterrupt = () => virtio.raise_irq(VIRTIO_PCI_ISR_QUEUE);
  t.onConfigChange = () => virtio.notify_config_changes();

  // Take v86's balloon's place among its devices (its state list names this slot).
  cpu.devices.virtio_balloon = {
    virtio,
    get_state(): never { throw new Error('balloonlab bridge: a v86 snapshot cannot hold balloonlab\'s device; snapshot before attaching'); },
    set_state(): never { throw new Error('balloonlab bridge: a v86 snapshot cannot restore balloonlab\'s device'); },
  };

  const timer = setInterval(tick, tickMs);
  timer.unref?.();

  return {
    device, sim, ram, tick,
    qmp(cmd: QmpCommand): QmpResponse {
      tick();
      const r = qmpBalloonExecute(device, cmd);
      if (r) return r;
      return freePageHintCommand(device, cmd) ?? qmpCommandNotFound(cmd);
    },
    ramRssWouldRelease(): number {
      checkRam();
      syncRefaults(ram, bytes);
      let n = 0;
      for (let p = 0; p < maxPfn; p++) if (ram.state[p] === RamPageState.discarded) n++;
      return n * TARGET_PAGE_SIZE;
    },
    detach(): void { clearInterval(timer); },
  };
}

/** The device-specific capability: one le32 register per 4 bytes of the transport's config. */
function configFields(t: VirtioTransport): V86CapField[] {
  const fields: V86CapField[] = [];
  for (let off = 0; off + 4 <= t.config.length; off += 4) {
    fields.push({
      bytes: 4,
      name: `config+${off}`,
      read: () => configReadLe32(t, off),
      write: (data: number) => {
        const b = new Uint8Array(4);
        new DataView(b.buffer).setUint32(0, data >>> 0, true);
        transportWriteConfig(t, off, b);
      },
    });
  }
  return fields;
}

/**
 * Makes the v86 VirtIO instance's driver-visible state the transport's: its status
 * byte and config generation become accessors over the transport, and enabling a
 * queue sets it up in the transport (which validates size and ring addresses).
 * `enter` runs before the device is called (clock catch-up, RAM view check).
 */
function bindTransport(virtio: V86VirtIO, t: VirtioTransport, enter: () => void): void {
  Object.defineProperty(virtio, 'device_status', {
    configurable: true,
    get: () => t.status,
    set: (v: number) => {
      enter(); // DRIVER_OK makes the device read the stats queue
      v &= 0xff;
      if (v === 0) { transportSetStatus(t, 0); return; }
      const f = virtio.driver_feature;
      if (!(t.status & 8)) transportSetDriverFeatures(t, (BigInt(f[1]! >>> 0) << 32n) | BigInt(f[0]! >>> 0));
      // v86 writes the status back with NEEDS_RESET as read; the transport keeps its own.
      transportSetStatus(t, v & ~VIRTIO_CONFIG_S_NEEDS_RESET);
    },
  });
  Object.defineProperty(virtio, 'config_generation', {
    configurable: true,
    get: () => t.configGeneration & 0xff,
    set: () => {},
  });
  virtio.queues.forEach((q, i) => {
    Object.defineProperty(q, 'enabled', {
      configurable: true,
      get: () => t.queues[i]?.enabled ?? false,
      set: () => {},
    });
    q.enable = () => { transportSetupQueue(t, i, q.size, q.desc_addr, q.avail_addr, q.used_addr); };
  });
}

/** Free-page-hint cycle commands (QEMU drives these from migration; no QMP command there). */
function freePageHintCommand(device: BalloonDevice, cmd: QmpCommand): QmpResponse | null {
  const notNegotiated = { error: { class: 'GenericError', desc: 'free-page-hint was not negotiated' } };
  switch (cmd.execute) {
    case 'x-balloonlab-free-page-hint-start':
      return virtioBalloonFreePageStart(device) ? { return: { 'cmd-id': device.freePageHintCmdId } } : notNegotiated;
    case 'x-balloonlab-free-page-hint-stop':
      virtioBalloonFreePageStop(device);
      return { return: {} };
    case 'x-balloonlab-free-page-hint-done':
      virtioBalloonFreePageDone(device);
      return { return: {} };
    case 'x-balloonlab-query-free-page-hint':
      return { return: { status: FREE_PAGE_HINT_STATUS_NAMES[device.freePageHintStatus], 'cmd-id': device.freePageHintCmdId, 'hinted-pages': device.counters.hintedPages } };
    default:
      return null;
  }
}

/** A discarded page the guest has written since (it is no longer all zero) faulted back in. */
function syncRefaults(ram: RamBacking, bytes: Uint8Array): void {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2);
  for (let p = 0; p < ram.maxPhysPfn; p++) {
    if (ram.state[p] !== RamPageState.discarded) continue;
    const w0 = p * (TARGET_PAGE_SIZE / 4);
    for (let w = w0; w < w0 + TARGET_PAGE_SIZE / 4; w++) {
      if (words[w] !== 0) { ramTouch(ram, p, 1); break; }
    }
  }
}
