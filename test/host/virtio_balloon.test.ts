/**
 * The virtio balloon end to end: the Linux-like driver in the guest and the QEMU-like
 * device on the host, meeting only through the rings and the config space.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createVm, checkVm, type Vm } from '../../src/machine/machine.js';
import { defaultGuestConfig } from '../../src/guest/guest.js';
import { DEFAULT_BOOT, type BootParams } from '../../src/guest/mm/boot.js';
import {
  virtioBalloonToTarget, virtioBalloonStat, virtioBalloonFreePageStart, virtioBalloonFreePageStop, virtioBalloonFreePageDone, FreePageHintStatus,
  FREE_PAGE_HINT_CMD_ID_MIN, type BalloonDeviceOptions,
} from '../../src/host/virtio_balloon.js';
import { ramRssBytes } from '../../src/host/ram.js';
import { simRunUntil } from '../../src/sim/clock.js';
import { getProcess, faultAnonPages, exitProcess, unmapAnonPages } from '../../src/guest/mm/process.js';
import { allocPages } from '../../src/guest/mm/page_alloc.js';
import { compactMemory } from '../../src/guest/mm/compaction.js';
import { NO_PAGE, Owner, PG, pageOwner, pageFlags } from '../../src/guest/mm/memmap.js';
import { totalramPages } from '../../src/guest/mm/mmzone.js';
import { GFP_KERNEL } from '../../src/guest/mm/gfp.js';
import { VmEvent, ZoneStat } from '../../src/guest/mm/vmstat_items.js';
import { globalZonePageState } from '../../src/guest/mm/vmstat.js';
import { kpageflags, KPF_OFFLINE } from '../../src/report/kpageflags.js';
import { memmapPfn } from '../../src/guest/mm/layout.js';
import { readLe16, readLe32, writeLe16 } from '../../src/virtio/guest_memory.js';
import { transportNotify, VIRTIO_CONFIG_S_NEEDS_RESET } from '../../src/virtio/transport.js';
import { BalloonQueue, BalloonStat, VIRTIO_BALLOON_F_PAGE_POISON, VIRTIO_BALLOON_F_REPORTING } from '../../src/virtio/virtio_balloon.js';
import { PAGE_POISON, type VirtioBalloonDriverOptions } from '../../src/guest/drivers/virtio_balloon.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function vmWith(memory: number, device: Partial<BalloonDeviceOptions> = {}, boot: Partial<BootParams> = {}, driver: Partial<VirtioBalloonDriverOptions> = {}, memPrealloc = false): Vm {
  return createVm({ guest: defaultGuestConfig({ memoryBytes: memory, boot: { ...DEFAULT_BOOT, ...boot } }), balloon: { device, driver }, memPrealloc });
}

const run = (vm: Vm, ns: number) => simRunUntil(vm.sim, vm.sim.now + ns);

/** A process touches `bytes` and exits: the guest's free memory is backed on the host. */
function useAndFree(vm: Vm, bytes: number): void {
  const p = getProcess(vm.guest.procs, 100);
  faultAnonPages(vm.guest.pgdat, p, bytes / 4096);
  exitProcess(vm.guest.pgdat, vm.guest.procs, p);
}

