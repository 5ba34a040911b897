/**
 * The task and process world the memory manager serves (include/linux/mm_types.h's
 * mm_struct counters, the task's place on a cpu, and the swap device of
 * include/linux/swap.h), as plain types with no dependencies on the rest of mm, so
 * that the node (mmzone.ts) can refer to them without importing the code that works
 * on them (process.ts, vmscan.ts).
 */

export type Process = {
  pid: number;
  /** Its memory is madvise(MADV_HUGEPAGE)d (VM_HUGEPAGE). */
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
  /** The page list has many stale entries: prune it before the next walk. */
  prune?: boolean;
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
