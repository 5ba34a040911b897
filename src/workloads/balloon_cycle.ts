/**
 * `balloon-cycle`: the host moves the balloon on a schedule, as in the 2012 balloon
 * compaction evaluation ("the balloon inflated and deflated 1 GiB in 256 MiB steps
 * every minute"). Read here as: every `period` the target moves one `step`, first
 * growing the balloon to `size`, then shrinking it to nothing, and again, until
 * `until`. Targets are set as QEMU's `balloon` command does (the guest's logical size).
 */
import { type Sim, simAfter } from '../sim/clock.js';
import { type BalloonDevice, virtioBalloonToTarget } from '../host/virtio_balloon.js';

/** Starts the cycle now; returns the number of steps in one full cycle. */
export function startBalloonCycle(dev: BalloonDevice, sim: Sim, size: number, step: number, period: number, until: number): number {
  if (!(step > 0) || !(size >= step)) throw new RangeError('balloon_cycle: step must be positive and no larger than size');
  if (!(period > 0)) throw new RangeError('balloon_cycle: period must be positive');
  const up = Math.ceil(size / step);
  let k = 0;
  const move = () => {
    // position in the cycle: 1..up inflating, then up-1 .. 0 deflating
    const phase = k % (2 * up);
    const level = phase < up ? phase + 1 : 2 * up - phase - 1;
    virtioBalloonToTarget(dev, Math.max(4096, dev.ramSize - Math.min(size, level * step)));
    k++;
    if (sim.now + period <= until) simAfter(sim, period, move);
  };
  move();
  return 2 * up;
}
