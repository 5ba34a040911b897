/**
 * Kernel eras: one profile object per modelled kernel (`guest.kernel`), which the
 * allocator, reclaim, compaction, THP and the balloon driver consult for the
 * mechanisms that differ. A profile names mechanisms, not versions: page_alloc.ts asks
 * `k.fallback === 'largest-claim-half'`, never which kernel it is, so a profile for
 * another kernel is a new object here and a mechanism in the file that has it.
 *
 * Every field cites the code it was read from (KERNEL_MECHANISMS below, which
 * `balloonlab compare --era-diff` prints): Linux 3.6.0 (mm/ and virtio_balloon.c of
 * the v3.6 tree) and Linux 6.1. docs/kernel-eras.md explains each; what the 3.6 model
 * leaves out is in docs/model-limits.md.
 */

/** The kernels a guest can run. */
export type KernelVersion = '6.1' | '3.6';
export const KERNEL_VERSIONS: readonly KernelVersion[] = ['6.1', '3.6'];

export type KernelProfile = {
  readonly version: KernelVersion;
  /** __rmqueue_fallback's rule. */
  readonly fallback: 'steal-suitable' | 'largest-claim-half';
  /** ALLOC_NOFRAGMENT on allocations whose preferred zone is Normal (5.0). */
  readonly allocNofragment: boolean;
  /** boost_watermark on fragmenting fallbacks, vm.watermark_boost_factor (5.0). */
  readonly watermarkBoost: boolean;
  /** The reserve blocks: MIGRATE_HIGHATOMIC (4.4) or MIGRATE_RESERVE (2.6.24 to 4.3). */
  readonly reserve: 'highatomic' | 'migrate-reserve';
  /** __zone_watermark_ok for orders > 0: a free block of the order (4.4) or the per-order halving of min (before). */
  readonly watermarkCheck: 'free-area' | 'order-halving';
  /** The gap between watermarks: watermark_scale_factor (4.6) or min/4 and min/2. */
  readonly watermarkGap: 'scale-factor' | 'quarter-half';
  /** min_free_kbytes split across zones by managed pages (3.8+) or present pages. */
  readonly watermarkShare: 'managed' | 'present';
  /** init_per_zone_wmark_min's upper clamp (65536 before 5.7... 262144 in 6.1). */
  readonly minFreeKbytesMax: number;
  /** pcp lists for orders 1..3 and the THP order (5.13/5.14), with free_factor; otherwise order 0 only. */
  readonly pcpHighOrders: boolean;
  /** The pcp high mark: a share of the low watermark (5.14) or six batches; batch cap in bytes (1 MiB / 512 KiB). */
  readonly pcpHigh: 'low-wmark-share' | 'six-batches';
  readonly pcpBatchMaxBytes: number;
  /** Whether __free_one_page refuses to merge across pageblocks of unmergeable types (highatomic, isolate). */
  readonly mergeTypeCheck: boolean;
  readonly compaction: {
    /** PB_migrate_skip hints and the cached scanner positions (3.7), with 6.1's rules for setting, using and resetting them. */
    readonly skipHints: boolean;
    /** The free scanner restarts from the zone end once when the scanners meet (3.6's compact_cached_free_pfn wrap). */
    readonly freeScannerWrap: boolean;
    /** Async compaction skips non-Movable source blocks: for every async run (3.6) or only direct compaction by type (6.1). */
    readonly asyncSource: 'movable-blocks' | 'by-migratetype';
    /** suitable_migration_target: free blocks of pageblock order are targets (3.6) or are left alone (6.1). */
    readonly targetFreePageblocks: boolean;
    /** compact_finished and compaction_suitable of the era. */
    readonly rules: '3.6' | '6.1';
    /** Drain this cpu's pcp lists when the migrate scanner leaves a cc->order block (4.x). */
    readonly drainPerBlock: boolean;
    /**
     * The fast scanners (5.1): fast_isolate_freepages takes targets from the free lists
     * before the free scanner's linear scan; fast_find_migrateblock picks the migrate
     * scanner's next block from the free lists of orders below the request.
     */
    readonly fastScanners: boolean;
    /**
     * isolate_freepages: whole suitable pageblocks until enough (3.6), or (6.1) stop
     * inside a block as soon as there are enough targets and resume there, sample every
     * 32nd page in async mode, hint every block scanned through, end a scan the
     * watermark stops (COMPACT_CONTENDED).
     */
    readonly freeScanner: 'whole-blocks' | 'until-enough';
    /** Async direct compaction gives up a cc->order block at its first page that fails to isolate or migrate (4.x, skip_on_failure). */
    readonly skipOnFailure: boolean;
    /** The task compacting for an allocation captures the first free block of its order that a free makes (5.1, compaction_capture). */
    readonly capture: boolean;
  };
  /** kcompactd (4.6): kswapd hands high orders to it; otherwise kswapd compacts itself (compact_pgdat, async). */
  readonly kcompactd: boolean;
  /** Proactive compaction (5.9). */
  readonly proactiveCompaction: boolean;
  /** __alloc_pages_slowpath of the era. */
  readonly slowpath: '3.6' | '6.1';
  /** transparent_hugepage/defrag at boot. */
  readonly thpDefragDefault: 'always' | 'madvise';
  /** init_on_alloc exists (5.3). */
  readonly initOnAlloc: boolean;
  readonly balloon: {
    /** Features the driver knows (virtio_balloon.c features[]). */
    readonly features: readonly number[];
    /** What page-types shows for a balloon page: PG_offline (4.20), PG_balloon (4.0-4.19), or no bit (3.x). */
    readonly pageType: 'offline' | 'balloon' | 'none';
    /** Balloon counters in /proc/vmstat: balloon_inflate/deflate/migrate (3.18) or the v10 series' compact_balloon_* (not merged). */
    readonly counters: 'balloon' | 'compact_balloon';
  };
  /** /proc/vmstat's event names of the era. */
  readonly vmstat: '6.1' | '3.6';
};