test('inflate then deflate: actual follows the target, the host discards and gets back, every counter agrees', () => {
  // -mem-prealloc: every page is backed, so the RSS drop is exactly the balloon
  const vm = vmWith(1 * GiB, {}, {}, {}, true);
  const dev = vm.host.balloon!, drv = vm.driver!;
  assert.equal(drv.probeError, null);
  useAndFree(vm, 768 * MiB);
  const rss0 = ramRssBytes(vm.host.ram);
  const managed0 = totalramPages(vm.guest.pgdat);
  virtioBalloonToTarget(dev, 512 * MiB);
  run(vm, 5e9);
  assert.equal(drv.numPages, 131072);
  assert.equal(dev.actual, 131072);
  assert.equal(virtioBalloonStat(dev), 512 * MiB);
  assert.equal(vm.guest.pgdat.events[VmEvent.balloon_inflate], 131072);
  assert.equal(dev.inflatedPages, 131072);
  assert.equal(vm.guest.pgdat.ownerPages[Owner.balloon], 131072);
  assert.equal(rss0 - ramRssBytes(vm.host.ram), 512 * MiB, 'the host dropped exactly the inflated pages');
  assert.equal(totalramPages(vm.guest.pgdat), managed0 - 131072, 'without DEFLATE_ON_OOM inflated pages leave MemTotal');
  assert.equal(checkVm(vm), null);
  // one BALLOON_CHANGE per round of 256 pages, the last at the target
  assert.equal(dev.balloonChanges.length, 512);
  assert.equal(dev.balloonChanges.at(-1)!.actual, 512 * MiB);

  virtioBalloonToTarget(dev, 1 * GiB);
  run(vm, 5e9);
  assert.equal(drv.numPages, 0);
  assert.equal(vm.guest.pgdat.events[VmEvent.balloon_deflate], 131072);
  assert.equal(dev.inflatedPages, 0);
  assert.equal(dev.counters.deflateNotInflated, 0);
  assert.equal(totalramPages(vm.guest.pgdat), managed0);
  assert.equal(ramRssBytes(vm.host.ram), rss0 - 512 * MiB, 'deflated pages stay unbacked until the guest writes them');
  const p = getProcess(vm.guest.procs, 101);
  faultAnonPages(vm.guest.pgdat, p, (700 * MiB) / 4096);
  assert.ok(vm.host.ram.refaults > (400 * MiB) / 4096, 'writing deflated pages faults them back in');
  assert.equal(checkVm(vm), null);
});

test('PG_offline and KPF_OFFLINE mark exactly the balloon pages', () => {
  const vm = vmWith(256 * MiB);
  virtioBalloonToTarget(vm.host.balloon!, 200 * MiB);
  run(vm, 2e9);
  const g = vm.guest;
  const kpf = new DataView(kpageflags(g).buffer);
  let offline = 0;
  for (let phys = 0; phys < g.layout.maxPhysPfn; phys++) {
    const pfn = memmapPfn(g.layout, phys);
    const isOffline = (kpf.getUint32(phys * 8, true) & (1 << KPF_OFFLINE)) !== 0;
    const isBalloon = pfn >= 0 && pageOwner(g.pgdat.map, pfn) === Owner.balloon;
    assert.equal(isOffline, isBalloon, `phys pfn ${phys}`);
    if (isOffline) offline++;
  }
  assert.equal(offline, (56 * MiB) / 4096);
});

test('the host hears of a deflate before the guest reuses the pages, with and without MUST_TELL_HOST', () => {
  for (const mustTellHost of [false, true]) {
    const vm = vmWith(256 * MiB, { mustTellHost });
    const dev = vm.host.balloon!, drv = vm.driver!;
    assert.equal((drv.features & 1n) === 1n, mustTellHost);
    virtioBalloonToTarget(dev, 128 * MiB);
    run(vm, 2e9);
    // Watch every deflate notification: the PFNs it carries must still be held by the driver.
    const onNotify = dev.t.onNotify!;
    let checked = 0;
    dev.t.onNotify = (idx) => {
      if (idx === dev.queueIndex[BalloonQueue.deflate]) {
        for (let i = 0; i < drv.numPfns; i++) {
          const pfn = memmapPfn(vm.guest.layout, readLe32(vm.host.mem, drv.pfnsAddr + 4 * i));
          assert.equal(pageOwner(vm.guest.pgdat.map, pfn), Owner.kernel, 'a page the host has not released yet is not free');
          checked++;
        }
      }
      onNotify(idx);
    };
    virtioBalloonToTarget(dev, 256 * MiB);
    run(vm, 2e9);
    assert.equal(checked, 32768);
    assert.equal(drv.numPages, 0);
    assert.equal(checkVm(vm), null);
  }
});

