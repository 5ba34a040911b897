/**
 * The cost table: how much virtual time each modelled piece of work takes.
 *
 * Every figure names its source or the reasoning behind it. Figures are for a
 * current x86-64 server core running a KVM guest; they are orders of magnitude the
 * literature and the kernel's own comments agree on, not tuned to any experiment's
 * published result. Change them here, nowhere else; scenarios may override entries
 * by name (`costs:` in a scenario file).
 */

export type CostEntry = {
  /** Nanoseconds per unit of work. */
  ns: number;
  /** What one unit is. */
  unit: string;
  /** Where the figure comes from. */
  source: string;
};

export const COSTS = {
  pageAllocFast: {
    ns: 150,
    unit: 'order-0 allocation served from a per-cpu list',
    source: 'Order of magnitude: Jesper Brouer\'s page_bench01 runs (prototype-kernel, 2016-17) put an order-0 alloc+free pair through the pcp lists at a few hundred cycles, about 100 ns at 3 GHz; we charge 150 ns to the allocation side. Not yet cross-checked on a 6.x kernel.',
  },
  pageAllocBuddy: {
    ns: 400,
    unit: 'allocation taken from the buddy free lists under zone->lock',
    source: 'Reasoning: rmqueue_bulk amortises zone->lock over pcp->batch pages; a direct buddy allocation pays the lock (an uncontended atomic pair, ~40 ns) plus list walks and page-struct cache misses (~100 ns each); a few hundred ns.',
  },
  pageFault: {
    ns: 500,
    unit: 'the fault itself for one anonymous page: exception entry and exit, handle_mm_fault, the page table update, rmap, LRU add and memcg charge (the allocation and the zeroing are pageAllocFast and clearPage)',
    source: 'Reasoning: will-it-scale\'s page_fault1 (fault 128 MiB of 4 KiB pages, munmap, repeat) runs on the order of a million faults per second per core on current x86, ~1 us a fault with its zeroing (~0.4 us) and allocation (~0.15 us); what is left is ~0.5 us. A THP fault pays it once for 512 pages.',
  },
  pageFree: {
    ns: 120,
    unit: 'order-0 free to a per-cpu list',
    source: 'Same page_bench01 order of magnitude as pageAllocFast; the free side does less work (no watermark check).',
  },
  madvisePage: {
    ns: 2_000,
    unit: 'one madvise(MADV_DONTNEED) of a mapped 4 KiB page: the system call, find_vma, the zap of one pte, the TLB flush of one address (invlpg, no IPI on one thread) and the page\'s free (bl-mem\'s free makes one call a page)',
    source: 'Measured on the host without QEMU (bl-madvise-bench: MADV_DONTNEED of a 4 KiB-mapped page 3.0-3.8 us on this 2-core VM, its syscall ~1.1 us); a server core about half that: 2 us.',
  },
  clearPage: {
    ns: 400,
    unit: 'zeroing one 4 KiB page (init_on_alloc, __GFP_ZERO)',
    source: 'clear_page with rep stosb runs at roughly 10 GB/s per core on current x86 (Intel optimization manual; kernel commit messages for clear_page_erms): 4096 B / 10 GB/s ~ 410 ns.',
  },
  compactScanPage: {
    ns: 10,
    unit: 'one page (struct page) looked at by a compaction scanner',
    source: 'Reasoning: the scanners read a 64-byte struct page per pfn, sequentially, so mostly from cache after hardware prefetch; a few ns of load plus the flag tests, rounded up to 10 ns. Order of magnitude of the kernel\'s compaction tracepoints (millions of pages scanned per second per CPU).',
  },
  migratePage: {
    ns: 2000,
    unit: 'migrating one 4 KiB page (unmap, copy, remap)',
    source: 'Reasoning: copying 4 KiB at ~8 GB/s is ~0.5 us; try_to_migrate walks the reverse map and clears the PTE, and the TLB flush needs an IPI to other CPUs running the mm (~1 us); remove_migration_ptes restores the mapping. About 2 us per page, in line with migrate_pages throughput reports of ~0.5 GB/s per CPU for 4 KiB pages.',
  },
  reclaimScanPage: {
    ns: 50,
    unit: 'one page looked at by reclaim (isolate from the LRU, check references, put back)',
    source: 'Reasoning: shrink_folio_list takes the LRU lock in batches and walks the reverse map to test references (folio_referenced); a few cache misses per page, ~50 ns. Order of magnitude of kswapd scan rates of tens of millions of pages per second reported on LKML.',
  },
  pageoutSubmit: {
    ns: 1500,
    unit: 'the CPU time of sending one page to its device for writing (reclaim\'s pageout: add_to_swap, try_to_unmap and swap_writepage for anonymous pages, ->writepage for file pages; the flusher\'s writepages): the writer does not wait for the device',
    source: 'Reasoning: a swap slot from the per-cpu cache, the rmap walk and PTE update with a batched TLB flush, a bio allocated and submitted to virtio-blk (one descriptor chain, a kick amortised over a plug): about a microsecond and a half. The device\'s own time per page (writebackPage for a disk; a swap device is alike) is waited for by nobody here: the device\'s queue is not modelled.',
  },
  swapInPage: {
    ns: 100000,
    unit: 'a major fault reading one 4 KiB anonymous page back from swap (do_swap_page), waited for by the faulting task',
    source: 'Reasoning: unlike swap-out, which reclaim issues in batches, a swap-in is a synchronous 4 KiB read at queue depth 1; a virtio-blk device backed by host NVMe answers one in ~50-100 us of round trip (guest exit, host I/O, completion interrupt), so 100 us. Swap readahead (page-cluster) is not modelled.',
  },
  writebackPage: {
    ns: 10000,
    unit: 'the disk\'s time writing back one dirty 4 KiB page-cache page',
    source: 'Reasoning: a virtio-blk or NVMe device sustains a few hundred MB/s of 4 KiB writes from a guest; at ~400 MB/s a page takes ~10 us of device time. A writer throttled in balance_dirty_pages sleeps this long per page of its excess; reclaim and the flusher submit and go on (pageoutSubmit).',
  },
  oomKill: {
    ns: 1000000,
    unit: 'selecting and killing a process (oom_kill_process), before its memory is freed',
    source: 'Reasoning: the OOM killer walks every task (select_bad_process), dumps state to the log and waits for the victim to exit; on the order of a millisecond.',
  },
  virtqueueKick: {
    ns: 8000,
    unit: 'one round trip through a virtqueue: the guest\'s kick (a VM exit to an ioeventfd), the host thread waking to handle it, and the used-buffer interrupt back',
    source: 'Reasoning: a KVM MMIO/PIO exit with ioeventfd costs 1-2 us, waking QEMU\'s main loop a few us, and injecting the interrupt and running the guest handler another 1-2 us; virtio latency measurements (e.g. the KVM Forum vhost and ioeventfd talks) put a notification round trip at 5-10 us.',
  },
  hostDiscardPage: {
    ns: 1000,
    unit: 'the host discarding one 4 KiB page of guest RAM with its own madvise(MADV_DONTNEED) (QEMU balloon_inflate_page for a 4 KiB host page)',
    source: 'Reasoning: one system call (~100-200 ns), zapping one PTE and freeing the page (~200 ns), and a TLB flush of the VM\'s address space that may interrupt vCPU threads (~0.5 us).',
  },
  hostDiscardRangePage: {
    ns: 100,
    unit: 'one 4 KiB page of a large range the host discards in one madvise call (reported free pages, hinted pages in discard mode)',
    source: 'Reasoning: with the call and the TLB flush amortised over 512 or 1024 pages, what is left per page is zapping its PTE and returning the page to the host allocator, ~50-100 ns.',
  },
  hostSwapInPage: {
    ns: 80_000,
    unit: 'a guest write to a page of guest RAM the host swapped out (host.ts): the EPT violation, the host\'s do_swap_page reading the 4 KiB page back from the host\'s swap device, the mapping restored; the guest\'s vCPU waits for all of it',
    source: 'Reasoning (not measured here: the QEMU real guest runs on a host without swap): host swap on a data-centre NVMe SSD reads a 4 KiB page at queue depth 1 in ~70-90 us (TLC NAND read time plus the controller; vendors\' QD1 random-read latency figures), plus a few us of exit, fault handling and re-entry; 80 us. No swap readahead (vm.page-cluster) is modelled, so a sequential run of swapped pages costs this per page. Lower than the guest\'s own swapInPage (100 us), which also pays the virtio-blk round trip.',
  },
  hostWillneedPage: {
    ns: 500,
    unit: 'the host\'s work for one deflated 4 KiB PFN (QEMU virtio_balloon_handle_output: memory_region_find and qemu_ram_block_from_host for the PFN, then balloon_deflate_page\'s qemu_madvise(MADV_WILLNEED) of the page)',
    source: 'Reasoning from QEMU 10 and Linux: madvise_willneed on private anonymous memory only walks the range for swap entries (swapin_walk_ops, finding the discarded PTE empty) and drains the LRU pagevecs; with the syscall entry and exit, mmap_read_lock and the VMA lookup ~300 ns on a server core, plus ~150 ns of QEMU\'s per-PFN lookup (RCU, flatview lookup, two atomic reference counts). Measured on this machine (a 2-core AMD EPYC VM): the syscall alone 0.9-1.3 us (scripts/real-guest/qemu/bl-madvise-bench.c), QEMU\'s main thread 0.8-1.5 us per deflated PFN, median 1.2 us over the same 28 deflates (measure-balloon.sh); the table keeps the server figure (docs/fidelity.md, "Balloon inflate and deflate under TCG").',
  },
  balloonLeakPage: {
    ns: 250,
    unit: 'the guest\'s own work for one page of a balloon leak round (leak_balloon: balloon_page_dequeue under the balloon lock, set_page_pfns, then release_pages_balloon\'s put_page to the per-cpu free list)',
    source: 'Reasoning: the free is pageFree\'s ~120 ns; balloon_page_list_dequeue adds an irqsave spinlock, trylock_page and unlock_page (two atomics), balloon_page_delete\'s list_del and page-type flag clears on a struct page that is usually a cache miss, and the vm event: ~130 ns more.',
  },
  hintWalkEntry: {
    ns: 100,
    unit: 'one free block get_from_free_page_list copies into the hint buffer under zone->lock (v33 free page hinting: list_for_each_entry to the next block, page_to_pfn, one le64 store)',
    source: 'Reasoning, not measured (the v33 series was never merged and its mails give no timing): the walk chases page->lru from one free max-order block to the next; the struct pages of two 4 MiB blocks are 64 KiB apart in the memmap and rarely adjacent on the list, so each step is a dependent cache miss to DRAM (~80-100 ns on a server core; the hardware prefetcher cannot follow a linked list), and the sequential 8-byte store into the buffer is cheap beside it: ~100 ns an entry, so a full 16-page buffer (8191 entries) holds the lock ~0.8 ms and a 1024-page one (524287) ~52 ms.',
  },
  hintWalkZone: {
    ns: 200,
    unit: 'the fixed part of one zone of the get_from_free_page_list walk: spin_lock_irqsave and spin_unlock_irqrestore of zone->lock and the free_area[order] list heads of every migratetype',
    source: 'Reasoning, not measured: an uncontended irqsave lock and unlock is a few tens of ns, the lock\'s cache line probably comes from another cpu that allocated last (~100 ns), and looking at MIGRATE_TYPES list heads is a few more loads: ~200 ns a zone.',
  },
  migrationZeroPage: {
    ns: 300,
    unit: 'the migration thread checking one 4 KiB page that turns out all zero (buffer_is_zero reads all of it)',
    source: 'Reasoning: buffer_is_zero with SSE2/AVX2 is bound by memory bandwidth for cold pages; reading 4 KiB from DRAM at ~12-15 GB/s on one core takes ~300 ns.',
  },
  migrationNormalPage: {
    ns: 1000,
    unit: 'the migration thread sending one non-zero 4 KiB page: the zero check stops at the first non-zero word, then the page is copied into the stream and written to the socket',
    source: 'Reasoning: copying 4 KiB into QEMUFile\'s buffer and through the TCP stack (another copy, checksum offloaded) costs ~2 x 4 KiB at ~8 GB/s plus per-write overhead amortised over 32 KiB writes: ~1 us per page, i.e. ~4 GB/s per migration thread, which is the order of a single QEMU migration thread\'s ceiling reported on 25-100 Gbit links.',
  },
  migrationSyncPage: {
    ns: 2,
    unit: 'one guest page covered by a dirty bitmap sync (KVM_GET_DIRTY_LOG and merging the bitmap into the migration bitmap)',
    source: 'Reasoning: the kernel and QEMU walk one bit per page, 64 pages per word, plus the memslot walk; a few ns per page on average, so ~5 ms per GiB for a sync. Dirty pages add migrationReprotectPage each.',
  },
  migrationReprotectPage: {
    ns: 50,
    unit: 'write-protecting one page again after a sync, or when dirty logging starts (SPTE update, with TLB flushes batched)',
    source: 'Reasoning: kvm_mmu_slot_remove_write_access / the manual-protect clear walk the rmap or the TDP MMU and update one SPTE per page, tens of ns each; 50 ns keeps the setup of an 8 GiB guest near 100 ms.',
  },
  migrationSwitchover: {
    ns: 20_000_000,
    unit: 'the fixed part of downtime: stopping the vCPUs, saving and sending device state, loading it and starting the vCPUs on the destination',
    source: 'Reasoning: device state of a small VM is a few hundred KiB (virtio rings, CPU state, KVM clock); QEMU reports ~10-30 ms of downtime for idle guests with almost no RAM left to send.',
  },
  // TCG (host.accel: tcg): the guest's CPU is emulated by QEMU's softmmu; the entries
  // above are KVM's. Under TCG the guest charges tcgClearPage where it would charge
  // clearPage (tcgPageFault for pageFault, tcgBalloonLeakPage for balloonLeakPage),
  // each process_write store costs its vCPU tcgGuestStore (plus
  // tcgNotdirtyWrite on a clean page), and a bitmap sync costs the tcgSync* entries
  // instead of migrationSyncPage/migrationReprotectPage. The migration thread's
  // per-page costs are the same under both (it is host code either way).
  // docs/fidelity.md, "TCG and KVM: dirty tracking", has the measurements.
  tcgClearPage: {
    ns: 10_000,
    unit: 'the guest zeroing one 4 KiB page under TCG (init_on_alloc, __GFP_ZERO, clear_page emulated store by store)',
    source: 'Measured on this machine (scripts/real-guest/qemu/measure-migration.sh fault: QEMU 10.0.2 TCG on a 2-core AMD EPYC VM, Linux 6.1 guest): bl-mem fault 256M hugepage faults 128 THPs in 634 and 682 ms (two runs), 9.7-10.4 us per 4 KiB zeroed with the fault amortised over 512 pages; with 4 KiB pages (nohugepage) a fault and its zeroing take 15-28 us. 25x clearPage.',
  },
  tcgMadvisePage: {
    ns: 15_000,
    unit: 'one madvise(MADV_DONTNEED) of a mapped 4 KiB page under TCG: the system call, the zap of its pte, the TLB flush of one address and the page\'s free',
    source: 'Measured on this machine (QEMU 10.0.2 TCG, Linux 6.1 guest): bl-mem free 0.5 alternate over a 640 MiB fill frees 81920 pages in 1098-1783 ms (four runs, bl-mem\'s ms), 13-22 us a call; 15 us.',
  },
  tcgPageFault: {
    ns: 8_000,
    unit: 'the fault itself for one anonymous page under TCG (pageFault emulated: the exception, the kernel\'s fault path, softmmu TLB refills)',
    source: 'Measured on this machine (measure-migration.sh fault, the same runs as tcgClearPage): bl-mem faulting 4 KiB pages (nohugepage) takes 15-28 us a page with its zeroing; less tcgClearPage (~10 us) that leaves 5-18 us for the fault and the allocation; 8 us.',
  },
  tcgGuestStore: {
    ns: 300,
    unit: 'one page-dirtying store of a process_write writer under TCG: the vCPU time of one iteration of the writer loop (pick a random page, load, add, store)',
    source: 'Measured on this machine (measure-migration.sh rate): bl-mem write over 64 MiB asked for far more than TCG can do runs its 16.8 M stores in 4.56 and 5.64 s (two runs: 3.68 and 2.98 M stores/s), ~300 ns each; the loop is splitmix64, a modulo, two loads and a load+store, as TCG-translated code. So a TCG guest dirties at most ~3.3 M pages/s per vCPU (~13 GiB/s); under KVM the loop would run some 30x faster and the model does not bound it.',
  },
  tcgNotdirtyWrite: {
    ns: 500,
    unit: 'the extra vCPU time of the first store to a page that is clean for migration under TCG (TLB_NOTDIRTY: the store leaves translated code for notdirty_write)',
    source: 'Reasoning from accel/tcg/cputlb.c (QEMU 10): the store misses the TLB fast path, the helper finds TLB_NOTDIRTY and calls notdirty_write, which tests DIRTY_MEMORY_CODE, sets the page in ram_list.dirty_memory[] for VGA and MIGRATION (atomic ORs under RCU), then tlb_set_dirty rewrites the entry in every MMU index and the victim TLB: a few hundred host ns. Not measurable here (16384 such stores a sync against millions of fast ones); an upper bound, 500 ns.',
  },
  tcgSyncPage: {
    ns: 0.1,
    unit: 'one page of guest RAM walked by a bitmap sync under TCG (cpu_physical_memory_sync_dirty_bitmap over ram_list.dirty_memory[DIRTY_MEMORY_MIGRATION]; no KVM_GET_DIRTY_LOG)',
    source: 'Reasoning: with no log_sync listener, the sync reads the global bitmap one word (64 pages) at a time, 32 KiB per GiB; a few ns per word, ~0.1 ns per page with the per-RAMBlock loop: 26 us per GiB, where migrationSyncPage charges KVM 0.5 ms.',
  },
  tcgSyncDirtyPage: {
    ns: 5,
    unit: 'one dirty page collected by a bitmap sync under TCG (the word\'s atomic exchange to 0 and OR into the migration bitmap, shared by the word\'s dirty pages)',
    source: 'Reasoning: an atomic xchg costs ~10-20 ns and covers up to 64 pages; writers dirty clustered pages, so a few ns per dirty page. There is no write protection to redo: TCG re-arms tracking through the TLB (tcgTlbReset).',
  },
  tcgTlbReset: {
    ns: 20_000,
    unit: 'tlb_reset_dirty_range_all after a sync that found dirty pages under TCG, per vCPU: every entry of the vCPU\'s softmmu TLB (all MMU indexes and the victim TLB) gets TLB_NOTDIRTY when it maps the synced RAM',
    source: 'Reasoning: x86 TCG has 8 MMU indexes with dynamically sized TLBs (256 entries at least, a few thousand for a busy Linux guest); ~10 k entries at ~2 ns each under the TLB lock, ~20 us per vCPU.',
  },
  tcgBalloonLeakPage: {
    ns: 2900,
    unit: 'the guest\'s own work for one page of a balloon leak round under TCG (what balloonLeakPage is under KVM, emulated), with its share of the round\'s tell_host, used-buffer interrupt and update_balloon_size',
    source: 'Measured on this machine (scripts/real-guest/qemu/measure-balloon.sh: QEMU 10.0.2 TCG, 1 GiB Linux 6.1 guest, 28 deflates of 64-512 MiB, each after its inflate, in seven boots of 3-5 cycles): the vCPU thread\'s CPU time (/proc/<pid>/task/<tid>/schedstat) per deflated page, 1.8-4.6 us, median 2.85 us (1.8-2.2 us while the machine\'s other load was lighter); the host\'s per-PFN share runs on QEMU\'s main thread (hostWillneedPage). ~12x balloonLeakPage.',
  },
} as const satisfies Record<string, CostEntry>;

