/**
 * The task and process world the memory manager serves (include/linux/mm_types.h's
 * mm_struct counters, the task's place on a cpu, and the swap device of
 * include/linux/swap.h), as plain types with no dependencies on the rest of mm, so
 * that the node (mmzone.ts) can refer to them without importing the code that works
 * on them (process.ts, vmscan.ts).
 */

/** A mapping's madvise() for THP: MADV_HUGEPAGE (VM_HUGEPAGE), MADV_NOHUGEPAGE (VM_NOHUGEPAGE), or neither. */
export type ThpAdvice = 'hugepage' | 'nohugepage' | 'default';

/** What a mapping is: an anonymous mmap(MAP_PRIVATE | MAP_ANONYMOUS), or the brk heap. */
export type VmaKind = 'anon' | 'brk';

/**
 * A virtual memory area (struct vm_area_struct): [start, end) in virtual page numbers
 * of its process's address space (process.ts lays the space out), with its madvise()
 * THP flags (VM_HUGEPAGE, VM_NOHUGEPAGE).
 */
export type Vma = {
  start: number;
  end: number;
  kind: VmaKind;
  advice: ThpAdvice;
  /**
   * Pages from `start` that sequential faulting (faultAnonPages: a program touching its
   * new memory in address order) has reached; a fault by address does not move it.
   */
  faulted: number;
  /**
   * The program's own bookkeeping (bl-mem's per-page array): mapped and faulted like
   * any memory, but not among the pages the program frees or writes when asked to
   * (virtualCandidates, processPages). Absent: false.
   */
  bookkeeping?: boolean;
};

/** A pte's contents besides a pfn: nothing mapped (pte_none), or a swap entry. */
export const PTE_NONE = -1;
export const PTE_SWAP = -2;

/**
 * One PMD entry of a process, 2 MiB of its virtual space: either a PTE table (512
 * entries: a pfn, PTE_NONE or PTE_SWAP) or a huge PMD mapping a THP. Either way one
 * page-table page (`table`) is allocated for it: the PTE table's page, or the table
 * deposited with the huge PMD (pgtable_trans_huge_deposit), which becomes the PTE table
 * when the PMD is split.
 */
export type Pmd = {
  /** The PTE table, or null while the PMD maps a THP. */
  pte: Int32Array | null;
  /** The head pfn of the THP a huge PMD maps, or -1. */
  huge: number;
  /** The page-table page (Owner.pageTable, PageType.table). */
  table: number;
  /** Entries of the PTE table that map a page / hold a swap entry. */
  present: number;
  swapped: number;
};

/**
 * A process's address space (struct mm_struct): its mappings in address order, its
 * page tables by PMD index (virtual page number >> 9), and the page-table pages of the
 * levels above (a PMD table per 1 GiB, a PUD table per 512 GiB, the PGD).
 */
export type Mm = {
  /** Mappings, sorted by start, never overlapping. */
  vmas: Vma[];
  pmds: Map<number, Pmd>;
  /** PMD-table pages by vpn >> 18, PUD-table pages by vpn >> 27 (pfns). */
  pmdTables: Map<number, number>;
  pudTables: Map<number, number>;
  /** The PGD page, or -1 before the first mapping. */
  pgd: number;
  /** Page-table pages of all levels (mm_pgtables_bytes / PAGE_SIZE). */
  nrPgtables: number;
  /** vm_area_struct slab objects held for its mappings (one per mapping, slab.ts). */
  slabVmas: number;
  /** Where top-down mmap starts (mmap_base, as a vpn): new mappings go below it. */
  mmapBase: number;
  /** The heap's start and the break (mm->start_brk, mm->brk, as vpns). */
  startBrk: number;
  brk: number;
};

export type Process = {
  pid: number;
  /** Its heap is madvise(MADV_HUGEPAGE)d (VM_HUGEPAGE): memory faulted without a mapping of its own (workloads). */
  madvised: boolean;
  /** Anonymous pages mapped (MM_ANONPAGES). */
  rssAnon: number;
  /** Page-cache pages this process read or wrote that are still cached (its file). */
  filePages: number;
  /** Anonymous pages swapped out (MM_SWAPENTS). */
  swapPages: number;
  /** Its address space. */
  mm: Mm;
  /** The brk heap's top mapping (kind brk, ending at the break), made on first use. */
  heap: Vma | null;
  /** The vCPU it last ran on (task_struct's cpu; src/guest/sched.ts chooses from it). */
  cpu: number;
  /** It was forked (forkProcess): its task_struct, mm_struct, signal, sighand, files, cred and pid are slab objects, freed at exit. */
  forked: boolean;
};

/** The flusher's dirty list (b_dirty): page-cache pfns in the order they were dirtied, with the time of each; a ring that grows (page_writeback.ts). */
export type DirtyList = { pfns: Int32Array; times: Float64Array; head: number; len: number };

/** The guest's processes, by pid. */
export type ProcessTable = Map<number, Process>;

/** What runs on the guest's cpus, as the allocator and reclaim see it. */
export type TaskWorld = {
  /**
   * Processes by pid. Reclaim needs them as the reverse map does: a page swapped out
   * or a process killed by the OOM killer changes its owner's counters.
   */
  procs: ProcessTable;
  /** The cpu the current allocation runs on (this_cpu: selects the pcp lists). */
  cpu: number;
  /**
   * Virtual time allocating tasks have spent stalled in the slow path (direct reclaim
   * and compaction), ns. Workloads read it and charge it to the task that allocated.
   */
  stallNs: number;
  /**
   * Virtual time tasks have waited for I/O they cannot do without (a swap-in's read,
   * balance_dirty_pages' pause), ns: they sleep, the vCPU is free meanwhile.
   */
  ioWaitNs: number;
  /**
   * Allocations that went to the slow path so far: a caller that sees it unchanged
   * across its allocation knows no reclaim, compaction or OOM kill ran meanwhile.
   */
  slowpathEpoch: number;
  /**
   * current->capture_control: set while the current task compacts a zone directly for
   * an allocation, so that __free_one_page hands it the first free block of the
   * requested order it makes (compaction_capture); null otherwise.
   */
  captureControl: CaptureControl | null;
};

/**
 * struct capture_control (mm/internal.h): which zone and order a direct compaction
 * works for, and the block it captured (a PFN, or -1 while none).
 */
export type CaptureControl = { zoneIdx: number; order: number; page: number };

/** The swap device (one swap_info_struct): size and use in pages (0 = no swap). */
export type SwapInfo = { totalPages: number; usedPages: number };