test('out of puff: a failed balloon allocation backs off 200 ms of virtual time', () => {
  const vm = vmWith(256 * MiB);
  const pg = vm.guest.pgdat;
  // pin almost all memory in unreclaimable kernel allocations: 16 MiB stay free
  while (globalZonePageState(pg, ZoneStat.nr_free_pages) > 4096) if (allocPages(pg, GFP_KERNEL, 0, Owner.kernel) === NO_PAGE) break;
  const dev = vm.host.balloon!, drv = vm.driver!;
  const times: number[] = [];
  const onNotify = dev.t.onNotify!;
  dev.t.onNotify = (idx) => { if (idx === dev.queueIndex[BalloonQueue.inflate]) times.push(vm.sim.now); onNotify(idx); };
  virtioBalloonToTarget(dev, 64 * MiB); // far more than can be had
  run(vm, 150e6);
  // the first rounds run back to back (well under a millisecond each), until allocation fails
  assert.ok(times.length >= 5);
  for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! < 1e6, `round gap ${times[i]! - times[i - 1]!} ns`);
  assert.equal(drv.counters.outOfPuff, 1, 'the failing round is still asleep');
  const got = drv.numPages;
  run(vm, 100e6);
  assert.ok(drv.numPages >= got, 'after 200 ms the pages got so far go to the host');
  // from then on one failed attempt per 200 ms: 10 more in 2 s
  const puff0 = drv.counters.outOfPuff;
  run(vm, 2e9);
  assert.equal(drv.counters.outOfPuff - puff0, 10);
  assert.ok(drv.numPages > 0 && drv.numPages < (192 * MiB) / 4096);
  assert.equal(checkVm(vm), null);
});

test('stats: the driver fills (tag, value) pairs from the guest\'s counters; the device polls on its interval', () => {
  const vm = vmWith(512 * MiB, { statsPollingIntervalNs: 2e9 });
  const dev = vm.host.balloon!, drv = vm.driver!;
  useAndFree(vm, 64 * MiB);
  run(vm, 5e9);
  assert.ok(dev.counters.statsUpdates >= 3, `stats updates ${dev.counters.statsUpdates}`);
  assert.equal(dev.statsLastUpdateNs, 4e9, 'last update at the last poll (0 s, 2 s, 4 s)');
  const pg = vm.guest.pgdat;
  assert.equal(dev.stats[BalloonStat.memtot], totalramPages(pg) * 4096);
  assert.equal(dev.stats[BalloonStat.memfree], globalZonePageState(pg, ZoneStat.nr_free_pages) * 4096);
  assert.equal(dev.stats[BalloonStat.minflt], pg.events[VmEvent.pgfault]);
  assert.equal(dev.stats[BalloonStat.swapIn], 0);
  // the buffer in guest memory: 16 packed 10-byte entries, swap-in first
  assert.equal(readLe16(vm.host.mem, drv.statsAddr), BalloonStat.swapIn);
  assert.equal(readLe16(vm.host.mem, drv.statsAddr + 10), BalloonStat.swapOut);
  assert.equal(readLe16(vm.host.mem, drv.statsAddr + 150), BalloonStat.caches);
  // a 6.1 driver sends tags 0-9 only; the rest stay -1, as QEMU reports them
  const old = vmWith(256 * MiB, { statsPollingIntervalNs: 1e9 }, {}, { statsTags: 'v6.1' });
  run(old, 2e9);
  assert.equal(old.host.balloon!.stats[BalloonStat.oomKill], -1);
  assert.equal(old.host.balloon!.stats[BalloonStat.memtot], totalramPages(old.guest.pgdat) * 4096);
});

