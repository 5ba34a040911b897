/**
 * What ChromeOS's two balloon policies share: the memory margins Chrome's resourced
 * hands concierge, the "available memory" resourced computes for the host, and the
 * parse of a /proc/zoneinfo (concierge balloon_policy.cc ParseZoneInfoStats).
 * Sources: `ArthurSonzogni/chromiumos-platform2` (a mirror of ChromiumOS platform2):
 * vm_tools/concierge/balloon_policy.cc@1614f780, balloon_policy.h@156a8342,
 * service.cc (RunBalloonPolicy, FinishBalloonPolicy; the 1 s balloon_resizing_timer_),
 * resourced/src/memory.rs (DEFAULT_CRITICAL_MARGIN_BPS, DEFAULT_MODERATE_MARGIN_BPS,
 * DEFAULT_RAM_SWAP_WEIGHT, calculate_available_memory_kb).
 */
import type { HostMeminfo } from '../host.js';
import type { PolicyVm } from './policy.js';
import { qmpBalloonActual, qmpGuestStats, stat } from './policy.js';

export const KiB = 1024;
export const MiB = 1024 * 1024;
const PAGE_BYTES = 4096;

/** resourced memory.rs: critical margin 5.2 % of total memory, moderate 40 % (basis points). */
export const DEFAULT_CRITICAL_MARGIN_BPS = 520;
export const DEFAULT_MODERATE_MARGIN_BPS = 4000;
/** resourced memory.rs: a quarter of swappable memory counts as available. */
export const DEFAULT_RAM_SWAP_WEIGHT = 4;
/** concierge service.cc: balloon_resizing_timer_ runs RunBalloonPolicy every second. */
export const CONCIERGE_BALLOON_TIMER_S = 1;

export type MemoryMargins = { critical: number; moderate: number };

/** The margins resourced derives from the host's total memory (bytes). */
export function defaultMargins(memTotal: number): MemoryMargins {
  return { critical: Math.floor((memTotal * DEFAULT_CRITICAL_MARGIN_BPS) / 10000), moderate: Math.floor((memTotal * DEFAULT_MODERATE_MARGIN_BPS) / 10000) };
}

/**
 * @chromeos resourced/src/memory.rs calculate_available_memory_kb
 * free - reserved_free + (file - dirty - min_filelist) + min(anon, swap_free) / ram_swap_weight,
 * with reserved_free the host's totalreserve; the model's host has no page cache.
 */
export function hostAvailable(mi: HostMeminfo): number {
  const freeComponent = Math.max(0, mi.MemFree - mi.totalreserve);
  const swappable = Math.min(mi.AnonPages, mi.SwapFree);
  return freeComponent + Math.floor(swappable / DEFAULT_RAM_SWAP_WEIGHT);
}

export type ZoneInfoStats = { sumLow: number; totalreserve: number };

/**
 * @chromeos vm_tools/concierge/balloon_policy.cc ParseZoneInfoStats
 * sum_low: every zone's low watermark; totalreserve: per zone its high watermark raised
 * by half (watermark boost) plus its largest lowmem protection; bytes. Null when the
 * text has no non-zero low or high watermark.
 */
export function parseZoneInfoStats(zoneinfo: string): ZoneInfoStats | null {
  let sumLow = 0, totalreserve = 0, high = -1;
  for (const raw of zoneinfo.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith('low ')) {
      const cols = line.split(/\s+/);
      if (cols.length !== 2) return null;
      sumLow += Number(cols[1]) * PAGE_BYTES;
    } else if (line.startsWith('high ')) {
      if (high !== -1) return null;
      const cols = line.split(/\s+/);
      if (cols.length !== 2) return null;
      high = Number(cols[1]);
    } else if (line.startsWith('protection: (')) {
      if (high === -1) return null;
      let maxProtection = 0;
      for (const c of line.slice('protection: ('.length).replace(')', '').split(',')) {
        const p = Number(c.trim());
        if (!Number.isFinite(p)) return null;
        if (p > maxProtection) maxProtection = p;
      }
      high = high + (high >> 1);
      totalreserve += (maxProtection + high) * PAGE_BYTES;
      high = -1;
    }
  }
  if (high !== -1 || sumLow === 0 || totalreserve === 0) return null;
  return { sumLow, totalreserve };
}

/**
 * concierge's BalloonStats from a QEMU VM: balloon_actual is the balloon's size
 * (crosvm reports it so), here RAM minus query-balloon's logical size; the other fields
 * are the guest's stats. crosvm's shared_memory and unevictable_memory tags do not
 * exist on QEMU's device: 0. Null without stats or a balloon.
 */
export type BalloonStats = { balloonActual: number; freeMemory: number; diskCaches: number; totalMemory: number; sharedMemory: number; unevictableMemory: number };

export function balloonStats(vm: PolicyVm): BalloonStats | null {
  const actual = qmpBalloonActual(vm);
  const s = qmpGuestStats(vm);
  const free = stat(s, 'stat-free-memory'), caches = stat(s, 'stat-disk-caches'), total = stat(s, 'stat-total-memory');
  if (actual === null || free === null || caches === null || total === null) return null;
  return { balloonActual: vm.ramSize - actual, freeMemory: free, diskCaches: caches, totalMemory: total, sharedMemory: 0, unevictableMemory: 0 };
}
