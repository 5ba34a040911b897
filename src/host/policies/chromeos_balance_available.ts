/**
 * ChromeOS concierge's BalanceAvailableBalloonPolicy
 * (vm_tools/concierge/balloon_policy.cc BalanceAvailableBalloonPolicy::ComputeBalloonDelta),
 * the policy of VMs other than ARCVM (vm_base_impl.cc GetBalloonPolicy: critical host
 * available = Chrome's critical margin, bias 0), run every second as
 * Service::FinishBalloonPolicy does. Balloon sizes are the balloon's; QEMU's `balloon`
 * takes RAM minus that.
 *
 * The guest's available memory (free + page cache) above its critical level (400 MiB,
 * lowered to what the guest was seen to survive with) and the host's available above
 * Chrome's critical margin are balanced: the balloon moves half the difference,
 * capped so neither side is pushed more than 10 MiB past its critical level, and only
 * when that is more than 1 % of either side's margin (or a side is within 1 MiB of it).
 *
 * C++ leaves max_balloon_actual_, prev_guest_available_ and prev_balloon_full_percent_
 * uninitialised; here they start at 0.
 */
import { definePolicy, type PolicyDecision, type PolicyHost, type PolicyVm } from './policy.js';
import { type BalloonStats, MiB, CONCIERGE_BALLOON_TIMER_S, balloonStats, defaultMargins, hostAvailable } from './chromeos_common.js';

/** balloon_policy.cc: MAX_CRITICAL_DELTA, and critical_guest_available_'s start. */
export const MAX_CRITICAL_DELTA = 10 * MiB;
export const CRITICAL_GUEST_AVAILABLE = 400 * MiB;

export type BalanceAvailableState = {
  criticalHostAvailable: number;
  guestAvailableBias: number;
  maxBalloonActual: number;
  criticalGuestAvailable: number;
  prevGuestAvailable: number;
  prevBalloonFullPercent: number;
};

export function createBalanceAvailableState(criticalHostAvailable: number, guestAvailableBias = 0): BalanceAvailableState {
  return { criticalHostAvailable, guestAvailableBias, maxBalloonActual: 0, criticalGuestAvailable: CRITICAL_GUEST_AVAILABLE, prevGuestAvailable: 0, prevBalloonFullPercent: 0 };
}

const trunc = Math.trunc;

/** @chromeos balloon_policy.cc BalanceAvailableBalloonPolicy::ComputeBalloonDelta: bytes to inflate (negative: deflate). */
export function balanceAvailableDelta(s: BalanceAvailableState, stats: BalloonStats, hostAvail: number): number {
  const balloonActual = stats.balloonActual;
  const guestAvailable = stats.freeMemory + stats.diskCaches;
  if (s.maxBalloonActual === 0) s.maxBalloonActual = trunc((stats.totalMemory * 3) / 4);
  s.maxBalloonActual = Math.max(s.maxBalloonActual, balloonActual);
  const balloonFullPercent = s.maxBalloonActual > 0 ? trunc((balloonActual * 100) / s.maxBalloonActual) : 0;
  if (guestAvailable < s.criticalGuestAvailable && balloonFullPercent < 95) {
    if (s.prevGuestAvailable < s.criticalGuestAvailable && s.prevBalloonFullPercent < 95) s.criticalGuestAvailable = s.prevGuestAvailable;
  }
  const bias = trunc((s.guestAvailableBias * balloonFullPercent) / 100);
  const guestAboveCritical = guestAvailable - s.criticalGuestAvailable - bias;
  const hostAboveCritical = hostAvail - s.criticalHostAvailable;
  // the midpoint: inflating takes from the guest what it gives the host
  const balloonDelta = trunc((guestAboveCritical - hostAboveCritical) / 2);
  const lo = -(hostAboveCritical + MAX_CRITICAL_DELTA), hi = guestAvailable - s.criticalGuestAvailable + MAX_CRITICAL_DELTA;
  const capped = Math.min(Math.max(balloonDelta, lo), hi);
  s.prevGuestAvailable = guestAvailable;
  s.prevBalloonFullPercent = balloonFullPercent;
  const abs = Math.abs(balloonDelta);
  if (guestAboveCritical < MiB || hostAboveCritical < MiB || trunc((abs * 100) / guestAboveCritical) > 1 || trunc((abs * 100) / hostAboveCritical) > 1) {
    return Math.max(capped, -balloonActual);
  }
  return 0;
}

export const chromeosBalanceAvailablePolicy = definePolicy<{ guestAvailableBias?: number }>({
  name: 'chromeos-balance-available',
  doc: 'ChromeOS concierge BalanceAvailableBalloonPolicy: balance guest and host available memory above their critical levels; every 1 s',
  create: (options) => {
    const states = new Map<number, BalanceAvailableState>();
    return {
      name: 'chromeos-balance-available', intervalNs: CONCIERGE_BALLOON_TIMER_S * 1e9, statsPollingInterval: CONCIERGE_BALLOON_TIMER_S,
      run: (host: PolicyHost, vms: readonly PolicyVm[]): PolicyDecision[] => {
        const mi = host.meminfo();
        const avail = hostAvailable(mi);
        const critical = defaultMargins(mi.MemTotal).critical;
        const out: PolicyDecision[] = [];
        vms.forEach((vm, i) => {
          if (!vm.running()) return;
          const stats = balloonStats(vm);
          if (stats === null) return;
          let st = states.get(i);
          if (st === undefined) { st = createBalanceAvailableState(critical, options.guestAvailableBias ?? 0); states.set(i, st); }
          const delta = balanceAvailableDelta(st, stats, avail);
          const target = Math.max(0, stats.balloonActual + delta);
          if (target !== stats.balloonActual) out.push({ index: i, value: Math.max(4096, vm.ramSize - target) });
        });
        return out;
      },
    };
  },
});
