/** Pre-copy live migration: rounds, convergence, zero pages, free page hints, the destination check. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createVm, checkMigrationDestination, type Vm } from '../../src/machine/machine.js';
import { defaultGuestConfig } from '../../src/guest/guest.js';
import { queryMigrate, type MigrationParams } from '../../src/host/migration.js';
import { hostMigrate } from '../../src/host/vm.js';
import { FreePageHintStatus } from '../../src/host/virtio_balloon.js';
import { qmpExecute } from '../../src/host/qmp.js';
import { simRunUntil, simAfter } from '../../src/sim/clock.js';
import { getProcess, faultAnonPages, exitProcess, processPages, followPage } from '../../src/guest/mm/process.js';
import { physPfn } from '../../src/guest/mm/layout.js';
import { PageWrite } from '../../src/guest/mm/mmzone.js';
import { Owner, pageOwner } from '../../src/guest/mm/memmap.js';
import { createRng, rngBelow } from '../../src/sim/rng.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function vm(memory: number, freePageHint = false): Vm {
  return createVm({ guest: defaultGuestConfig({ memoryBytes: memory, vcpus: 2 }), balloon: { device: { freePageHint }, driver: {} }, memPrealloc: false });
}

/** A process with `bytes` of memory that keeps writing `rate` bytes/s of it at random. */
function dirtier(v: Vm, bytes: number, rate: number): void {
  const pg = v.guest.pgdat;
  const p = getProcess(v.guest.procs, 100);
  faultAnonPages(pg, p, bytes / 4096);
  const heap = p.heap!;
  const rng = createRng(7);
  const perTick = rate / 4096 / 100;
  const tick = () => {
    // random addresses of the heap, each page as likely as any other
    for (let i = 0; i < perTick; i++) pg.hooks.pageWrite!(followPage(p, heap.start + rngBelow(rng, heap.end - heap.start)), 1, PageWrite.data);
    simAfter(v.sim, 10_000_000, tick);
  };
  simAfter(v.sim, 0, tick);
}

/**
 * Migrates for up to runNs. The destination is checked at the stop (the source's pages
 * as the last pass sent them); the guest runs on afterwards, so a check at the end of
 * the downtime, when QEMU reports 'completed', would see pages written since.
 */
function migrate(v: Vm, params: Partial<MigrationParams>, runNs: number) {
  const m = hostMigrate(v.host, { linkBandwidth: 1.25e9, ...params });
  let check: string | null = 'not completed';
  m.onComplete = (done) => { check = done.destinationCheck === undefined ? 'no check at the stop' : done.destinationCheck; };
  simRunUntil(v.sim, v.sim.now + runNs);
  return Object.assign(m, { check: () => check });
}

test('an idle guest: one pass, zero pages as 9-byte records, data pages as 4 KiB; the destination has everything', () => {
  const v = vm(512 * MiB);
  const p = getProcess(v.guest.procs, 100);
  faultAnonPages(v.guest.pgdat, p, (256 * MiB) / 4096);
  const m = migrate(v, { maxBandwidth: 100 * GiB, downtimeLimitMs: 300 }, 5e9);
  const q = queryMigrate(m);
  assert.equal(q.status, 'completed');
  const ram = q.ram as Record<string, number>;
  assert.equal(ram.total, 512 * MiB);
  assert.equal(ram.duplicate! + ram.normal!, 131072, 'every page sent once');
  assert.ok(ram.normal! >= 65536, 'the process\'s 256 MiB are data');
  assert.equal(ram.transferred, ram.duplicate! * 9 + ram.normal! * 4104);
  assert.equal(ram['normal-bytes'], ram.normal! * 4096);
  assert.equal(checkMigrationDestination(v, m), null);
  assert.ok((q.downtime as number) >= 20 && (q.downtime as number) < 300);
});

