/**
 * `idle`: a booted guest with light daemon activity (systemd-journald, cron, sshd,
 * the kernel's own threads): every second a daemon walks /proc (32 to 88 proc dentries
 * and inodes, freed again at the next tick), a short-lived helper's anonymous
 * memory comes and goes, and a few KiB of log are written. The amounts are small on
 * purpose: an idle guest's memory barely changes, which is what makes its migration
 * and its balloon behaviour easy to read. The slab objects come from the caches'
 * partial slabs, so slab pages are taken only when those run out.
 */
import { simAfter } from '../sim/clock.js';
import { type Rng, rngBelow } from '../sim/rng.js';
import type { Guest } from '../guest/guest.js';
import { forkProcess, faultAnonPages, exitProcess, readFilePages } from '../guest/mm/process.js';
import { FreeFrom, kmemCacheAlloc, kmemCacheFree } from '../guest/mm/slab.js';

/** proc dentries and inodes a daemon's /proc walk makes per unit of the tick's draw (4-11 units). */
export const PROC_OBJECTS_PER_UNIT = 8;

/** Starts the daemons' activity now, until `until`. */
export function startIdle(guest: Guest, rng: Rng, until: number): void {
  const pg = guest.pgdat;
  const log = forkProcess(guest.pgdat, 500, guest.config.seed);
  let dentries = 0, inodes = 0;
  const tick = () => {
    // slab churn: the last walk's proc dentries and inodes are pruned, a new walk makes more
    const n = (4 + rngBelow(rng, 8)) * PROC_OBJECTS_PER_UNIT;
    const std = pg.slab.std;
    if (std !== null) {
      kmemCacheFree(pg, std.dentry, dentries, FreeFrom.newest);
      kmemCacheFree(pg, std.procInode, inodes, FreeFrom.newest);
      dentries = kmemCacheAlloc(pg, std.dentry, n);
      inodes = kmemCacheAlloc(pg, std.procInode, n);
    }
    // a short-lived helper process (cron job, ssh session housekeeping)
    const helper = forkProcess(guest.pgdat, 501, guest.config.seed);
    faultAnonPages(pg, helper, 16 + rngBelow(rng, 48));
    exitProcess(pg, guest.procs, helper);
    // the journal grows a little
    if (rngBelow(rng, 4) === 0) readFilePages(pg, log, 1, true);
    if (guest.sim.now + 1e9 <= until) simAfter(guest.sim, 1e9, tick);
  };
  simAfter(guest.sim, 0, tick);
}