test('free page hinting: a full command-id cycle, blocks held until DONE, ranges handed to the host', () => {
  const vm = vmWith(1 * GiB, { freePageHint: true });
  const dev = vm.host.balloon!, drv = vm.driver!;
  const ranges: Array<[number, number]> = [];
  dev.onFreePageHint = (addr, len) => ranges.push([addr, len]);
  assert.equal(virtioBalloonFreePageStart(dev), true);
  assert.equal(dev.freePageHintStatus, FreePageHintStatus.requested);
  assert.equal(dev.freePageHintCmdId, FREE_PAGE_HINT_CMD_ID_MIN);
  run(vm, 2e9);
  // the guest echoed the id (START), sent blocks until none were left, then STOP
  assert.equal(dev.freePageHintStatus, FreePageHintStatus.stop);
  assert.equal(drv.counters.hintRounds, 1);
  assert.ok(drv.numFreePageBlocks > 150, `held ${drv.numFreePageBlocks}`);
  assert.equal(ranges.length, drv.numFreePageBlocks);
  for (const [, len] of ranges) assert.equal(len, 4 * MiB);
  assert.equal(dev.counters.hintedPages, drv.numFreePageBlocks * 1024);
  assert.equal(vm.guest.pgdat.ownerPages[Owner.freePageHint], drv.numFreePageBlocks * 1024);
  assert.equal(checkVm(vm), null);
  // a second round with a new id; then DONE gives everything back
  virtioBalloonFreePageStop(dev);
  virtioBalloonFreePageStart(dev);
  assert.equal(dev.freePageHintCmdId, FREE_PAGE_HINT_CMD_ID_MIN + 1);
  run(vm, 2e9);
  virtioBalloonFreePageDone(dev);
  run(vm, 1e9);
  assert.equal(drv.numFreePageBlocks, 0);
  assert.equal(vm.guest.pgdat.ownerPages[Owner.freePageHint], 0);
  assert.equal(checkVm(vm), null);
});

test('free page hinting: memory pressure makes the shrinker give held blocks back', () => {
  const vm = vmWith(512 * MiB, { freePageHint: true });
  const dev = vm.host.balloon!, drv = vm.driver!;
  virtioBalloonFreePageStart(dev);
  run(vm, 2e9);
  const held = drv.numFreePageBlocks;
  assert.ok(held > 50);
  // a workload needs the memory: reclaim runs the shrinkers
  const p = getProcess(vm.guest.procs, 100);
  const got = faultAnonPages(vm.guest.pgdat, p, (300 * MiB) / 4096);
  assert.equal(got, (300 * MiB) / 4096);
  assert.ok(drv.counters.hintBlocksReturned > 0 && drv.numFreePageBlocks < held);
  assert.equal(checkVm(vm), null);
});

test('free page hinting in discard mode (Firecracker) drops the hinted pages\' backing', () => {
  const vm = vmWith(512 * MiB, { freePageHint: true, hintAction: 'discard', hintAckOnStop: true }, { initOnAlloc: false });
  useAndFree(vm, 256 * MiB);
  const rss0 = ramRssBytes(vm.host.ram);
  virtioBalloonFreePageStart(vm.host.balloon!);
  run(vm, 2e9);
  assert.ok(ramRssBytes(vm.host.ram) < rss0 - 200 * MiB, `rss ${rss0} -> ${ramRssBytes(vm.host.ram)}`);
  // acknowledge-on-stop: DONE followed the guest's STOP, so the blocks are back
  assert.equal(vm.host.balloon!.freePageHintStatus, FreePageHintStatus.done);
  assert.equal(vm.driver!.numFreePageBlocks, 0);
});

