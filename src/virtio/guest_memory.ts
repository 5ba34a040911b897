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

/**
 * TARGET_PAGE_SIZE: the x86 page, the unit of guest-physical memory for the host (RAM
 * blocks, dirty logging, discards) and for the wire (balloon PFNs are 4 KiB units).
 */
export const TARGET_PAGE_BITS = 12;
export const TARGET_PAGE_SIZE = 1 << TARGET_PAGE_BITS;

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
  /**
   * Physical page number -> its 4 KiB of bytes (absent pages read as zero). Change it
   * only through this module's functions (they cache the last page looked up).
   */
  pages: Map<number, Uint8Array>;
  /**
   * Null for the sparse store. Otherwise guest memory is this flat array, indexed by
   * guest-physical address (another emulator's RAM, e.g. v86's): `pages` then holds
   * views into it, made on first access.
   */
  flat: Uint8Array | null;
};

export function createGuestMemory(ranges: RamRange[]): GuestMemory {
  return { ranges: ranges.map((r) => ({ ...r })), pages: new Map(), flat: null };
}

/**
 * Guest memory that is another emulator's RAM: `bytes[addr]` is the byte at
 * guest-physical address addr. Ranges default to all of it.
 */
export function createGuestMemoryOver(bytes: Uint8Array, ranges: RamRange[] = [{ start: 0, end: bytes.length }]): GuestMemory {
  for (const r of ranges) if (r.end > bytes.length) throw new RangeError(`RAM range [0x${r.start.toString(16)}, 0x${r.end.toString(16)}) is beyond the ${bytes.length}-byte memory`);
  return { ranges: ranges.map((r) => ({ ...r })), pages: new Map(), flat: bytes };
}

/** Whether [addr, addr + len) lies inside one RAM range. */
export function isRam(mem: GuestMemory, addr: number, len: number): boolean {
  if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len < 0) return false;
  const ranges = mem.ranges;
  for (let k = 0; k < ranges.length; k++) {
    const r = ranges[k]!;
    if (addr >= r.start && addr + len <= r.end) return true;
  }
  return false;
}

function check(mem: GuestMemory, addr: number, len: number): void {
  if (!isRam(mem, addr, len)) throw new GuestMemoryFault(addr, len);
}

// NOTE: the ring accessors below run several times per buffer on every virtqueue
// round trip, so they trade the one-byte-at-a-time loop for a fast path: one bounds
// check, then, when the access stays inside one 4 KiB page, one page lookup and byte
// math on that page's Uint8Array. The last page looked up is cached (discardPage
// drops it), so `pages` must only change through this module. Accesses that cross a
// page, and writeLe64 of a value that is not an integer, take the original byte loop
// (readLe/writeLe); both paths give the same bytes. bench/virtqueue.ts measures it.

/** The last page found: its memory, physical page number and bytes. */
let cacheMem: GuestMemory | null = null;
let cachePfn = -1;
let cachePage: Uint8Array | null = null;

/** The page's bytes, or undefined if never written (when not `create`). */
function page(mem: GuestMemory, pfn: number, create: boolean): Uint8Array | undefined {
  if (pfn === cachePfn && mem === cacheMem) return cachePage!;
  let p = mem.pages.get(pfn);
  if (!p) {
    if (mem.flat !== null) p = mem.flat.subarray(pfn * TARGET_PAGE_SIZE, (pfn + 1) * TARGET_PAGE_SIZE);
    else if (!create) return undefined;
    else p = new Uint8Array(TARGET_PAGE_SIZE);
    mem.pages.set(pfn, p);
  }
  cacheMem = mem;
  cachePfn = pfn;
  cachePage = p;
  return p;
}

/** Reads one byte. */
export function readU8(mem: GuestMemory, addr: number): number {
  check(mem, addr, 1);
  const p = page(mem, Math.floor(addr / TARGET_PAGE_SIZE), false);
  return p ? p[addr % TARGET_PAGE_SIZE]! : 0;
}

/** Writes one byte. */
export function writeU8(mem: GuestMemory, addr: number, v: number): void {
  check(mem, addr, 1);
  page(mem, Math.floor(addr / TARGET_PAGE_SIZE), true)![addr % TARGET_PAGE_SIZE] = v & 0xff;
}

/** The byte-at-a-time read, for accesses that cross a page. */
function readLe(mem: GuestMemory, addr: number, n: number): number {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) {
    const a = addr + i;
    const p = page(mem, Math.floor(a / TARGET_PAGE_SIZE), false);
    v = v * 256 + (p ? p[a % TARGET_PAGE_SIZE]! : 0);
  }
  return v;
}

/** The byte-at-a-time write, for accesses that cross a page or values that are not integers. */
function writeLe(mem: GuestMemory, addr: number, n: number, v: number): void {
  for (let i = 0; i < n; i++) {
    const a = addr + i;
    page(mem, Math.floor(a / TARGET_PAGE_SIZE), true)![a % TARGET_PAGE_SIZE] = v % 256;
    v = Math.floor(v / 256);
  }
}

export function readLe16(mem: GuestMemory, addr: number): number {
  check(mem, addr, 2);
  const off = addr % TARGET_PAGE_SIZE;
  if (off > TARGET_PAGE_SIZE - 2) return readLe(mem, addr, 2);
  const p = page(mem, (addr - off) / TARGET_PAGE_SIZE, false);
  return p ? p[off]! | (p[off + 1]! << 8) : 0;
}

