/**
 * Guest-physical memory as the host sees it: a sparse byte store over the guest's RAM
 * ranges, with little-endian accessors. Only pages something actually wrote (rings,
 * PFN arrays, stats buffers) hold bytes; everything else reads as zero. Guest and
 * host code meet only here (and in the transport): the driver writes ring entries into
 * these bytes and the device reads them back, as real hardware does.
 *
 * Every access is checked against the RAM ranges: an address outside guest RAM is a
 * GuestMemoryFault, which the device turns into NEEDS_RESET (it never crashes the
 * simulator).
 */

const PAGE = 4096;

/** An access outside guest RAM (or overflowing it). */
export class GuestMemoryFault extends Error {
  constructor(readonly addr: number, readonly len: number) {
    super(`guest-physical access [0x${addr.toString(16)}, +${len}) is outside guest RAM`);
    this.name = 'GuestMemoryFault';
  }
}

/** A guest-physical RAM range [start, end) in bytes. */
export type RamRange = { start: number; end: number };

export type GuestMemory = {
  ranges: RamRange[];
  /** Physical page number -> its 4 KiB of bytes (absent pages read as zero). */
  pages: Map<number, Uint8Array>;
};

export function createGuestMemory(ranges: RamRange[]): GuestMemory {
  return { ranges: ranges.map((r) => ({ ...r })), pages: new Map() };
}

/** Whether [addr, addr + len) lies inside one RAM range. */
export function isRam(mem: GuestMemory, addr: number, len: number): boolean {
  if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len < 0) return false;
  for (const r of mem.ranges) if (addr >= r.start && addr + len <= r.end) return true;
  return false;
}

function check(mem: GuestMemory, addr: number, len: number): void {
  if (!isRam(mem, addr, len)) throw new GuestMemoryFault(addr, len);
}

function page(mem: GuestMemory, pfn: number, create: boolean): Uint8Array | undefined {
  let p = mem.pages.get(pfn);
  if (!p && create) {
    p = new Uint8Array(PAGE);
    mem.pages.set(pfn, p);
  }
  return p;
}

/** Reads one byte. */
export function readU8(mem: GuestMemory, addr: number): number {
  check(mem, addr, 1);
  const p = page(mem, Math.floor(addr / PAGE), false);
  return p ? p[addr % PAGE]! : 0;
}

/** Writes one byte. */
export function writeU8(mem: GuestMemory, addr: number, v: number): void {
  check(mem, addr, 1);
  page(mem, Math.floor(addr / PAGE), true)![addr % PAGE] = v & 0xff;
}

function readLe(mem: GuestMemory, addr: number, n: number): number {
  check(mem, addr, n);
  let v = 0;
  for (let i = n - 1; i >= 0; i--) {
    const a = addr + i;
    const p = page(mem, Math.floor(a / PAGE), false);
    v = v * 256 + (p ? p[a % PAGE]! : 0);
  }
  return v;
}

function writeLe(mem: GuestMemory, addr: number, n: number, v: number): void {
  check(mem, addr, n);
  for (let i = 0; i < n; i++) {
    const a = addr + i;
    page(mem, Math.floor(a / PAGE), true)![a % PAGE] = v % 256;
    v = Math.floor(v / 256);
  }
}

export function readLe16(mem: GuestMemory, addr: number): number { return readLe(mem, addr, 2); }
export function readLe32(mem: GuestMemory, addr: number): number { return readLe(mem, addr, 4); }
export function writeLe16(mem: GuestMemory, addr: number, v: number): void { writeLe(mem, addr, 2, v & 0xffff); }
export function writeLe32(mem: GuestMemory, addr: number, v: number): void { writeLe(mem, addr, 4, v >>> 0); }

/**
 * Reads a le64. Values above 2^53 cannot be addresses of any guest the model runs;
 * they come back as Infinity so a range check fails cleanly.
 */
export function readLe64(mem: GuestMemory, addr: number): number {
  const lo = readLe(mem, addr, 4), hi = readLe(mem, addr + 4, 4);
  return hi >= 0x200000 ? Infinity : hi * 0x100000000 + lo;
}

export function writeLe64(mem: GuestMemory, addr: number, v: number): void {
  writeLe(mem, addr, 4, v % 0x100000000);
  writeLe(mem, addr + 4, 4, Math.floor(v / 0x100000000));
}

/** Copies bytes out of guest memory. */
export function readBytes(mem: GuestMemory, addr: number, len: number): Uint8Array {
  check(mem, addr, len);
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    const a = addr + i;
    const p = page(mem, Math.floor(a / PAGE), false);
    out[i] = p ? p[a % PAGE]! : 0;
  }
  return out;
}

/** Copies bytes into guest memory. */
export function writeBytes(mem: GuestMemory, addr: number, data: Uint8Array): void {
  check(mem, addr, data.length);
  for (let i = 0; i < data.length; i++) {
    const a = addr + i;
    page(mem, Math.floor(a / PAGE), true)![a % PAGE] = data[i]!;
  }
}

/** Drops the bytes of a page (the page reads as zero again), e.g. when the host discards it. */
export function discardPage(mem: GuestMemory, physPfn: number): void {
  mem.pages.delete(physPfn);
}
