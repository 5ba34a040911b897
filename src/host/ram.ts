/**
 * The host's backing of guest RAM (QEMU's RAMBlocks over anonymous memory): which
 * guest-physical pages have host memory behind them, and so the resident set size the
 * host pays for.
 *
 * A page is backed from the first time the guest writes it (a host page fault) until
 * the host discards it (madvise(MADV_DONTNEED) / fallocate(PUNCH_HOLE), as QEMU's
 * ram_block_discard_range does for inflated and reported pages). A discarded page reads
 * as zero; the next guest write faults it back in — a refault, which the counters keep
 * apart from first touches. With prealloc (-mem-prealloc) every page is backed at start.
 *
 * What a page holds is a content class (PageContent: zero, poison, data) and, for
 * data, a generation bumped on every write: enough to tell a zero page from a data
 * page when migration scans it, and to check that a destination got every page's
 * latest contents. While dirty logging is on (migration), every write also sets the
 * page's bit in the dirty log, which a bitmap sync collects and clears.
 *
 * Per page, indexed by guest-physical PFN: one state byte, one content byte, one
 * dirty-log byte and a 32-bit generation (7 bytes). The PCI hole has no backing and
 * is never touched.
 *
 * On a host running many guests (host.ts) the host kernel may swap a page of guest
 * RAM out (it is QEMU's anonymous memory): the page keeps its contents but leaves
 * the resident set, and the guest's next write swaps it back in (a host major fault
 * the guest's vCPU waits for; `swapIns` counts them). Such a host also gives the RAM
 * a pool (the host's sums over all its VMs, kept as pages change state) and a
 * referenced byte per page (set on every write, cleared by the host's reclaim
 * scanner: the accessed bit its LRU approximation reads); both stay null otherwise,
 * so a single VM pays nothing for them.
 */
import { TARGET_PAGE_SIZE } from '../virtio/guest_memory.js';

export const enum RamPageState {
  /** Never written: no host memory behind it. */
  untouched = 0,
  /** Backed by host memory. */
  resident = 1,
  /** Discarded by the host after having been resident; reads as zero. */
  discarded = 2,
  /** Swapped out by the host (host.ts): not resident, contents kept in host swap. */
  swapped = 3,
}

/** What a page holds (when resident; untouched and discarded pages read as zero). */
export const enum PageContent {
  zero = 0,
  /** Filled with the guest's PAGE_POISON byte. */
  poison = 1,
  /** Anything else; `gen` tells versions apart. */
  data = 2,
}

/** What the guest writes (the same values as the guest's PageWrite). */
export const enum RamWrite {
  zero = 0,
  data = 1,
  poison = 2,
}

export type RamBacking = {
  /** One past the highest guest-physical PFN. */
  maxPhysPfn: number;
  /** RamPageState per guest-physical PFN. */
  state: Uint8Array;
  /** PageContent per guest-physical PFN (meaningful while resident). */
  content: Uint8Array;
  /** Generation of a data page's contents (bumped on every data write). */
  gen: Uint32Array;
  /** The next generation to hand out. */
  nextGen: number;
  /** Dirty logging on (KVM_MEM_LOG_DIRTY_PAGES): writes set `dirty`. */
  dirtyLogging: boolean;
  /** The dirty log: pages written since the last sync. */
  dirty: Uint8Array;
  /** Page writes seen (each page of a multi-page write counts). */
  writes: number;
  /** Pages backed now (host RSS of guest RAM = residentPages * TARGET_PAGE_SIZE). */
  residentPages: number;
  /** Host page faults: first touches, and refaults of discarded pages. */
  firstTouches: number;
  refaults: number;
  /** Pages the host discarded (each discard of a resident page counts once). */
  discards: number;
  /** Pages in host swap now, and host swap-ins (a guest write to a swapped page) so far. */
  swappedPages: number;
  swapIns: number;
  /** Pages the host swapped out so far. */
  swapOuts: number;
  /** The host's sums over all its VMs (host.ts), or null for a VM on its own. */
  pool: RamPool | null;
  /** Set per page on every write, cleared by the host's reclaim scanner (null without a host). */
  referenced: Uint8Array | null;
};

/** What a host sums over the RAM of all its VMs, kept up to date by every change here. */
export type RamPool = {
  /** Guest RAM pages resident on the host (all VMs). */
  residentPages: number;
  /** Guest RAM pages in host swap (all VMs). */
  swappedPages: number;
};

export function createRamBacking(maxPhysPfn: number): RamBacking {
  return {
    maxPhysPfn, state: new Uint8Array(maxPhysPfn), content: new Uint8Array(maxPhysPfn), gen: new Uint32Array(maxPhysPfn), nextGen: 1,
    dirtyLogging: false, dirty: new Uint8Array(maxPhysPfn), writes: 0, residentPages: 0, firstTouches: 0, refaults: 0, discards: 0,
    swappedPages: 0, swapIns: 0, swapOuts: 0, pool: null, referenced: null,
  };
}

/**
 * The guest writes whole pages [physPfn, physPfn + n): each faults in if it was not
 * backed, takes the written content (data gets a new generation), and is logged dirty
 * while logging is on.
 * NOTE: called from the guest allocator's hot path through PgData.pageWrite.
 */