// virtio_balloon feature bits (include/uapi/linux/virtio_balloon.h)
const MUST_TELL_HOST = 0, STATS_VQ = 1, DEFLATE_ON_OOM = 2, FREE_PAGE_HINT = 3, PAGE_POISON = 4, REPORTING = 5;

export const KERNEL_6_1: KernelProfile = {
  version: '6.1', fallback: 'steal-suitable', allocNofragment: true, watermarkBoost: true, reserve: 'highatomic',
  watermarkCheck: 'free-area', watermarkGap: 'scale-factor', watermarkShare: 'managed', minFreeKbytesMax: 262144,
  pcpHighOrders: true, pcpHigh: 'low-wmark-share', pcpBatchMaxBytes: 1 << 20, mergeTypeCheck: true,
  compaction: { skipHints: true, freeScannerWrap: false, asyncSource: 'by-migratetype', targetFreePageblocks: false, rules: '6.1', drainPerBlock: true, fastScanners: true, freeScanner: 'until-enough', skipOnFailure: true, capture: true },
  kcompactd: true, proactiveCompaction: true, slowpath: '6.1', thpDefragDefault: 'madvise', initOnAlloc: true,
  balloon: { features: [MUST_TELL_HOST, STATS_VQ, DEFLATE_ON_OOM, FREE_PAGE_HINT, PAGE_POISON, REPORTING], pageType: 'offline', counters: 'balloon' },
  vmstat: '6.1',
};