test('convergence: more rounds as the dirty rate nears the bandwidth, none above it unless the downtime limit allows', () => {
  const rounds: number[] = [];
  const bw = 64 * MiB;
  for (const frac of [0.1, 0.5, 0.8]) {
    const v = vm(512 * MiB);
    dirtier(v, 128 * MiB, frac * bw);
    const m = migrate(v, { maxBandwidth: bw, downtimeLimitMs: 300 }, 120e9);
    assert.equal(m.status, 'completed', `dirty rate ${frac} of bandwidth`);
    assert.equal(m.check(), null);
    rounds.push(m.dirtySyncCount);
  }
  assert.ok(rounds[0]! < rounds[1]! && rounds[1]! < rounds[2]!, `syncs ${rounds}`);
  // above the bandwidth, the dirty working set never drains
  const over = vm(512 * MiB);
  dirtier(over, 128 * MiB, 2 * bw);
  const m = migrate(over, { maxBandwidth: bw, downtimeLimitMs: 300 }, 60e9);
  assert.equal(m.status, 'active');
  assert.ok(m.dirtySyncCount > 3);
  // ... unless the downtime limit covers the whole working set (128 MiB at 64 MiB/s: 2 s)
  const generous = vm(512 * MiB);
  dirtier(generous, 128 * MiB, 2 * bw);
  const g = migrate(generous, { maxBandwidth: bw, downtimeLimitMs: 4000 }, 60e9);
  assert.equal(g.status, 'completed');
  assert.ok(g.downtimeNs > 1e9);
  assert.equal(g.check(), null);
});

test('free page hints: hinted pages are not sent unless written after the hint', () => {
  const v = vm(1 * GiB, true);
  const pg = v.guest.pgdat;
  const p = getProcess(v.guest.procs, 100);
  faultAnonPages(pg, p, (768 * MiB) / 4096);
  exitProcess(pg, v.guest.procs, p);
  const m = hostMigrate(v.host, { maxBandwidth: 64 * MiB, downtimeLimitMs: 300, linkBandwidth: 1.25e9 });
  assert.equal(m.hinting, true);
  simRunUntil(v.sim, v.sim.now + 500e6);
  assert.ok(m.hintedPages > 100_000, `hinted ${m.hintedPages}`);
  assert.ok(m.skippedPages > 100_000 && m.skippedPages <= m.hintedPages, `skipped ${m.skippedPages}`);
  // two pages the guest holds as hints that were not sent before their hint arrived
  const map = pg.map, layout = v.guest.layout;
  let held = -1;
  for (let pfn = 0; pfn < map.nrPages - 1; pfn++) {
    if (pageOwner(map, pfn) === Owner.freePageHint && pageOwner(map, pfn + 1) === Owner.freePageHint &&
      !m.destReceived[physPfn(layout, pfn)] && !m.destReceived[physPfn(layout, pfn + 1)]) { held = pfn; break; }
  }
  assert.ok(held >= 0);
  // the guest writes the second one after its hint (as if the shrinker had given it back)
  const written = held + 1;
  pg.hooks.pageWrite!(written, 1, PageWrite.data);
  let check: string | null = 'not completed';
  m.onComplete = (done) => { check = checkMigrationDestination(v, done); };
  simRunUntil(v.sim, v.sim.now + 60e9);
  assert.equal(m.status, 'completed');
  assert.equal(check, null);
  assert.equal(m.destReceived[physPfn(layout, held)], 0, 'the hinted page was never sent');
  assert.equal(m.destReceived[physPfn(layout, written)], 1, 'the page written after its hint was sent');
  assert.equal(m.destGen[physPfn(layout, written)], v.host.ram.gen[physPfn(layout, written)]);
  const legacy = vm(1 * GiB, true);
  const lp = getProcess(legacy.guest.procs, 100);
  faultAnonPages(legacy.guest.pgdat, lp, (768 * MiB) / 4096);
  exitProcess(legacy.guest.pgdat, legacy.guest.procs, lp);
  const l = migrate(legacy, { maxBandwidth: 64 * MiB, downtimeLimitMs: 300, freePageHint: false }, 60e9);
  assert.ok(m.transferred < l.transferred / 2, `hinting sent ${m.transferred} bytes, legacy ${l.transferred}`);
  assert.ok(m.endNs - m.startNs < l.endNs - l.startNs);
});

