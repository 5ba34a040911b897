/**
 * `idle`: a booted guest with light daemon activity (systemd-journald, cron, sshd,
 * the kernel's own threads): every second a few slab pages and a little anonymous
 * memory come and go, and a few KiB of log are written. The amounts are small on
 * purpose: an idle guest's memory barely changes, which is what makes its migration
 * and its balloon behaviour easy to read.
 */
import { simAfter } from '../sim/clock.js';
import { type Rng, rngBelow } from '../sim/rng.js';
import type { Guest } from '../guest/guest.js';
import { NO_PAGE, Owner } from '../guest/mm/memmap.js';
import { allocPages, freePages } from '../guest/mm/page_alloc.js';
import { GFP_KERNEL, __GFP_RECLAIMABLE } from '../guest/mm/gfp.js';
import { getProcess, faultAnonPages, exitProcess, readFilePages } from '../guest/mm/process.js';

/** Starts the daemons' activity now, until `until`. */
export function startIdle(guest: Guest, rng: Rng, until: number): void {
  const pg = guest.pgdat;
  const log = getProcess(guest.procs, 500);
  let held: number[] = [];
  const tick = () => {
    // slab churn: dentries and inodes come and go
    for (const pfn of held) freePages(pg, pfn, 0);
    held = [];
    const n = 4 + rngBelow(rng, 8);
    for (let i = 0; i < n; i++) {
      const pfn = allocPages(pg, GFP_KERNEL | __GFP_RECLAIMABLE, 0, Owner.slabReclaimable);
      if (pfn !== NO_PAGE) held.push(pfn);
    }
    // a short-lived helper process (cron job, ssh session housekeeping)
    const helper = getProcess(guest.procs, 501);
    faultAnonPages(pg, helper, 16 + rngBelow(rng, 48));
    exitProcess(pg, guest.procs, helper);
    // the journal grows a little
    if (rngBelow(rng, 4) === 0) readFilePages(pg, log, 1, true);
    if (guest.sim.now + 1e9 <= until) simAfter(guest.sim, 1e9, tick);
  };
  simAfter(guest.sim, 0, tick);
}