export const KERNEL_3_6: KernelProfile = {
  version: '3.6', fallback: 'largest-claim-half', allocNofragment: false, watermarkBoost: false, reserve: 'migrate-reserve',
  watermarkCheck: 'order-halving', watermarkGap: 'quarter-half', watermarkShare: 'present', minFreeKbytesMax: 65536,
  pcpHighOrders: false, pcpHigh: 'six-batches', pcpBatchMaxBytes: 512 << 10, mergeTypeCheck: false,
  compaction: { skipHints: false, freeScannerWrap: true, asyncSource: 'movable-blocks', targetFreePageblocks: true, rules: '3.6', drainPerBlock: false, fastScanners: false, freeScanner: 'whole-blocks', skipOnFailure: false, capture: false },
  kcompactd: false, proactiveCompaction: false, slowpath: '3.6', thpDefragDefault: 'always', initOnAlloc: false,
  balloon: { features: [MUST_TELL_HOST, STATS_VQ], pageType: 'none', counters: 'compact_balloon' },
  vmstat: '3.6',
};

export function kernelProfile(v: KernelVersion): KernelProfile {
  return v === '3.6' ? KERNEL_3_6 : KERNEL_6_1;
}

/** One mechanism that differs between eras: what it is, its value in each, and where each was read. */
export type KernelMechanism = {
  /** The profile field (dotted for nested ones). */
  readonly field: string;
  readonly what: string;
  /** The kernel code each value was read from. */
  readonly source: { readonly '3.6': string; readonly '6.1': string };
  /** The counter (result document kernel.activity) that says whether the 6.1 side acted in a run, if any. */
  readonly activity?: keyof EraActivity;
};

/**
 * What era-specific mechanisms did in a run (the result document's kernel.activity):
 * how often each fired, so that --era-diff says which differences were active.
 */
export type EraActivity = {
  /** Fallbacks that stole a block (mm_page_alloc_extfrag events). */
  fallbacks: number;
  /** Fallbacks that moved the free pages of a whole pageblock. */
  blockMoves: number;
  /** Pageblocks whose type a fallback changed (claimed). */
  blockClaims: number;
  /** get_page_from_freelist passes that failed with ALLOC_NOFRAGMENT and were repeated without it. */
  nofragmentRetries: number;
  /** boost_watermark calls that raised a zone's boost. */
  watermarkBoosts: number;
  /** Allocations of orders 1..3 and 9 served from a pcp list. */
  pcpHighOrderAllocs: number;
  /** Blocks taken from MIGRATE_RESERVE (3.6 __rmqueue's retry) or HIGHATOMIC. */
  reserveAllocs: number;
  /** Pageblocks the compaction scanners passed over for a skip hint. */
  skipHintSkips: number;
  /** kcompactd runs (woken by kswapd) and proactive compaction runs. */
  kcompactdRuns: number;
  proactiveRuns: number;
  /** compact_pgdat runs by kswapd (3.6). */
  kswapdCompactions: number;
  /** Free scanner restarts from the zone end (3.6 wrap). */
  freeScannerWraps: number;
};

export function createEraActivity(): EraActivity {
  return {
    fallbacks: 0, blockMoves: 0, blockClaims: 0, nofragmentRetries: 0, watermarkBoosts: 0, pcpHighOrderAllocs: 0, reserveAllocs: 0,
    skipHintSkips: 0, kcompactdRuns: 0, proactiveRuns: 0, kswapdCompactions: 0, freeScannerWraps: 0,
  };
}

