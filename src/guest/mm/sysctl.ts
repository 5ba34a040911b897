/**
 * The memory-management tunables user space changes at run time: /proc/sys/vm/* and
 * /sys/kernel/mm/transparent_hugepage/*. The kernel keeps each as a global
 * (sysctl_min_free_kbytes, watermark_scale_factor, vm_swappiness,
 * transparent_hugepage_flags ...); the model keeps them in one struct per guest,
 * reached from its node (PgData.sysctl). Writing one does what the kernel's handler
 * does only where the handler says so: min_free_kbytes and watermark_scale_factor
 * need setupPerZoneWmarks afterwards (min_free_kbytes_sysctl_handler). The handlers
 * the `sysctl` action runs are where the kernel has them: minFreeKbytesSysctlHandler
 * (page_alloc.ts), enabledStore/defragStore (huge_memory.ts),
 * compactionProactivenessSysctlHandler (compaction.ts), hugetlbSysctlHandler
 * (hugetlb.ts).
 */

/** transparent_hugepage/enabled: always, madvise (only MADV_HUGEPAGE memory), never. */
export type ThpEnabled = 'always' | 'madvise' | 'never';
/** transparent_hugepage/defrag: how hard a huge page fault tries (vma_thp_gfp_mask). */
export type ThpDefrag = 'always' | 'defer' | 'defer+madvise' | 'madvise' | 'never';
export const THP_ENABLED_MODES: readonly ThpEnabled[] = ['always', 'madvise', 'never'];
export const THP_DEFRAG_MODES: readonly ThpDefrag[] = ['always', 'defer', 'defer+madvise', 'madvise', 'never'];

export type VmSysctl = {
  /** vm.min_free_kbytes in effect (boot computes it unless the kernel command line set it). */
  minFreeKbytes: number;
  /** user_min_free_kbytes: the last value written to vm.min_free_kbytes, -1 if none (the kernel keeps a computed value from then on only if it is larger). */
  userMinFreeKbytes: number;
  /** vm.watermark_scale_factor (default 10 = 0.1% of the zone between watermarks). */
  watermarkScaleFactor: number;
  /** vm.watermark_boost_factor (default 15000 = 150% of the high watermark). */
  watermarkBoostFactor: number;
  /** vm.lowmem_reserve_ratio, per zone (DMA, DMA32, Normal, Movable, Device). */
  lowmemReserveRatio: number[];
  /** vm.swappiness (0-200, default 60). */
  swappiness: number;
  /** vm.compaction_proactiveness (0-100, default 20; 0 turns proactive compaction off). */
  compactionProactiveness: number;
  /** vm.vfs_cache_pressure (default 100): the superblock shrinker counts dentries and inodes times this / 100 (vfs_pressure_ratio). */
  vfsCachePressure: number;
  /** /sys/kernel/mm/transparent_hugepage/{enabled,defrag}. */
  thp: { enabled: ThpEnabled; defrag: ThpDefrag };
  /** vm.dirty_ratio, vm.dirty_background_ratio (% of dirtyable memory), vm.dirty_expire_centisecs, vm.dirty_writeback_centisecs. */
  dirtyRatio: number;
  dirtyBackgroundRatio: number;
  dirtyExpireCentisecs: number;
  dirtyWritebackCentisecs: number;
};

/** The tunables a Debian 6.1 guest boots with (min_free_kbytes is set by boot). */
export function defaultVmSysctl(): VmSysctl {
  return {
    minFreeKbytes: 0, userMinFreeKbytes: -1, watermarkScaleFactor: 10, watermarkBoostFactor: 15000, lowmemReserveRatio: [256, 256, 32, 0, 0],
    swappiness: 60, compactionProactiveness: 20, vfsCachePressure: 100, thp: { enabled: 'always', defrag: 'madvise' },
    dirtyRatio: 20, dirtyBackgroundRatio: 10, dirtyExpireCentisecs: 3000, dirtyWritebackCentisecs: 500,
  };
}