test('free page hints: STOP before every sync, a new command id after it, DONE at the end, and the guest gets its blocks back', () => {
  const v = vm(512 * MiB, true);
  const dev = v.host.balloon!, drv = v.driver!;
  const seen: string[] = [];
  let last = -1;
  const watch = () => {
    if (dev.freePageHintStatus !== last) { last = dev.freePageHintStatus; seen.push(['stop', 'requested', 'start', 'done'][last]!); }
    simAfter(v.sim, 1_000_000, watch);
  };
  watch();
  const id0 = dev.freePageHintCmdId;
  const m = migrate(v, { maxBandwidth: 128 * MiB, downtimeLimitMs: 300 }, 20e9);
  assert.equal(m.status, 'completed');
  assert.equal(dev.freePageHintCmdId - id0, m.dirtySyncCount - 1, 'one new command id per sync while the VM runs');
  assert.equal(dev.freePageHintStatus, FreePageHintStatus.done);
  assert.equal(seen[0], 'stop');
  assert.ok(seen.includes('start'));
  assert.equal(seen.at(-1), 'done');
  assert.equal(drv.numFreePageBlocks, 0, 'after DONE the guest freed every hinted block');
  assert.equal(v.guest.pgdat.ownerPages[Owner.freePageHint], 0);
});

test('the destination check fails when a page is lost, and names it', () => {
  const v = vm(256 * MiB);
  const p = getProcess(v.guest.procs, 100);
  faultAnonPages(v.guest.pgdat, p, (64 * MiB) / 4096);
  const m = migrate(v, { maxBandwidth: 1 * GiB, downtimeLimitMs: 300 }, 10e9);
  assert.equal(checkMigrationDestination(v, m), null);
  const pfn = processPages(v.guest.pgdat, v.guest.procs.get(100)!)[10]!;
  const phys = physPfn(v.guest.layout, pfn);
  m.destReceived[phys] = 0; // deliberately dropped
  assert.match(checkMigrationDestination(v, m) ?? '', new RegExp(`page ${phys}: source data gen \\d+, destination never received`));
  m.destReceived[phys] = 1;
  m.destGen[phys] = m.destGen[phys]! + 1; // a stale copy
  assert.match(checkMigrationDestination(v, m) ?? '', /1 pages differ/);
});

test('QMP: migrate-set-parameters, migrate, query-migrate', () => {
  const v = vm(256 * MiB);
  assert.deepEqual(qmpExecute(v.host, { execute: 'query-migrate' }), { return: {} });
  assert.deepEqual(qmpExecute(v.host, { execute: 'migrate-set-parameters', arguments: { 'max-bandwidth': 1 * GiB, 'downtime-limit': 500 } }), { return: {} });
  assert.deepEqual(qmpExecute(v.host, { execute: 'query-migrate-parameters' }), { return: { 'max-bandwidth': 1 * GiB, 'downtime-limit': 500 } });
  assert.deepEqual(qmpExecute(v.host, { execute: 'migrate' }), { return: {} });
  assert.equal((qmpExecute(v.host, { execute: 'migrate' }) as { error: { desc: string } }).error.desc, "There's a migration process in progress");
  simRunUntil(v.sim, 10e9);
  const q = (qmpExecute(v.host, { execute: 'query-migrate' }) as { return: Record<string, unknown> }).return;
  assert.equal(q.status, 'completed');
  for (const k of ['total-time', 'downtime', 'setup-time']) assert.equal(typeof q[k], 'number', k);
  for (const k of ['transferred', 'remaining', 'total', 'duplicate', 'normal', 'normal-bytes', 'dirty-sync-count', 'mbps', 'dirty-pages-rate']) {
    assert.equal(typeof (q.ram as Record<string, unknown>)[k], 'number', k);
  }
});