export type CostName = keyof typeof COSTS;

/** A cost table in effect for one run: the defaults with a scenario's overrides applied. */
export type CostTable = Record<CostName, number>;

/** Every cost's name, in the table's order. */
export const COST_NAMES: readonly CostName[] = Object.keys(COSTS) as CostName[];

/** Overrides of some costs by name, ns per unit (a scenario's `costs:`). */
export type CostOverrides = Partial<Record<CostName, number>>;

export function defaultCostTable(): CostTable {
  const t = {} as CostTable;
  for (const k of COST_NAMES) t[k] = COSTS[k].ns;
  return t;
}

/** The table a run uses: the defaults with the overrides applied (names already validated). */
export function costTable(overrides: CostOverrides = {}): CostTable {
  const t = defaultCostTable();
  for (const k of COST_NAMES) {
    const v = overrides[k];
    if (v !== undefined) t[k] = v;
  }
  return t;
}

/** The host's accelerator (QEMU -accel): KVM runs the guest's code on the CPU, TCG translates and emulates it. */
export type Accel = 'kvm' | 'tcg';

/**
 * The costs the guest's own code pays under `accel`. KVM: the table itself. TCG:
 * zeroing a page costs tcgClearPage (the guest CPU cost that decides migration
 * figures: free page hinting zeroes every hinted block), an anonymous fault
 * tcgPageFault, a page of a balloon leak round tcgBalloonLeakPage (what decides a
 * deflate's time) and a one-page madvise tcgMadvisePage; the guest's other entries
 * are not scaled (docs/model-limits.md).
 */
export function guestCostTable(t: CostTable, accel: Accel): CostTable {
  return accel === 'tcg' ? { ...t, clearPage: t.tcgClearPage, pageFault: t.tcgPageFault, balloonLeakPage: t.tcgBalloonLeakPage, madvisePage: t.tcgMadvisePage } : t;
}