test('page reporting: free blocks are reported, discarded, marked PageReported, and fault back in on reuse', () => {
  const vm = vmWith(1 * GiB, { freePageReporting: true });
  const drv = vm.driver!, dev = vm.host.balloon!;
  assert.ok((drv.features >> BigInt(VIRTIO_BALLOON_F_REPORTING)) & 1n);
  useAndFree(vm, 700 * MiB);
  const rss0 = ramRssBytes(vm.host.ram);
  run(vm, 60e9);
  const pr = drv.prDevInfo!;
  assert.ok(pr.reportedPages > (600 * MiB) / 4096, `reported ${pr.reportedPages}`);
  assert.equal(dev.counters.reportedPages, pr.reportedPages);
  assert.ok(rss0 - ramRssBytes(vm.host.ram) > 600 * MiB);
  // every reported block is still free and flagged
  let flagged = 0;
  const map = vm.guest.pgdat.map;
  for (let pfn = 0; pfn < map.nrPages; pfn++) if (pageFlags(map, pfn) & PG.reported) { assert.equal(pageOwner(map, pfn), Owner.free); flagged++; }
  assert.ok(flagged > 0);
  assert.equal(checkVm(vm), null);
  const refaults0 = vm.host.ram.refaults;
  const p = getProcess(vm.guest.procs, 101);
  faultAnonPages(vm.guest.pgdat, p, (500 * MiB) / 4096);
  assert.ok(vm.host.ram.refaults - refaults0 > (400 * MiB) / 4096, 'reallocated reported pages fault in again on the host');
});

test('page poison: init_on_free negotiates PAGE_POISON with 0, page_poison with 0xaaaaaaaa, and the host keeps poisoned reports', () => {
  const zero = vmWith(256 * MiB, { freePageReporting: true }, { initOnFree: true });
  assert.ok((zero.driver!.features >> BigInt(VIRTIO_BALLOON_F_PAGE_POISON)) & 1n);
  assert.equal(zero.host.balloon!.poisonVal, 0);
  const poisoned = vmWith(256 * MiB, { freePageReporting: true }, { pagePoison: true });
  assert.equal(poisoned.host.balloon!.poisonVal, PAGE_POISON * 0x01010101);
  useAndFree(poisoned, 128 * MiB);
  const rss0 = ramRssBytes(poisoned.host.ram);
  run(poisoned, 20e9);
  assert.ok(poisoned.host.balloon!.counters.reportsKept > 0);
  assert.equal(poisoned.host.balloon!.counters.reportsKept, poisoned.host.balloon!.counters.reportedPages);
  assert.ok(ramRssBytes(poisoned.host.ram) >= rss0, 'poisoned pages must keep their contents, so nothing is discarded');
  // a guest that initialises freed pages cannot report to a device without PAGE_POISON
  const refused = vmWith(256 * MiB, { freePageReporting: true, pagePoison: false }, { initOnFree: true });
  assert.equal((refused.driver!.features >> BigInt(VIRTIO_BALLOON_F_REPORTING)) & 1n, 0n);
  assert.equal(refused.driver!.prDevInfo, null);
});

test('deflate on OOM: the balloon gives back 256 pages instead of a kill, and inflated pages stay in MemTotal', () => {
  const vm = vmWith(256 * MiB, { deflateOnOom: true });
  const pg = vm.guest.pgdat, drv = vm.driver!;
  const managed0 = totalramPages(pg);
  virtioBalloonToTarget(vm.host.balloon!, 128 * MiB);
  run(vm, 2e9);
  assert.equal(drv.numPages, (128 * MiB) / 4096);
  assert.equal(totalramPages(pg), managed0);
  const p = getProcess(vm.guest.procs, 100);
  const want = (96 * MiB) / 4096;
  assert.equal(faultAnonPages(pg, p, want), want, 'the process gets its memory from the balloon');
  assert.ok(drv.counters.oomDeflates > 0);
  assert.equal(pg.events[VmEvent.oom_kill], 0);
  assert.equal(drv.counters.oomPages, drv.counters.oomDeflates * 256);
  assert.ok(drv.numPages < (128 * MiB) / 4096);
  assert.equal(vm.host.balloon!.actual, drv.numPages, 'actual is updated after each OOM deflate');
  assert.equal(checkVm(vm), null);
});

