/**
 * `balloonlab bench migration`: a simulated pre-copy migration of an idle 8 GiB,
 * 4-vCPU guest (max-bandwidth 100 GiB/s, downtime-limit 2 s, a 10 Gbit/s link), with
 * free page hinting off and on.
 *
 * Method: boot the machine (not timed), let a process touch 6 GiB and exit (a "used"
 * idle guest: free memory holds old data), then time hostMigrate through completion
 * on the simulation clock. Each run is a fresh machine; figures are medians of `runs`
 * runs after one untimed warm-up. wall_ms is the hinting-off migration (the engine's
 * worst case: every page scanned and sent); wall_ms_hinting the hinting-on one. The
 * virtual figures (total-time, downtime, transferred) come from the last run and are
 * the same in every run (deterministic).
 */
import { createVm, checkMigrationDestination } from '../src/machine/machine.js';
import { defaultGuestConfig } from '../src/guest/guest.js';
import { queryMigrate } from '../src/host/migration.js';
import { hostMigrate } from '../src/host/vm.js';
import { simRunUntil } from '../src/sim/clock.js';
import { getProcess, faultAnonPages, exitProcess } from '../src/guest/mm/process.js';
import { median } from './stats.js';

const GiB = 1024 ** 3;

export type MigrationBenchResult = {
  bench: 'migration';
  guest_bytes: number;
  wall_ms: number;
  wall_ms_runs: number[];
  wall_ms_hinting: number;
  wall_ms_hinting_runs: number[];
  /** query-migrate of the last run without and with hinting. */
  legacy: Record<string, unknown>;
  hinting: Record<string, unknown>;
  destination_ok: boolean;
};

function oneRun(hint: boolean, memoryBytes: number, now: () => number) {
  const vm = createVm({ guest: defaultGuestConfig({ memoryBytes, vcpus: 4, seed: 1 }), balloon: { device: { freePageHint: true }, driver: {} }, memPrealloc: false });
  const p = getProcess(vm.guest.procs, 100);
  faultAnonPages(vm.guest.pgdat, p, Math.floor((memoryBytes * 0.75) / 4096));
  exitProcess(vm.guest.pgdat, vm.guest.procs, p);
  simRunUntil(vm.sim, 1e9);
  let ok = false;
  let endWall = 0;
  const t0 = now();
  const m = hostMigrate(vm.host, { maxBandwidth: 100 * GiB, downtimeLimitMs: 2000, linkBandwidth: 1.25e9, freePageHint: hint });
  m.onComplete = (done) => { endWall = now(); ok = checkMigrationDestination(vm, done) === null; };
  simRunUntil(vm.sim, vm.sim.now + 600e9);
  if (m.status !== 'completed') throw new Error('bench migration: the migration did not complete in 600 s of virtual time');
  return { wall: endWall - t0, q: queryMigrate(m), ok };
}

export function benchMigration(runs = 5, memoryBytes = 8 * GiB, now: () => number = () => performance.now()): MigrationBenchResult {
  const legacy: number[] = [], hinting: number[] = [];
  let lastL = oneRun(false, memoryBytes, now), lastH = oneRun(true, memoryBytes, now); // warm-up
  let ok = lastL.ok && lastH.ok;
  for (let i = 0; i < runs; i++) {
    lastL = oneRun(false, memoryBytes, now);
    lastH = oneRun(true, memoryBytes, now);
    legacy.push(lastL.wall);
    hinting.push(lastH.wall);
    ok = ok && lastL.ok && lastH.ok;
  }
  const r = (x: number) => Math.round(x * 10) / 10;
  return {
    bench: 'migration', guest_bytes: memoryBytes,
    wall_ms: r(median(legacy)), wall_ms_runs: legacy.map(r), wall_ms_hinting: r(median(hinting)), wall_ms_hinting_runs: hinting.map(r),
    legacy: lastL.q, hinting: lastH.q, destination_ok: ok,
  };
}
