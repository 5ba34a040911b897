/**
 * balloonlab's virtio-balloon device driven by the real Linux virtio_balloon driver:
 * Debian's i386 kernel in v86, the device on v86's PCI bus through the bridge
 * (src/integrations/v86/bridge.ts). Run with `npm run test:real-guest` after
 * scripts/real-guest/build-image.sh; skipped unless BALLOONLAB_REAL_GUEST=1 (plain
 * `npm test` loads every .js under dist/test/).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootRealGuest, type RealGuest } from '../../src/integrations/v86/boot.js';
import { attachBalloonlabBalloon, type BalloonBridge, type BalloonBridgeOptions } from '../../src/integrations/v86/bridge.js';
import { hasFeature, VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_F_VERSION_1 } from '../../src/virtio/transport.js';
import {
  VIRTIO_BALLOON_F_MUST_TELL_HOST, VIRTIO_BALLOON_F_STATS_VQ, VIRTIO_BALLOON_F_DEFLATE_ON_OOM, VIRTIO_BALLOON_F_FREE_PAGE_HINT,
  VIRTIO_BALLOON_F_REPORTING,
} from '../../src/virtio/virtio_balloon.js';

const MiB = 2 ** 20;
const MEMORY_BYTES = 128 * MiB;
const SKIP = process.env.BALLOONLAB_REAL_GUEST === '1' ? false : 'real guest: run `npm run test:real-guest` (sets BALLOONLAB_REAL_GUEST=1)';

async function bootWithBridge(opts: BalloonBridgeOptions, memoryBytes = MEMORY_BYTES): Promise<{ guest: RealGuest; br: BalloonBridge }> {
  let br: BalloonBridge | null = null;
  const guest = await bootRealGuest({
    memoryBytes,
    // v86 builds its own balloon; the bridge takes its PCI slot and borrows its VirtIO class.
    v86Options: { virtio_balloon: true },
    beforeBoot: (emulator) => { br = attachBalloonlabBalloon(emulator, opts); },
  });
  return { guest, br: br! };
}

/** Polls `cond` every 50 ms of wall time until it holds or `ms` pass. */
async function waitUntil(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function vmstat(guest: RealGuest, name: string): Promise<number> {
  const out = await guest.run(`grep '^${name} ' /proc/vmstat`);
  const m = new RegExp(`^${name} (\\d+)`, 'm').exec(out);
  assert.ok(m, `no ${name} in /proc/vmstat: ${out}`);
  return Number(m[1]);
}

async function memTotalKiB(guest: RealGuest): Promise<number> {
  const m = /^MemTotal:\s+(\d+) kB$/m.exec(await guest.run('grep MemTotal /proc/meminfo'));
  assert.ok(m);
  return Number(m[1]);
}

function actual(br: BalloonBridge): number {
  return (br.qmp({ execute: 'query-balloon' }) as { return: { actual: number } }).return.actual;
}

function assertHealthy(br: BalloonBridge): void {
  assert.equal(br.device.t.status & VIRTIO_CONFIG_S_NEEDS_RESET, 0, `NEEDS_RESET: ${br.device.t.error}`);
  assert.equal(br.device.t.error, null);
}

test('real guest drives balloonlab\'s device: bind, features, inflate/deflate against /proc, stats, three free-page-hint rounds', { timeout: 300_000, skip: SKIP }, async (t) => {
  const { guest, br } = await bootWithBridge({ mustTellHost: true, statsVq: true, freePageHint: true, freePageReporting: true, pagePoison: true });
  try {
    t.diagnostic(`boot to prompt: ${(guest.bootMs / 1000).toFixed(1)} s`);
    const bound = await guest.exec('ls /sys/bus/virtio/drivers/virtio_balloon/');
    assert.equal(bound.status, 0, bound.output);
    assert.match(bound.output, /\bvirtio\d+\b/);

    const f = br.device.t.driverFeatures;
    t.diagnostic(`negotiated features 0x${f.toString(16)}`);
    for (const bit of [VIRTIO_F_VERSION_1, VIRTIO_BALLOON_F_MUST_TELL_HOST, VIRTIO_BALLOON_F_STATS_VQ, VIRTIO_BALLOON_F_FREE_PAGE_HINT, VIRTIO_BALLOON_F_REPORTING]) {
      assert.ok(hasFeature(f, bit), `feature ${bit} not negotiated`);
    }

    // Inflate to a logical size of 96 MiB.
    const total0 = await memTotalKiB(guest);
    const inflate0 = await vmstat(guest, 'balloon_inflate');
    const t0 = Date.now();
    assert.deepEqual(br.qmp({ execute: 'balloon', arguments: { value: 96 * MiB } }), { return: {} });
    await waitUntil('actual = 96 MiB', () => actual(br) === 96 * MiB);
    t.diagnostic(`inflate by 32 MiB: ${Date.now() - t0} ms`);
    assert.equal(await vmstat(guest, 'balloon_inflate') - inflate0, br.device.counters.inflatePfns);
    assert.equal(br.device.counters.inflatePfns, 8192);
    assert.equal(total0 - await memTotalKiB(guest), 32 * 1024, 'MemTotal drops by the balloon (no DEFLATE_ON_OOM)');
    assert.equal(br.ramRssWouldRelease(), 32 * MiB);

    // Deflate back to all of RAM.
    br.qmp({ execute: 'balloon', arguments: { value: MEMORY_BYTES } });
    await waitUntil('actual = RAM', () => actual(br) === MEMORY_BYTES);
    assert.equal(await vmstat(guest, 'balloon_deflate'), br.device.counters.deflatePfns);
    assert.equal(br.device.counters.deflatePfns, 8192);
    assert.equal(await memTotalKiB(guest), total0);
    assert.equal(br.device.inflatedPages, 0);

    // Stats: poll every second, see two updates.
    br.qmp({ execute: 'qom-set', arguments: { path: '/machine/peripheral/balloon0', property: 'guest-stats-polling-interval', value: 1 } });
    const u0 = br.device.counters.statsUpdates;
    await waitUntil('two stats updates', () => br.device.counters.statsUpdates >= u0 + 2, 10_000);
    const gs = br.qmp({ execute: 'qom-get', arguments: { path: '/machine/peripheral/balloon0', property: 'guest-stats' } }) as { return: { stats: Record<string, number> } };
    const sent = Object.entries(gs.return.stats).filter(([, v]) => v >= 0).map(([k]) => k);
    t.diagnostic(`stats tags the kernel sent: ${sent.join(' ')}`);
    for (const k of ['stat-swap-in', 'stat-swap-out', 'stat-major-faults', 'stat-minor-faults', 'stat-free-memory', 'stat-total-memory', 'stat-available-memory', 'stat-disk-caches']) {
      assert.ok(sent.includes(k), `${k} missing from ${sent.join(' ')}`);
    }
    t.diagnostic(`guest-stats: ${JSON.stringify(gs.return.stats)}`);
    assert.ok(gs.return.stats['stat-total-memory']! > 64 * MiB && gs.return.stats['stat-total-memory']! <= MEMORY_BYTES, 'stat-total-memory in bytes');
    br.qmp({ execute: 'qom-set', arguments: { path: '/machine/peripheral/balloon0', property: 'guest-stats-polling-interval', value: 0 } });

    // Three free-page-hint rounds, each with a fresh command id.
    const ids: number[] = [];
    const ranges: number[] = [];
    br.device.onFreePageHint = () => { ranges[ranges.length - 1]!++; };
    const memFreeKiB = async (): Promise<number> => Number(/^MemFree:\s+(\d+)/m.exec(await guest.run('grep MemFree /proc/meminfo'))![1]);
    const free0 = await memFreeKiB();
    for (let round = 0; round < 3; round++) {
      ranges.push(0);
      const r = br.qmp({ execute: 'x-balloonlab-free-page-hint-start' }) as { return: { 'cmd-id': number } };
      ids.push(r.return['cmd-id']);
      const h0 = br.device.counters.hintedPages;
      // The guest echoes the id (START), hints, then sends STOP.
      await waitUntil(`round ${round} hints and stops`, () => br.device.counters.hintedPages > h0 && br.device.freePageHintStatus === 0, 30_000);
      br.qmp({ execute: 'x-balloonlab-free-page-hint-done' });
      // DONE: the guest gives the hinted pages back; a new round must not find them still held.
      const deadline = Date.now() + 20_000;
      while (await memFreeKiB() < free0 - 8 * 1024) {
        assert.ok(Date.now() < deadline, 'the guest did not return the hinted pages after DONE');
        await new Promise((r) => setTimeout(r, 200));
      }
      t.diagnostic(`hint round ${round}: id 0x${ids[round]!.toString(16)}, ${br.device.counters.hintedPages - h0} pages in ${ranges[round]} ranges`);
    }
    assert.deepEqual(ids, [0x80000000, 0x80000001, 0x80000002]);
    assert.equal(await guest.run('echo alive'), 'alive\n');
    assertHealthy(br);
  } finally {
    br.detach();
    guest.stop();
  }
});

test('real guest with DEFLATE_ON_OOM survives over-inflation: MemTotal stays, balloon_deflate rises', { timeout: 300_000, skip: SKIP }, async (t) => {
  const { guest, br } = await bootWithBridge({ deflateOnOom: true });
  try {
    assert.ok(hasFeature(br.device.t.driverFeatures, VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
    const total0 = await memTotalKiB(guest);
    br.qmp({ execute: 'balloon', arguments: { value: 96 * MiB } });
    await waitUntil('actual = 96 MiB', () => actual(br) === 96 * MiB);
    assert.equal(await memTotalKiB(guest), total0, 'with DEFLATE_ON_OOM the balloon does not shrink MemTotal');

    // Ask for almost everything, then make the guest need memory.
    br.qmp({ execute: 'balloon', arguments: { value: 4 * MiB } });
    await new Promise((r) => setTimeout(r, 5_000));
    await guest.run('dd if=/dev/zero of=/fill bs=1M count=24 2>&1 | tail -1; rm -f /fill', 60_000);
    const deflated = await vmstat(guest, 'balloon_deflate');
    t.diagnostic(`under pressure: balloon_deflate ${deflated}, device deflate PFNs ${br.device.counters.deflatePfns}, actual ${actual(br) / MiB} MiB`);
    assert.ok(deflated > 0, 'the guest deflated under memory pressure');
    // The driver (inflating toward the target) and its shrinker (deflating) go on
    // fighting; end it before comparing the two sides' counts.
    br.qmp({ execute: 'balloon', arguments: { value: MEMORY_BYTES } });
    await waitUntil('actual = RAM', () => actual(br) === MEMORY_BYTES);
    assert.equal(await vmstat(guest, 'balloon_deflate'), br.device.counters.deflatePfns);
    assert.equal(await vmstat(guest, 'balloon_inflate'), br.device.counters.inflatePfns);
    assert.equal(await guest.run('echo alive'), 'alive\n');
    assert.doesNotMatch(guest.serialLog(), /Kernel panic|System is deadlocked on memory/);
    assertHealthy(br);
  } finally {
    br.detach();
    guest.stop();
  }
});

test('real guest reports free pages (REPORTING) after memory is freed in it, and the host discards them', { timeout: 300_000, skip: SKIP }, async (t) => {
  // On non-PAE i386 pageblock_order is 10 (4 MiB), so page reporting works on 4 MiB
  // blocks and waits until a zone has low watermark + 32 x 4 MiB free: a 128 MiB guest
  // never reports. 384 MiB leaves room above that.
  const { guest, br } = await bootWithBridge({ freePageReporting: true, statsVq: true }, 384 * MiB);
  try {
    assert.ok(hasFeature(br.device.t.driverFeatures, VIRTIO_BALLOON_F_REPORTING), 'REPORTING negotiated');
    // the driver's initial flush (2 s after registering) reports what is free at boot
    await waitUntil('the first page report', () => br.device.counters.reportedPages > 0, 60_000);
    const before = br.device.counters.reportedPages;
    t.diagnostic(`reported at boot: ${before} pages`);
    // a process fills 40 MiB of RAM (the initramfs root is RAM) and the file is removed
    const dd = await guest.exec('dd if=/dev/zero of=/fill bs=1M count=120 2>/dev/null; rm /fill; echo done');
    assert.equal(dd.status, 0, dd.output);
    // freed 2 MiB blocks are reported after the next 2 s delay
    await waitUntil('reports of the freed memory', () => br.device.counters.reportedPages - before >= (16 * MiB) / 4096, 60_000);
    t.diagnostic(`reported after the free: ${br.device.counters.reportedPages - before} pages`);
    assert.ok(br.device.counters.discardedPages > 0, 'the host discarded reported pages');
    assertHealthy(br);
  } finally {
    guest.stop();
    br.detach();
  }
});
