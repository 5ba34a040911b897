/**
 * The task and process world the memory manager serves (include/linux/mm_types.h's
 * mm_struct counters, the task's place on a cpu, and the swap device of
 * include/linux/swap.h), as plain types with no dependencies on the rest of mm, so
 * that the node (mmzone.ts) can refer to them without importing the code that works
 * on them (process.ts, vmscan.ts).
 */

/** A mapping's madvise() for THP: MADV_HUGEPAGE (VM_HUGEPAGE), MADV_NOHUGEPAGE (VM_NOHUGEPAGE), or neither. */
export type ThpAdvice = 'hugepage' | 'nohugepage' | 'default';

/**
 * One anonymous mapping of a process (the VMA of an mmap(MAP_PRIVATE | MAP_ANONYMOUS)),
 * faulted in address order. Its pages' virtual places are `index * VMA_SPAN + offset`
 * (process.ts), so the process's pages can be put in virtual address order.
 */
export type AnonVma = {
  /** Creation order, 0-based (bl-mem's mapping index). */
  index: number;
  /** Its madvise() advice; null for the process's heap, whose advice is the process's `madvised`. */
  advice: ThpAdvice | null;
  /** Base pages faulted into it so far: the offset of its next page. */
  faulted: number;
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
  /**
   * The heads of the anonymous pages it faulted, in fault order: how the process's
   * pages are found (exit, unmap, khugepaged) without a memmap walk. Entries go stale
   * when a page is freed or moved (migration appends the new place), so users check each
   * with isProcessPage; notePage prunes the list when it has grown far past the process.
   */
  pages: number[];
  /**
   * Where the entries of `pages` sit in the address space (a place: vma index *
   * VMA_SPAN + offset in base pages), run-length coded so that a fault costs nothing
   * extra: triples [first log index, its place, page order] of runs of faults whose
   * places follow one another (each 2^order after the last); entries between them that
   * took another page's place are in `moved`. process.ts resolvePlaces decodes both.
   */
  placeRuns: number[];
  /** Pairs [log index, placeOf(src, sub)]: entries that took the place of page src (a migration's target, a split's subpage, a collapse). */
  moved: number[];
  /** The place that continues the last fault run (-1 when none). */
  nextPlace: number;
  /** The page list has many stale entries: prune it before the next walk. */
  prune?: boolean;
  /** Its anonymous mappings in creation order (process_fault makes one each time). */
  vmas: AnonVma[];
  /** The mapping faults without one of their own go to (workloads), made on first use. */
  heap: AnonVma | null;
};

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
};

/** The swap device (one swap_info_struct): size and use in pages (0 = no swap). */
export type SwapInfo = { totalPages: number; usedPages: number };