test('compaction migrates balloon pages through the driver: the host is told inflate new, deflate old', () => {
  const vm = vmWith(512 * MiB, {}, { thp: 'never' });
  const pg = vm.guest.pgdat, dev = vm.host.balloon!;
  const p = getProcess(vm.guest.procs, 100);
  faultAnonPages(pg, p, (400 * MiB) / 4096);
  // every other page back: holes everywhere; the balloon fills them
  unmapAnonPages(pg, vm.guest.rng, p, 0.5, 'alternate');
  virtioBalloonToTarget(dev, 384 * MiB);
  run(vm, 2e9);
  exitProcess(pg, vm.guest.procs, p);
  compactMemory(pg);
  const migrated = pg.events[VmEvent.balloon_migrate]!;
  assert.ok(migrated > 1000, `balloon_migrate ${migrated}`);
  assert.equal(dev.counters.inflatePfns - dev.counters.deflatePfns, dev.inflatedPages);
  assert.equal(dev.counters.deflatePfns, migrated);
  assert.equal(checkVm(vm), null);
});

test('a hostile ring puts the device in NEEDS_RESET; the driver waits for ever instead of crashing', () => {
  const vm = vmWith(256 * MiB);
  const dev = vm.host.balloon!, drv = vm.driver!;
  const layout = drv.vqs[BalloonQueue.inflate]!.layout;
  writeLe16(vm.host.mem, layout.availAddr + 2, 500); // avail.idx runs far ahead
  transportNotify(dev.t, dev.queueIndex[BalloonQueue.inflate]!);
  assert.ok(dev.t.status & VIRTIO_CONFIG_S_NEEDS_RESET);
  assert.match(dev.t.error!, /Guest moved avail index/);
  virtioBalloonToTarget(dev, 200 * MiB);
  run(vm, 1e9);
  assert.match(drv.stuck ?? '', /waiting for the host forever/);
  // the pages of that round stay with the driver; nothing is lost
  assert.equal(pg(vm).ownerPages[Owner.balloon], drv.numPages);
});

test('v86-style device: actual is counted by the device and the driver cannot change it', () => {
  const vm = vmWith(256 * MiB, { actualSource: 'device' });
  virtioBalloonToTarget(vm.host.balloon!, 192 * MiB);
  run(vm, 2e9);
  assert.equal(vm.host.balloon!.actual, (64 * MiB) / 4096);
  assert.equal(virtioBalloonStat(vm.host.balloon!), 192 * MiB);
});

function pg(vm: Vm) {
  return vm.guest.pgdat;
}

test('the driver\'s rings and PFN array live in guest pages it took from the allocator, laid out as vring_init does', () => {
  const vm = vmWith(256 * MiB, { freePageHint: true, freePageReporting: true, deflateOnOom: true });
  const drv = vm.driver!, g = vm.guest;
  const ownerAt = (addr: number) => pageOwner(g.pgdat.map, memmapPfn(g.layout, Math.floor(addr / 4096)));
  let queues = 0;
  for (const vq of drv.vqs) {
    if (!vq) continue;
    queues++;
    const l = vq.layout;
    assert.equal(l.availAddr, l.descAddr + 16 * l.size);
    assert.equal(l.usedAddr, Math.ceil((l.availAddr + 6 + 2 * l.size) / 64) * 64);
    for (const a of [l.descAddr, l.availAddr, l.usedAddr, l.usedAddr + 6 + 8 * l.size - 1]) assert.equal(ownerAt(a), Owner.virtio);
  }
  assert.equal(queues, 5);
  assert.deepEqual(drv.vqs.map((q) => q?.layout.size), [128, 128, 128, 1024, 32], 'QEMU\'s queue sizes');
  assert.equal(ownerAt(drv.pfnsAddr), Owner.virtio);
  assert.equal(ownerAt(drv.statsAddr), Owner.virtio);
  assert.equal(g.pgdat.ownerPages[Owner.virtio], 1 + 1 + 1 + 1 + 8 + 1, 'struct page + 3 one-page rings + the 1024-entry ring (order 3) + the reporting ring');
});
