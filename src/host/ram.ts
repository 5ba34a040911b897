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
 * Per page one byte (RamPageState), indexed by guest-physical PFN; the PCI hole has
 * no backing and is never touched.
 */

export const enum RamPageState {
  /** Never written: no host memory behind it. */
  untouched = 0,
  /** Backed by host memory. */
  resident = 1,
  /** Discarded by the host after having been resident; reads as zero. */
  discarded = 2,
}

export type RamBacking = {
  /** One past the highest guest-physical PFN. */
  maxPhysPfn: number;
  /** RamPageState per guest-physical PFN. */
  state: Uint8Array;
  /** Pages backed now (host RSS of guest RAM = residentPages * 4096). */
  residentPages: number;
  /** Host page faults: first touches, and refaults of discarded pages. */
  firstTouches: number;
  refaults: number;
  /** Pages the host discarded (each discard of a resident page counts once). */
  discards: number;
};

export function createRamBacking(maxPhysPfn: number): RamBacking {
  return { maxPhysPfn, state: new Uint8Array(maxPhysPfn), residentPages: 0, firstTouches: 0, refaults: 0, discards: 0 };
}

/**
 * The guest writes pages [physPfn, physPfn + n): each one not backed yet faults in.
 * NOTE: called from the guest allocator's hot path through PgData.pageWrite; one
 * typed-array read per page when the page is already resident.
 */
export function ramTouch(ram: RamBacking, physPfn: number, n: number): void {
  const st = ram.state;
  for (let p = physPfn, e = physPfn + n; p < e; p++) {
    const s = st[p]!;
    if (s === RamPageState.resident) continue;
    st[p] = RamPageState.resident;
    ram.residentPages++;
    if (s === RamPageState.discarded) ram.refaults++;
    else ram.firstTouches++;
  }
}

/** The host drops the backing of [physPfn, physPfn + n). Returns the pages that were resident. */
export function ramDiscard(ram: RamBacking, physPfn: number, n: number): number {
  const st = ram.state;
  let dropped = 0;
  for (let p = physPfn, e = Math.min(physPfn + n, ram.maxPhysPfn); p < e; p++) {
    if (st[p] !== RamPageState.resident) continue;
    st[p] = RamPageState.discarded;
    dropped++;
  }
  ram.residentPages -= dropped;
  ram.discards += dropped;
  return dropped;
}

/** Whether the host has memory behind a page. */
export function ramResident(ram: RamBacking, physPfn: number): boolean {
  return ram.state[physPfn] === RamPageState.resident;
}

/** Host RSS of guest RAM in bytes. */
export function ramRssBytes(ram: RamBacking): number {
  return ram.residentPages * 4096;
}