function readLe32Checked(mem: GuestMemory, addr: number): number {
  const off = addr % TARGET_PAGE_SIZE;
  if (off > TARGET_PAGE_SIZE - 4) return readLe(mem, addr, 4);
  const p = page(mem, (addr - off) / TARGET_PAGE_SIZE, false);
  return p ? (p[off]! | (p[off + 1]! << 8) | (p[off + 2]! << 16) | (p[off + 3]! << 24)) >>> 0 : 0;
}

export function readLe32(mem: GuestMemory, addr: number): number {
  check(mem, addr, 4);
  return readLe32Checked(mem, addr);
}

export function writeLe16(mem: GuestMemory, addr: number, v: number): void {
  check(mem, addr, 2);
  const off = addr % TARGET_PAGE_SIZE;
  if (off > TARGET_PAGE_SIZE - 2) { writeLe(mem, addr, 2, v & 0xffff); return; }
  const p = page(mem, (addr - off) / TARGET_PAGE_SIZE, true)!;
  p[off] = v;
  p[off + 1] = v >>> 8;
}

/** Writes a le32 after the bounds check; `v` is an integer (reduced mod 2^32 here). */
function writeLe32Checked(mem: GuestMemory, addr: number, v: number): void {
  const off = addr % TARGET_PAGE_SIZE;
  if (off > TARGET_PAGE_SIZE - 4) { writeLe(mem, addr, 4, v >>> 0); return; }
  const p = page(mem, (addr - off) / TARGET_PAGE_SIZE, true)!;
  p[off] = v;
  p[off + 1] = v >>> 8;
  p[off + 2] = v >>> 16;
  p[off + 3] = v >>> 24;
}

export function writeLe32(mem: GuestMemory, addr: number, v: number): void {
  check(mem, addr, 4);
  writeLe32Checked(mem, addr, v);
}

/**
 * Reads a le64. Values above 2^53 cannot be addresses of any guest the model runs;
 * they come back as Infinity so a range check fails cleanly.
 */
export function readLe64(mem: GuestMemory, addr: number): number {
  check(mem, addr, 4);
  const lo = readLe32Checked(mem, addr);
  check(mem, addr + 4, 4);
  const hi = readLe32Checked(mem, addr + 4);
  return hi >= 0x200000 ? Infinity : hi * 0x100000000 + lo;
}

export function writeLe64(mem: GuestMemory, addr: number, v: number): void {
  const lo = v % 0x100000000, hi = Math.floor(v / 0x100000000);
  check(mem, addr, 4);
  // For integers the byte loop writes lo and hi mod 2^32, which is what the le32 path stores.
  if (Number.isInteger(lo)) writeLe32Checked(mem, addr, lo);
  else writeLe(mem, addr, 4, lo);
  check(mem, addr + 4, 4);
  if (Number.isInteger(hi)) writeLe32Checked(mem, addr + 4, hi);
  else writeLe(mem, addr + 4, 4, hi);
}

/** Copies bytes out of guest memory. */
export function readBytes(mem: GuestMemory, addr: number, len: number): Uint8Array {
  check(mem, addr, len);
  const out = new Uint8Array(len);
  // a page's worth at a time (absent pages read as zero, as `out` starts)
  for (let i = 0; i < len;) {
    const a = addr + i;
    const off = a % TARGET_PAGE_SIZE;
    const n = Math.min(len - i, TARGET_PAGE_SIZE - off);
    const p = page(mem, (a - off) / TARGET_PAGE_SIZE, false);
    if (p) out.set(p.subarray(off, off + n), i);
    i += n;
  }
  return out;
}

/** Copies bytes into guest memory. */
export function writeBytes(mem: GuestMemory, addr: number, data: Uint8Array): void {
  check(mem, addr, data.length);
  for (let i = 0; i < data.length; i++) {
    const a = addr + i;
    page(mem, Math.floor(a / TARGET_PAGE_SIZE), true)![a % TARGET_PAGE_SIZE] = data[i]!;
  }
}

/** Drops the bytes of a page (the page reads as zero again), e.g. when the host discards it. */
export function discardPage(mem: GuestMemory, physPfn: number): void {
  if (mem.flat !== null) {
    // another emulator's RAM cannot lose a page: it reads as zero, as a discarded page does
    mem.flat.fill(0, physPfn * TARGET_PAGE_SIZE, Math.min((physPfn + 1) * TARGET_PAGE_SIZE, mem.flat.length));
    return;
  }
  if (mem === cacheMem && physPfn === cachePfn) { cacheMem = null; cachePfn = -1; cachePage = null; }
  mem.pages.delete(physPfn);
}

/**
 * The other emulator's RAM moved to new bytes (a wasm memory grew and detached its
 * old buffer): the same guest memory, now over `bytes`. Views made into the old bytes
 * are dropped, including the cached page.
 */
export function guestMemoryRebase(mem: GuestMemory, bytes: Uint8Array): void {
  if (mem.flat === null) throw new TypeError('guestMemoryRebase: a sparse guest memory has no bytes to move');
  for (const r of mem.ranges) if (r.end > bytes.length) throw new RangeError(`RAM range [0x${r.start.toString(16)}, 0x${r.end.toString(16)}) is beyond the ${bytes.length}-byte memory`);
  mem.flat = bytes;
  mem.pages.clear();
  if (mem === cacheMem) { cacheMem = null; cachePfn = -1; cachePage = null; }
}
