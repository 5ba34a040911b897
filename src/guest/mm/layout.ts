/**
 * The guest-physical memory layout of a QEMU `pc` (i440FX) machine with SeaBIOS, as
 * the Linux kernel sees it after e820 and memblock setup.
 *
 * - RAM below 4 GiB ("lowmem") is all of RAM when it is under 3.5 GiB, otherwise
 *   3 GiB; the rest is mapped from 4 GiB up (QEMU pc_init1: below_4g_mem_size).
 * - e820 usable ranges: [0, 0x9fc00), [1 MiB, lowmem - 128 KiB), [4 GiB, 4 GiB + highmem).
 *   SeaBIOS reserves the top 128 KiB of lowmem; the kernel trims page 0.
 *   (A real 1 GiB guest: zone DMA start_pfn 1, spanned 4095, present 3998; zone DMA32
 *   start_pfn 4096, spanned = present = 258016.)
 *
 * The model's memmap PFN is the physical PFN below 4 GiB and the physical PFN minus
 * the PCI hole above it (see memmap.ts).
 */
import { MAX_ORDER_NR_PAGES, PAGE_SHIFT } from './memmap.js';
import { InputError } from '../../sim/errors.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Where the PCI hole starts when RAM does not fit below it (pc machine). */
const PC_LOWMEM_LIMIT = 0xe0000000; // 3.5 GiB
const PC_LOWMEM_SPLIT = 0xc0000000; // 3 GiB
/** SeaBIOS's reservation at the top of lowmem. */
export const BIOS_TOP_RESERVED_PAGES = 32;
/** Usable RAM below 640 KiB ends at 0x9fc00: pages 0..158 (page 159 is partial). */
export const LOW_RAM_END_PFN = 0x9f;
/** The legacy 1 MiB: always memblock-reserved on x86 since Linux 5.13. */
export const LOW_1MIB_PFN = 0x100;

/** A guest configuration the model cannot boot (bad size, too small): the user's input is wrong. */
export class GuestConfigError extends InputError {}

export type MemLayout = {
  /** Guest RAM in bytes. */
  memoryBytes: number;
  /** Pages in the memmap (= RAM pages; the PCI hole has none). */
  nrPages: number;
  /** Memmap PFN where highmem (RAM above 4 GiB) starts = pages of RAM below 4 GiB. */
  lowmemPages: number;
  /** Pages of the PCI hole between lowmem and 4 GiB (0 when all RAM is below it). */
  holePages: number;
  /** One past the highest physical PFN. */
  maxPhysPfn: number;
};

/** The smallest guest the model boots (a Debian 6.1 kernel and its boot footprint need about 60 MiB). */
export const MIN_GUEST_MEMORY = 128 * MiB;
/**
 * The largest guest the model boots: 2 TiB, 2^29 pages. The page map (16 bytes a page,
 * 8 GiB), the host's backing (7 bytes a page) and a migration's bitmaps (7 bytes a
 * page) fit a 24 GiB host running the model (the 2-core, 24 GiB machine CI uses); the
 * typed arrays would allow 4 TiB, that memory would not.
 */
export const MAX_GUEST_MEMORY = 2 * 1024 * GiB;
/** Guest RAM comes in multiples of a MAX_ORDER block (4 MiB). */
export const GUEST_MEMORY_UNIT = MAX_ORDER_NR_PAGES << PAGE_SHIFT;

/** Why a guest memory size cannot be booted, or null (the same rules memLayout enforces). */
export function guestMemoryProblem(memoryBytes: number): string | null {
  if (!Number.isInteger(memoryBytes) || memoryBytes <= 0) return 'must be a positive whole number of bytes';
  if (memoryBytes % GUEST_MEMORY_UNIT !== 0) return `must be a multiple of ${GUEST_MEMORY_UNIT / MiB}MiB (got ${memoryBytes} bytes)`;
  if (memoryBytes < MIN_GUEST_MEMORY) return 'must be at least 128MiB (a Debian 6.1 kernel and its boot footprint need about 60 MiB)';
  if (memoryBytes > MAX_GUEST_MEMORY) return 'must be at most 2TiB (the largest supported guest: its page map, host backing and migration bitmaps need about 16 GiB of the machine running balloonlab)';
  return null;
}

export function memLayout(memoryBytes: number): MemLayout {
  const bad = guestMemoryProblem(memoryBytes);
  if (bad !== null) throw new GuestConfigError(`memory ${bad}`);
  const lowmem = memoryBytes >= PC_LOWMEM_LIMIT ? PC_LOWMEM_SPLIT : memoryBytes;
  const nrPages = memoryBytes >>> 0 === memoryBytes ? memoryBytes >>> PAGE_SHIFT : Math.floor(memoryBytes / 4096);
  const lowmemPages = lowmem / 4096;
  const holePages = memoryBytes > lowmem ? (4 * GiB - lowmem) / 4096 : 0;
  return { memoryBytes, nrPages, lowmemPages, holePages, maxPhysPfn: nrPages + holePages };
}

/** page_to_pfn(): the physical PFN of a memmap PFN. */
export function physPfn(layout: MemLayout, pfn: number): number {
  return pfn < layout.lowmemPages ? pfn : pfn + layout.holePages;
}

/** pfn_to_page(): the memmap PFN of a physical PFN, or -1 in the PCI hole or beyond RAM. */
export function memmapPfn(layout: MemLayout, phys: number): number {
  if (phys < layout.lowmemPages) return phys;
  const p = phys - layout.holePages;
  return phys >= 0x100000 && p < layout.nrPages ? p : -1;
}