export function ramWrite(ram: RamBacking, physPfn: number, n: number, what: RamWrite): void {
  const content = what === RamWrite.data ? PageContent.data : what === RamWrite.poison ? PageContent.poison : PageContent.zero;
  const gen = what === RamWrite.data ? ram.nextGen++ : 0;
  const st = ram.state, ct = ram.content, gn = ram.gen, log = ram.dirtyLogging, ref = ram.referenced;
  let faulted = 0;
  for (let p = physPfn, e = physPfn + n; p < e; p++) {
    const s = st[p]!;
    if (s !== RamPageState.resident) {
      st[p] = RamPageState.resident;
      faulted++;
      if (s === RamPageState.discarded) ram.refaults++;
      else if (s === RamPageState.swapped) ramSwapIn(ram);
      else ram.firstTouches++;
    }
    ct[p] = content;
    gn[p] = gen;
    if (log) ram.dirty[p] = 1;
    if (ref !== null) ref[p] = 1;
  }
  ram.writes += n;
  if (faulted) ramFaultedIn(ram, faulted);
}

/** A swapped page came back (the caller makes it resident). */
function ramSwapIn(ram: RamBacking): void {
  ram.swappedPages--;
  ram.swapIns++;
  if (ram.pool !== null) ram.pool.swappedPages--;
}

/** `n` pages became resident: the counts, and the host hears of it. */
function ramFaultedIn(ram: RamBacking, n: number): void {
  ram.residentPages += n;
  if (ram.pool !== null) ram.pool.residentPages += n;
}

/** The guest copies page src to page dst (page migration): dst gets src's contents. */
export function ramCopy(ram: RamBacking, dstPhys: number, srcPhys: number): void {
  // reading a host-swapped source swaps it in first
  if (ram.state[srcPhys] === RamPageState.swapped) ramTouch(ram, srcPhys, 1);
  ramTouch(ram, dstPhys, 1);
  const resident = ram.state[srcPhys] === RamPageState.resident;
  ram.content[dstPhys] = resident ? ram.content[srcPhys]! : PageContent.zero;
  ram.gen[dstPhys] = resident ? ram.gen[srcPhys]! : 0;
  if (ram.dirtyLogging) ram.dirty[dstPhys] = 1;
  if (ram.referenced !== null) ram.referenced[dstPhys] = 1;
  ram.writes++;
}

/** What reading a page gives: its content (resident or in host swap), or zero when it is not backed. */
export function ramReadContent(ram: RamBacking, physPfn: number): PageContent {
  const s = ram.state[physPfn];
  return s === RamPageState.resident || s === RamPageState.swapped ? (ram.content[physPfn]! as PageContent) : PageContent.zero;
}

/**
 * The guest writes pages [physPfn, physPfn + n): each one not backed yet faults in.
 * NOTE: called from the guest allocator's hot path through PgData.pageWrite; one
 * typed-array read per page when the page is already resident.
 */
export function ramTouch(ram: RamBacking, physPfn: number, n: number): void {
  const st = ram.state;
  let faulted = 0;
  for (let p = physPfn, e = physPfn + n; p < e; p++) {
    const s = st[p]!;
    if (s === RamPageState.resident) continue;
    st[p] = RamPageState.resident;
    faulted++;
    if (s === RamPageState.discarded) ram.refaults++;
    else if (s === RamPageState.swapped) ramSwapIn(ram);
    else ram.firstTouches++;
  }
  if (ram.referenced !== null) ram.referenced.fill(1, physPfn, physPfn + n);
  if (faulted) ramFaultedIn(ram, faulted);
}

/** The host drops the backing of [physPfn, physPfn + n). Returns the pages that were resident. */
export function ramDiscard(ram: RamBacking, physPfn: number, n: number): number {
  const st = ram.state;
  let dropped = 0, unswapped = 0;
  for (let p = physPfn, e = Math.min(physPfn + n, ram.maxPhysPfn); p < e; p++) {
    const s = st[p];
    if (s === RamPageState.swapped) {
      // MADV_DONTNEED on a swapped-out page frees its swap slot without reading it
      st[p] = RamPageState.discarded;
      ram.content[p] = PageContent.zero;
      ram.gen[p] = 0;
      unswapped++;
      continue;
    }
    if (s !== RamPageState.resident) continue;
    st[p] = RamPageState.discarded;
    ram.content[p] = PageContent.zero;
    ram.gen[p] = 0;
    dropped++;
  }
  ram.residentPages -= dropped;
  ram.swappedPages -= unswapped;
  if (ram.pool !== null) { ram.pool.residentPages -= dropped; ram.pool.swappedPages -= unswapped; }
  ram.discards += dropped;
  return dropped;
}

/**
 * The host swaps page `physPfn` out (it must be resident): it leaves the resident set
 * with its contents kept, until the guest's next write swaps it in.
 */
export function ramSwapOut(ram: RamBacking, physPfn: number): void {
  ram.state[physPfn] = RamPageState.swapped;
  ram.residentPages--;
  ram.swappedPages++;
  ram.swapOuts++;
  if (ram.pool !== null) { ram.pool.residentPages--; ram.pool.swappedPages++; }
}

/** Whether the host has memory behind a page. */
export function ramResident(ram: RamBacking, physPfn: number): boolean {
  return ram.state[physPfn] === RamPageState.resident;
}

/** Host RSS of guest RAM in bytes. */
export function ramRssBytes(ram: RamBacking): number {
  return ram.residentPages * TARGET_PAGE_SIZE;
}