export const KERNEL_MECHANISMS: readonly KernelMechanism[] = [
  { field: 'fallback', what: 'How a fallback steals: 3.6 takes the largest block of another type and moves the whole pageblock for orders >= pageblock_order/2 or reclaimable requests, claiming it when it moved >= 256 free pages; 6.1 also lets unmovable requests steal, counts compatible in-use pages toward the half, and a movable request that may not steal splits the smallest block', source: { '3.6': 'mm/page_alloc.c __rmqueue_fallback', '6.1': 'mm/page_alloc.c __rmqueue_fallback, can_steal_fallback, steal_suitable_fallback' }, activity: 'blockClaims' },
  { field: 'allocNofragment', what: 'ALLOC_NOFRAGMENT: the first pass refuses fallbacks below pageblock order when the preferred zone is Normal', source: { '3.6': 'absent (5.0)', '6.1': 'mm/page_alloc.c alloc_flags_nofragment, get_page_from_freelist' }, activity: 'nofragmentRetries' },
  { field: 'watermarkBoost', what: 'Watermark boosting: a fragmenting fallback raises the zone watermarks by a pageblock and wakes kswapd (then kcompactd)', source: { '3.6': 'absent (5.0)', '6.1': 'mm/page_alloc.c boost_watermark, vm.watermark_boost_factor 15000' }, activity: 'watermarkBoosts' },
  { field: 'reserve', what: 'Reserve pageblocks: 3.6 keeps min(2, min watermark in pageblocks) MIGRATE_RESERVE blocks per zone, used only when every fallback failed; 6.1 reserves HIGHATOMIC blocks for high-order atomic requests', source: { '3.6': 'mm/page_alloc.c setup_zone_migrate_reserve, __rmqueue', '6.1': 'mm/page_alloc.c reserve_highatomic_pageblock' }, activity: 'reserveAllocs' },
  { field: 'watermarkCheck', what: 'High-order watermark test: 3.6 subtracts each lower order\'s free pages and halves min per order; 6.1 asks for one free block of the order in a usable type', source: { '3.6': 'mm/page_alloc.c __zone_watermark_ok', '6.1': 'mm/page_alloc.c __zone_watermark_ok' } },
  { field: 'watermarkGap', what: 'Watermark gaps: 3.6 low = min + min/4, high = min + min/2; 6.1 adds max(min/4, managed x watermark_scale_factor/10000)', source: { '3.6': 'mm/page_alloc.c __setup_per_zone_wmarks', '6.1': 'mm/page_alloc.c __setup_per_zone_wmarks' } },
  { field: 'watermarkShare', what: 'min_free_kbytes split across zones by present pages (3.6) or managed pages (6.1)', source: { '3.6': 'mm/page_alloc.c __setup_per_zone_wmarks', '6.1': 'mm/page_alloc.c __setup_per_zone_wmarks' } },
  { field: 'minFreeKbytesMax', what: 'Upper clamp of the computed min_free_kbytes', source: { '3.6': 'mm/page_alloc.c init_per_zone_wmark_min (65536)', '6.1': 'mm/page_alloc.c calculate_min_free_kbytes (262144)' } },
  { field: 'pcpHighOrders', what: 'Per-cpu lists for orders 1-3 and the THP order, with free_factor batching', source: { '3.6': 'mm/page_alloc.c buffered_rmqueue (order 0 only)', '6.1': 'mm/page_alloc.c pcp_allowed_order, nr_pcp_free' }, activity: 'pcpHighOrderAllocs' },
  { field: 'pcpHigh', what: 'pcp high mark: 6 x batch (3.6, batch capped at 512 KiB) or the low watermark shared by the cpus (6.1, batch capped at 1 MiB)', source: { '3.6': 'mm/page_alloc.c setup_pageset, zone_batchsize', '6.1': 'mm/page_alloc.c zone_highsize, zone_batchsize' } },
  { field: 'mergeTypeCheck', what: 'Buddies of pageblock order merge only between mergeable types', source: { '3.6': 'absent: mm/page_alloc.c __free_one_page merges any buddy', '6.1': 'mm/page_alloc.c __free_one_page, migratetype_is_mergeable' } },
  { field: 'compaction.skipHints', what: 'Pageblock skip hints and cached scanner positions: a block is hinted when a scan from its start finds nothing, when its first page is the first LRU page isolated (test_and_set_skip) or when it was rescanned; the cached migrate pfn moves past such blocks; met scanners reset the positions; kswapd\'s reset clears only hints a sample contradicts and sets compact_init_*_pfn', source: { '3.6': 'absent (3.7): mm/compaction.c compact_zone starts the migrate scanner at the zone start', '6.1': 'mm/compaction.c isolation_suitable, test_and_set_skip, update_cached_migrate, update_pageblock_skip, __reset_isolation_suitable, compact_zone (rescan)' }, activity: 'skipHintSkips' },
  { field: 'compaction.freeScannerWrap', what: 'The free scanner resumes at compact_cached_free_pfn and restarts once from the zone end when the scanners meet', source: { '3.6': 'mm/compaction.c compact_finished, isolate_freepages', '6.1': 'mm/compaction.c: scanners meet -> COMPACT_COMPLETE' }, activity: 'freeScannerWraps' },
  { field: 'compaction.asyncSource', what: 'Which source pageblocks async compaction scans', source: { '3.6': 'mm/compaction.c isolate_migratepages_range, migrate_async_suitable', '6.1': 'mm/compaction.c suitable_migration_source' } },
  { field: 'compaction.targetFreePageblocks', what: 'Whether a free block of pageblock order is a migration target', source: { '3.6': 'mm/compaction.c suitable_migration_target (yes)', '6.1': 'mm/compaction.c suitable_migration_target (no)' } },
  { field: 'compaction.rules', what: 'compaction_suitable (fragindex at every order, SKIPPED) and compact_finished (3.6: low watermark + free block of the order in the request\'s type, or any of pageblock order; 6.1: a free block of the request\'s type or one a fallback may steal, looked for only at pageblock boundaries)', source: { '3.6': 'mm/compaction.c compaction_suitable, compact_finished', '6.1': 'mm/compaction.c compaction_suitable, __compact_finished' } },
  { field: 'compaction.drainPerBlock', what: 'Drain the cpu\'s pcp lists when the migrate scanner leaves a cc->order block', source: { '3.6': 'absent: mm/page_alloc.c __alloc_pages_direct_compact drains after the run', '6.1': 'mm/compaction.c compact_zone (last_migrated_pfn)' } },
  { field: 'compaction.fastScanners', what: 'The fast scanners. fast_isolate_freepages: before the linear free scan, take a target from the tail of the Movable free lists of the orders below the request, one in the top quarter of the space between the scanners (else the highest in the top half), with a scan limit that halves with each failure (fast_search_fail) and lists rotated past what was seen; a starting scan that finds nothing jumps the free scanner to the highest block seen. fast_find_migrateblock: for costly orders at a pageblock start, the migrate scanner\'s next block from the heads of the Movable lists of orders 3 to order - 1 below the first half (later eighth) of the space, hinted as it is found (and so, in 6.1, passed over by isolate_migratepages_block); a failed search resumes linearly at the lowest find', source: { '3.6': 'absent (5.1): mm/compaction.c isolate_freepages and isolate_migratepages scan linearly', '6.1': 'mm/compaction.c fast_isolate_freepages, freelist_scan_limit, move_freelist_head, next_search_order, fast_isolate_around, fast_find_migrateblock, move_freelist_tail, update_fast_start_pfn, reinit_migrate_pfn, isolate_migratepages' } },
  { field: 'compaction.freeScanner', what: 'The free scanner: 3.6 isolates every free page of each suitable pageblock it visits; 6.1 stops inside a block once it has as many targets as pages to migrate and resumes there, samples with a stride of 32 in async mode (1 after a block that gave pages), hints every block it scanned through, lets the cached free pfn follow (down with the hints, up to the highest target given back), and ends a run whose scanner the watermark stopped short (COMPACT_CONTENDED)', source: { '3.6': 'mm/compaction.c isolate_freepages, isolate_freepages_block', '6.1': 'mm/compaction.c isolate_freepages, isolate_freepages_block (stride), update_pageblock_skip, compact_zone (-ENOMEM, release_freepages)' } },
  { field: 'compaction.skipOnFailure', what: 'Async direct compaction: a page that cannot be isolated ends the cc->order-aligned block (its isolated pages are put back, the scan resumes at the next block); a page that fails to migrate skips the rest of its block', source: { '3.6': 'absent: mm/compaction.c isolate_migratepages_range scans on past failures', '6.1': 'mm/compaction.c isolate_migratepages_block (skip_on_failure, next_skip_pfn), compact_zone' } },
  { field: 'compaction.capture', what: 'compaction_capture: while a task compacts directly, a block of its order freed (merged) in its zone goes to it, not to the free lists; the run stops and the page is taken without a watermark check', source: { '3.6': 'absent: mm/page_alloc.c __alloc_pages_direct_compact drains the pcp lists and calls get_page_from_freelist', '6.1': 'mm/page_alloc.c compaction_capture, __free_one_page, __alloc_pages_direct_compact; mm/compaction.c compact_zone_order' } },
  { field: 'kcompactd', what: 'Background compaction: kcompactd woken by kswapd (6.1) or kswapd\'s own async compact_pgdat after balancing (3.6)', source: { '3.6': 'mm/vmscan.c balance_pgdat, mm/compaction.c compact_pgdat', '6.1': 'mm/compaction.c kcompactd, mm/vmscan.c wakeup_kcompactd' }, activity: 'kcompactdRuns' },
  { field: 'proactiveCompaction', what: 'Proactive compaction by fragmentation score (vm.compaction_proactiveness 20)', source: { '3.6': 'absent (5.9)', '6.1': 'mm/compaction.c proactive_compact_node' }, activity: 'proactiveRuns' },
  { field: 'slowpath', what: 'The slow path: 3.6 async compaction, direct reclaim, then (costly orders do not retry) one sync-light compaction; 6.1 priorities, should_compact_retry, should_reclaim_retry', source: { '3.6': 'mm/page_alloc.c __alloc_pages_slowpath, should_alloc_retry, __alloc_pages_direct_compact', '6.1': 'mm/page_alloc.c __alloc_pages_slowpath' } },
  { field: 'thpDefragDefault', what: 'transparent_hugepage/defrag at boot: always (every THP fault compacts and reclaims directly) or madvise', source: { '3.6': 'mm/huge_memory.c transparent_hugepage_flags (TRANSPARENT_HUGEPAGE_DEFRAG_FLAG)', '6.1': 'mm/huge_memory.c transparent_hugepage_flags (DEFRAG_REQ_MADV)' } },
  { field: 'initOnAlloc', what: 'init_on_alloc (zeroing every allocation)', source: { '3.6': 'absent (5.3)', '6.1': 'mm/page_alloc.c init_on_alloc' } },
  { field: 'balloon.features', what: 'virtio_balloon features the driver knows: 3.6 MUST_TELL_HOST and STATS_VQ only', source: { '3.6': 'drivers/virtio/virtio_balloon.c features[]', '6.1': 'drivers/virtio/virtio_balloon.c features[]' } },
  { field: 'balloon.pageType', what: 'The page flag page-types shows for balloon pages (PG_balloon arrived in 4.0, PG_offline in 4.20)', source: { '3.6': 'none: v10 marks balloon pages by page->mapping', '6.1': 'include/linux/page-flags.h PageOffline' } },
  { field: 'balloon.counters', what: 'Balloon counters in /proc/vmstat', source: { '3.6': 'the v10 series 5/5 (compact_balloon_isolated/migrated/released/returned; never merged)', '6.1': 'mm/vmstat.c balloon_inflate, balloon_deflate, balloon_migrate (3.18)' } },
  { field: 'vmstat', what: '/proc/vmstat\'s counter set', source: { '3.6': 'mm/vmstat.c vmstat_text[] of 3.6', '6.1': 'mm/vmstat.c vmstat_text[] of 6.1' } },
];

/** The value of a profile field by its dotted name (for --era-diff). */
export function profileValue(p: KernelProfile, field: string): unknown {
  let v: unknown = p;
  for (const part of field.split('.')) v = (v as Record<string, unknown>)[part];
  return v;
}

/** The mechanisms whose values differ between two profiles. */
export function profileDifferences(a: KernelProfile, b: KernelProfile): KernelMechanism[] {
  return KERNEL_MECHANISMS.filter((m) => JSON.stringify(profileValue(a, m.field)) !== JSON.stringify(profileValue(b, m.field)));
}
