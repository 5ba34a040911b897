/**
 * ChromeOS concierge's LimitCacheBalloonPolicy (vm_tools/concierge/balloon_policy.cc
 * LimitCacheBalloonPolicy::ComputeBalloonDeltaImpl, MinFree, MaxFree), with ARCVM's
 * parameters (arc_vm.cc kArcVmLimitCachePolicyParams: reclaim and critical target
 * cache 322 560 KiB, moderate 0), run every second for every VM as
 * Service::FinishBalloonPolicy does: target = max(0, balloon_actual + delta), set when
 * it differs. Balloon sizes are the balloon's (crosvm's unit); QEMU's `balloon` takes
 * the logical size, RAM minus that.
 *
 * The guest should keep between MinFree (its zones' low watermarks - 1 MiB) and
 * MaxFree (totalreserve + LMKD's largest minfree, 322 560 KiB) free. It is held at
 * MaxFree unless the host is near reclaiming (host free within the guest's low
 * watermark of the host's) or Chrome is near its critical or moderate margins, and the
 * guest has more page cache than that level's target: then the guest's free target
 * drops and the balloon takes at most the cache above the target. Small changes are
 * skipped while the guest is not low (fewer resizes, fewer VM exits).
 *
 * Not modelled: DeflateBalloonToSaveProcess (Android's LMKD asking concierge to deflate
 * before it kills an app; the guests here run no LMKD), game mode.
 */
import { definePolicy, type PolicyDecision, type PolicyHost, type PolicyVm } from './policy.js';
import { type BalloonStats, type MemoryMargins, type ZoneInfoStats, KiB, MiB, CONCIERGE_BALLOON_TIMER_S, balloonStats, defaultMargins, hostAvailable, parseZoneInfoStats } from './chromeos_common.js';

/** LMKD's minfree level for killing the lowest priority apps (balloon_policy.cc MAX_OOM_MIN_FREE). */
export const MAX_OOM_MIN_FREE = 322_560 * KiB;

export type LimitCacheParams = { reclaimTargetCache: number; criticalTargetCache: number; moderateTargetCache: number };
/** arc_vm.cc kArcVmLimitCachePolicyParams. */
export const ARCVM_LIMIT_CACHE_PARAMS: LimitCacheParams = { reclaimTargetCache: 322_560 * KiB, criticalTargetCache: 322_560 * KiB, moderateTargetCache: 0 };

export type LimitCacheState = { margins: MemoryMargins; hostLwm: number; guest: ZoneInfoStats; params: LimitCacheParams };

export function limitCacheMinFree(s: LimitCacheState): number {
  return s.guest.sumLow - MiB;
}
export function limitCacheMaxFree(s: LimitCacheState): number {
  return s.guest.totalreserve + MAX_OOM_MIN_FREE;
}

/** @chromeos balloon_policy.cc LimitCacheBalloonPolicy::ComputeBalloonDeltaImpl: bytes to inflate (negative: deflate). */
export function limitCacheDelta(s: LimitCacheState, hostFree: number, stats: BalloonStats, hostAvail: number): number {
  const maxFree = limitCacheMaxFree(s), minFree = limitCacheMinFree(s);
  const guestFree = stats.freeMemory;
  const guestUnreclaimable = stats.sharedMemory + stats.unevictableMemory;
  const guestCache = Math.max(stats.diskCaches - guestUnreclaimable, 0);
  const guestLwm = s.guest.sumLow;
  let targetFree = maxFree, targetCache = guestCache;
  const p = s.params;
  if (p.reclaimTargetCache > 0) {
    const reclaimTargetFree = Math.max(guestLwm + hostFree - s.hostLwm, minFree);
    if (reclaimTargetFree < maxFree && guestCache > p.reclaimTargetCache) {
      targetFree = Math.min(targetFree, reclaimTargetFree);
      targetCache = Math.min(targetCache, p.reclaimTargetCache);
    }
  }
  if (p.criticalTargetCache > 0) {
    const criticalTargetFree = Math.max(guestLwm + hostAvail - s.margins.critical, minFree);
    if (criticalTargetFree < maxFree && guestCache > p.criticalTargetCache) {
      targetFree = Math.min(targetFree, criticalTargetFree);
      targetCache = Math.min(targetCache, p.criticalTargetCache);
    }
  }
  if (p.moderateTargetCache > 0) {
    const moderateTargetFree = Math.max(guestLwm + hostAvail - s.margins.moderate, minFree);
    if (moderateTargetFree < maxFree && guestCache > p.moderateTargetCache) {
      targetFree = Math.min(targetFree, moderateTargetFree);
      targetCache = Math.min(targetCache, p.moderateTargetCache);
    }
  }
  let delta = guestFree - targetFree;
  // don't inflate more than the cache we want reclaimed (no overshoot)
  if (targetFree !== maxFree) delta = Math.min(delta, guestCache - targetCache);
  // fewer resizes: skip small changes while neither the target nor the guest is low
  const targetNotLow = targetFree === maxFree;
  const guestNotLow = guestFree >= minFree + Math.trunc((maxFree - minFree) / 4) * 3;
  const deltaNotBig = Math.trunc(guestFree / maxFree) === Math.trunc((guestFree + delta) / maxFree);
  if (targetNotLow && guestNotLow && deltaNotBig) return 0;
  return delta;
}

export const chromeosLimitCachePolicy = definePolicy<Partial<LimitCacheParams>>({
  name: 'chromeos-limit-cache',
  doc: 'ChromeOS concierge LimitCacheBalloonPolicy (ARCVM): guest free held at MaxFree, page cache squeezed when the host nears reclaim; every 1 s',
  create: (options) => {
    const params = { ...ARCVM_LIMIT_CACHE_PARAMS, ...options };
    // per VM, built on first use (concierge: GetBalloonPolicy, once the guest's zoneinfo reads)
    const states = new Map<number, LimitCacheState>();
    return {
      name: 'chromeos-limit-cache', intervalNs: CONCIERGE_BALLOON_TIMER_S * 1e9, statsPollingInterval: CONCIERGE_BALLOON_TIMER_S,
      run: (host: PolicyHost, vms: readonly PolicyVm[]): PolicyDecision[] => {
        const mi = host.meminfo();
        const margins = defaultMargins(mi.MemTotal);
        const avail = hostAvailable(mi);
        const out: PolicyDecision[] = [];
        vms.forEach((vm, i) => {
          if (!vm.running()) return;
          let st = states.get(i);
          if (st === undefined) {
            const z = parseZoneInfoStats(vm.guestZoneinfo());
            if (z === null) return;
            st = { margins, hostLwm: mi.zoneLowSum, guest: z, params };
            states.set(i, st);
          }
          const stats = balloonStats(vm);
          if (stats === null) return;
          const delta = limitCacheDelta(st, mi.MemFree, stats, avail);
          const target = Math.max(0, stats.balloonActual + delta);
          if (target !== stats.balloonActual) out.push({ index: i, value: Math.max(4096, vm.ramSize - target) });
        });
        return out;
      },
    };
  },
});
