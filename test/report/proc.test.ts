/**
 * The /proc views against a real Linux 6.1 guest's files (test/fixtures): layout for
 * a freshly booted model guest, byte-exact output once the model holds the real
 * guest's numbers, internal consistency, and the fragmentation indices.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { type Guest, createGuest, defaultGuestConfig } from '../../src/guest/guest.js';
import { createMemMap, MAX_ORDER, MIGRATE_TYPES, PAGEBLOCK_NR_PAGES, MigrateType, setPageblockMigratetype } from '../../src/guest/mm/memmap.js';
import { type Zone, ZoneType, Wmark, createZone, zoneEndPfn } from '../../src/guest/mm/mmzone.js';
import { ZoneStat, ZONE_STAT_NAMES, NUMA_STAT_NAMES, NODE_STAT_NAMES, VM_EVENT_NAMES } from '../../src/guest/mm/vmstat_items.js';
import {
  fragmentationIndex, unusableFreeIndex, fragmentationIndexFloat, unusableFreeIndexFloat,
} from '../../src/guest/mm/fragmentation.js';
import {
  procVmstat, procBuddyinfo, procPagetypeinfo, procMeminfo, procZoneinfo, procExtfragIndex, procUnusableIndex,
  calculateNormalThreshold, zonePageblockCounts,
} from '../../src/report/proc.js';

const FIXTURES = new URL('../../../test/fixtures/linux-6.1-guest-1GiB-boot/', import.meta.url);
const fixture = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');
const lines = (s: string): string[] => s.replace(/\n$/, '').split('\n');
const maskNumbers = (s: string): string => s.replace(/\d+/g, '#');

let booted: Guest | undefined;
/** A freshly booted default guest (1 GiB, 1 vCPU), shared by the read-only tests. */
function guest(): Guest {
  booted ??= createGuest(defaultGuestConfig());
  return booted;
}

function populatedZones(g: Guest): Zone[] {
  return g.pgdat.zones.filter((z) => z.presentPages > 0);
}

// ---------------------------------------------------------------------------------
// Layout of a freshly booted guest against the fixture

test('vmstat: the same counter names in the same order as the real guest, one "name value" per line', () => {
  const ours = lines(procVmstat(guest()));
  const real = lines(fixture('vmstat'));
  assert.deepEqual(ours.map((l) => l.split(' ')[0]), real.map((l) => l.split(' ')[0]));
  for (const l of ours) assert.match(l, /^[a-z0-9_]+ \d+$/);
  assert.equal(ours.at(-1), 'nr_unstable 0');
});

test('buddyinfo: the fixture layout, the same zones, trailing space kept', () => {
  const ours = lines(procBuddyinfo(guest()));
  const real = lines(fixture('buddyinfo'));
  const layout = /^Node 0, zone [ A-Za-z0-9]{8}(?: [ \d]{5}\d){11} $/;
  for (const l of real) assert.match(l, layout);
  for (const l of ours) assert.match(l, layout);
  const zoneName = (l: string) => l.slice(13, 21).trim();
  assert.deepEqual(ours.map(zoneName), real.map(zoneName));
  assert.deepEqual(ours.map((l) => l.length), real.map((l) => l.length));
});

test('pagetypeinfo: identical header lines and row prefixes, same column layout', () => {
  const ours = lines(procPagetypeinfo(guest()));
  const real = lines(fixture('pagetypeinfo'));
  assert.equal(ours.length, real.length);
  for (let i = 0; i < real.length; i++) {
    const r = real[i]!, o = ours[i]!;
    if (!/^Node/.test(r)) {
      assert.equal(o, r, `header line ${i + 1}`);
      continue;
    }
    const prefix = r.match(/^Node +0, zone +\S+(?:, type +\S+)? /)![0];
    assert.equal(o.slice(0, prefix.length), prefix, `row prefix, line ${i + 1}`);
    assert.equal(o.length, r.length, `row width, line ${i + 1}`);
    assert.equal(maskNumbers(o).replace(/ +/g, ' '), maskNumbers(r).replace(/ +/g, ' '));
  }
});

test('zoneinfo: the same sequence of fields as the real guest, numbers masked', () => {
  const ours = lines(procZoneinfo(guest())).map(maskNumbers);
  const real = lines(fixture('zoneinfo')).map(maskNumbers);
  assert.deepEqual(ours, real);
});

test('zoneinfo: one pageset block and vm stats threshold per cpu', () => {
  const g = createGuest(defaultGuestConfig({ vcpus: 2 }));
  const text = procZoneinfo(g);
  const dma32 = text.slice(text.indexOf('zone    DMA32'), text.indexOf('zone   Normal'));
  assert.match(dma32, /\n  pagesets\n    cpu: 0\n {14}count: \d+\n {14}high:  \d+\n {14}batch: \d+\n  vm stats threshold: \d+\n    cpu: 1\n {14}count: \d+\n {14}high:  \d+\n {14}batch: \d+\n  vm stats threshold: \d+\n  node_unreclaimable:  0\n  start_pfn:           4096\n/);
});

test('zoneinfo: start_pfn is the physical pfn (Normal starts at 4 GiB on a 4 GiB guest)', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 4 * 1024 ** 3 }));
  const text = procZoneinfo(g);
  const normal = text.slice(text.indexOf('Node 0, zone   Normal'), text.indexOf('Node 0, zone  Movable'));
  assert.match(normal, /\n  start_pfn:           1048576\n$/);
});

test('meminfo: the same keys in the same order, values right-aligned in the same column', () => {
  const ours = lines(procMeminfo(guest()));
  const real = lines(fixture('meminfo'));
  const key = (l: string) => l.slice(0, l.indexOf(':'));
  assert.deepEqual(ours.map(key), real.map(key));
  assert.deepEqual(ours.map((l) => l.length), real.map((l) => l.length));
  for (let i = 0; i < real.length; i++) {
    // digits masked one for one, then the run of spaces before the value: the unit and
    // the end column must agree.
    const shape = (l: string) => l.replace(/\d/g, '#').replace(/ +#+/, ' #');
    assert.equal(shape(ours[i]!), shape(real[i]!), `line ${i + 1}`);
  }
});

// ---------------------------------------------------------------------------------
// Byte-exact output from the real guest's numbers

type ZoneFixture = {
  name: string;
  values: Map<string, number>;
  protection: number[];
  pcp: { count: number; high: number; batch: number }[];
};

/** Parses the fixture's zoneinfo into per-zone values and the per-node counters. */
function parseZoneinfo(text: string): { zones: ZoneFixture[]; node: Map<string, number> } {
  const zones: ZoneFixture[] = [];
  const node = new Map<string, number>();
  let inNode = false;
  for (const l of lines(text)) {
    let m: RegExpMatchArray | null;
    if ((m = l.match(/^Node 0, zone +(\S+)$/))) {
      zones.push({ name: m[1]!, values: new Map(), protection: [], pcp: [] });
      inNode = false;
    } else if (l === '  per-node stats') {
      inNode = true;
    } else if ((m = l.match(/^ +protection: \((.*)\)$/))) {
      zones.at(-1)!.protection = m[1]!.split(', ').map(Number);
    } else if ((m = l.match(/^ +(count|high|batch): +(\d+)$/))) {
      const z = zones.at(-1)!;
      if (m[1] === 'count') z.pcp.push({ count: 0, high: 0, batch: 0 });
      z.pcp.at(-1)![m[1] as 'count' | 'high' | 'batch'] = Number(m[2]);
    } else if ((m = l.match(/^ +(pages free|[a-z_]+(?: [a-z_]+)*):? +(\d+)$/))) {
      if (m[1] === 'pages free') inNode = false;
      (inNode ? node : zones.at(-1)!.values).set(m[1]!, Number(m[2]));
    }
  }
  return { zones, node };
}

/**
 * A guest whose counters, watermarks, free lists and pageblocks hold the real guest's
 * numbers (its page map is not consistent with them: only the printing is tested).
 */
function guestWithFixtureState(): Guest {
  const g = createGuest(defaultGuestConfig());
  const pgdat = g.pgdat;
  const { zones, node } = parseZoneinfo(fixture('zoneinfo'));
  for (let i = 0; i < NODE_STAT_NAMES.length; i++) pgdat.nodeStat[i] = node.get(NODE_STAT_NAMES[i]!)!;
  const vmstat = new Map(lines(fixture('vmstat')).map((l) => [l.split(' ')[0]!, Number(l.split(' ')[1])]));
  for (let i = 0; i < VM_EVENT_NAMES.length; i++) pgdat.events[i] = vmstat.get(VM_EVENT_NAMES[i]!)!;
  const buddy = lines(fixture('buddyinfo')).map((l) => l.trim().split(/ +/).slice(4).map(Number));
  const ptRows = lines(fixture('pagetypeinfo')).filter((l) => /, type /.test(l)).map((l) => l.trim().split(/ +/).slice(6).map(Number));
  const blockRows = lines(fixture('pagetypeinfo')).filter((l) => /^Node 0, zone/.test(l)).map((l) => l.trim().split(/ +/).slice(4).map(Number));
  for (let zi = 0; zi < pgdat.zones.length; zi++) {
    const z = pgdat.zones[zi]!, f = zones[zi]!;
    const v = (k: string) => f.values.get(k)!;
    z.watermarkBoost = v('boost');
    z.watermark[Wmark.min] = v('min') - z.watermarkBoost;
    z.watermark[Wmark.low] = v('low') - z.watermarkBoost;
    z.watermark[Wmark.high] = v('high') - z.watermarkBoost;
    z.spannedPages = v('spanned');
    z.presentPages = v('present');
    z.managedPages = v('managed');
    f.protection.forEach((p, j) => { z.lowmemReserve[j] = p; });
    z.vmStat.fill(0);
    z.numaStat.fill(0);
    z.vmStat[ZoneStat.nr_free_pages] = v('pages free');
    ZONE_STAT_NAMES.forEach((n, k) => { if (f.values.has(n)) z.vmStat[k] = f.values.get(n)!; });
    NUMA_STAT_NAMES.forEach((n, k) => { if (f.values.has(n)) z.numaStat[k] = f.values.get(n)!; });
    f.pcp.forEach((p, c) => Object.assign(z.pcp[c]!, p));
    if (z.presentPages === 0) continue;
    // free lists and pageblocks as the real guest had them
    z.nrFree.set(buddy[zi]!);
    for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
      for (let o = 0; o < MAX_ORDER; o++) z.nrFreeMt[o * MIGRATE_TYPES + mt] = ptRows[zi * MIGRATE_TYPES + mt]![o]!;
    }
    let pfn = z.zoneStartPfn;
    blockRows[zi]!.forEach((n, mt) => {
      for (let k = 0; k < n; k++, pfn += PAGEBLOCK_NR_PAGES) setPageblockMigratetype(pgdat.map, pfn, mt as MigrateType);
    });
  }
  return g;
}

test('zoneinfo, buddyinfo, pagetypeinfo: byte-exact from the real guest\'s numbers', () => {
  const g = guestWithFixtureState();
  assert.equal(procZoneinfo(g), fixture('zoneinfo'));
  assert.equal(procBuddyinfo(g), fixture('buddyinfo'));
  assert.equal(procPagetypeinfo(g), fixture('pagetypeinfo'));
});

test('vmstat: byte-exact from the real guest\'s numbers, dirty thresholds computed like global_dirty_limits', () => {
  const g = guestWithFixtureState();
  const ours = lines(procVmstat(g));
  const real = lines(fixture('vmstat'));
  assert.equal(ours.length, real.length);
  for (let i = 0; i < real.length; i++) {
    // /proc/vmstat's NUMA counters are folded separately from zoneinfo's per-zone ones
    // and do not sum to them in the real guest: skip those six.
    if (/^numa_(hit|miss|foreign|interleave|local|other) /.test(real[i]!)) continue;
    assert.equal(ours[i], real[i]);
  }
  assert.ok(ours.includes('nr_dirty_threshold 44303'));
  assert.ok(ours.includes('nr_dirty_background_threshold 22124'));
});

test('meminfo: byte-exact from the real guest\'s numbers except the untracked Committed_AS and VmallocUsed', () => {
  const g = guestWithFixtureState();
  const ours = lines(procMeminfo(g));
  const real = lines(fixture('meminfo'));
  assert.equal(ours.length, real.length);
  for (let i = 0; i < real.length; i++) {
    if (/^(Committed_AS|VmallocUsed):/.test(real[i]!)) continue;
    assert.equal(ours[i], real[i]);
  }
  // MemAvailable (si_mem_available), CommitLimit and DirectMap come out as in the kernel
  assert.ok(ours.includes('MemAvailable:     890796 kB'));
  assert.ok(ours.includes('CommitLimit:      498312 kB'));
});

test('calculate_normal_threshold: 2 for DMA and 8 for DMA32 of the real guest', () => {
  const g = guestWithFixtureState();
  assert.equal(calculateNormalThreshold(g.pgdat.zones[ZoneType.dma]!, 1), 2);
  assert.equal(calculateNormalThreshold(g.pgdat.zones[ZoneType.dma32]!, 1), 8);
  // 2 * fls(64) * (1 + fls(245316 >> 15)) = 2 * 7 * 4
  assert.equal(calculateNormalThreshold(g.pgdat.zones[ZoneType.dma32]!, 64), 56);
  // capped at 125 (a 4 TiB zone)
  assert.equal(calculateNormalThreshold({ ...g.pgdat.zones[ZoneType.dma32]!, managedPages: 2 ** 30 }, 64), 125);
});

// ---------------------------------------------------------------------------------
// Internal consistency

test('buddyinfo counts equal zone.nrFree', () => {
  const g = guest();
  const rows = lines(procBuddyinfo(g)).map((l) => l.trim().split(/ +/).slice(4).map(Number));
  assert.deepEqual(rows, populatedZones(g).map((z) => Array.from(z.nrFree)));
});

test('pagetypeinfo: per-type rows sum to the buddyinfo row; block counts sum to the zone\'s pageblocks', () => {
  const g = guest();
  const text = lines(procPagetypeinfo(g));
  const buddy = lines(procBuddyinfo(g)).map((l) => l.trim().split(/ +/).slice(4).map(Number));
  const zones = populatedZones(g);
  const freeRows = text.filter((l) => /, type /.test(l)).map((l) => l.trim().split(/ +/).slice(6).map(Number));
  assert.equal(freeRows.length, zones.length * MIGRATE_TYPES);
  zones.forEach((_z, zi) => {
    const sum = new Array<number>(MAX_ORDER).fill(0);
    for (let mt = 0; mt < MIGRATE_TYPES; mt++) freeRows[zi * MIGRATE_TYPES + mt]!.forEach((n, o) => { sum[o]! += n; });
    assert.deepEqual(sum, buddy[zi]);
  });
  const blockRows = text.filter((l) => /^Node 0, zone/.test(l)).map((l) => l.trim().split(/ +/).slice(4).map(Number));
  const realBlocks = lines(fixture('pagetypeinfo')).filter((l) => /^Node 0, zone/.test(l)).map((l) => l.trim().split(/ +/).slice(4).map(Number));
  zones.forEach((z, zi) => {
    const total = blockRows[zi]!.reduce((a, b) => a + b, 0);
    // one sample per pageblock step from zone_start_pfn
    assert.equal(total, Math.ceil((zoneEndPfn(z) - z.zoneStartPfn) / PAGEBLOCK_NR_PAGES));
    assert.deepEqual(blockRows[zi], zonePageblockCounts(g, z));
    // the model spans the same zones as the real guest, so the same number of pageblocks
    assert.equal(total, realBlocks[zi]!.reduce((a, b) => a + b, 0));
  });
});

test('meminfo MemFree and vmstat nr_free_pages equal the zones\' nr_free_pages and the buddy blocks', () => {
  const g = guest();
  let free = 0, inBlocks = 0;
  for (const z of g.pgdat.zones) {
    free += z.vmStat[ZoneStat.nr_free_pages]!;
    for (let o = 0; o < MAX_ORDER; o++) inBlocks += z.nrFree[o]! * 2 ** o;
  }
  assert.equal(free, inBlocks);
  assert.ok(procMeminfo(g).includes(`\nMemFree:        ${String(free * 4).padStart(8)} kB\n`));
  assert.ok(procVmstat(g).startsWith(`nr_free_pages ${free}\n`));
  const zoneinfoFree = [...procZoneinfo(g).matchAll(/\n  pages free +(\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
  assert.equal(zoneinfoFree, free);
});

// ---------------------------------------------------------------------------------
// Fragmentation indices (mm/vmstat.c), on hand-made zones

/** A one-pageblock-pair zone whose free lists hold exactly `blocks` (order -> count). */
function handZone(blocks: Record<number, number>): Zone {
  const map = createMemMap(4 * PAGEBLOCK_NR_PAGES);
  const z = createZone(map, ZoneType.dma, 0, map.nrPages, map.nrPages, 1);
  for (const [o, n] of Object.entries(blocks)) z.nrFree[Number(o)] = n;
  return z;
}

test('fragmentation index: -1000 wherever a suitable block exists', () => {
  const z = handZone({ 10: 1 });
  for (let o = 0; o < MAX_ORDER; o++) {
    assert.equal(fragmentationIndex(z, o), -1000);
    assert.equal(fragmentationIndexFloat(z, o), -1);
    assert.equal(unusableFreeIndex(z, o), 0);
  }
});

test('fragmentation index and unusable index follow the kernel formulas', () => {
  // 2 order-0 + 1 order-1 + 1 order-3 blocks: 12 free pages in 4 blocks
  const z = handZone({ 0: 2, 1: 1, 3: 1 });
  // order 4: nothing suitable -> 1000 - (1000 + 12 * 1000 / 16) / 4 = 1000 - 1750 / 4 = 563
  assert.equal(fragmentationIndex(z, 4), 563);
  assert.equal(unusableFreeIndex(z, 4), 1000);
  // order 2: the order-3 block gives 2 suitable blocks -> -1000; unusable (12 - 8) / 12
  assert.equal(fragmentationIndex(z, 2), -1000);
  assert.equal(unusableFreeIndex(z, 2), 333);
  assert.equal(unusableFreeIndexFloat(z, 2), 0.333);
  // order 0: every free page is usable
  assert.equal(unusableFreeIndex(z, 0), 0);
  // 4 single pages, order 2: 1000 - (1000 + 4 * 1000 / 4) / 4 = 500
  assert.equal(fragmentationIndex(handZone({ 0: 4 }), 2), 500);
  // nothing free: fragmentation 0 (no blocks), unusable 1000 (all "unusable")
  assert.equal(fragmentationIndex(handZone({}), 3), 0);
  assert.equal(unusableFreeIndex(handZone({}), 3), 1000);
  // out-of-range order: the kernel WARNs and returns 0
  assert.equal(fragmentationIndex(z, MAX_ORDER), 0);
});

test('extfrag_index prints "%2d.%03d" with C division, negative remainders included', () => {
  const g = createGuest(defaultGuestConfig());
  const dma = g.pgdat.zones[ZoneType.dma]!;
  dma.nrFree.fill(0);
  dma.nrFree[0] = 1; // one free page: order k gives 1000 - (1000 + 1000 / 2^k) = -(1000 >> k)
  const first = lines(procExtfragIndex(g))[0]!;
  assert.equal(first, 'Node 0, zone      DMA -1.000  0.-500  0.-250  0.-125  0.-62  0.-31  0.-15  0.-07  0.-03  0.-01  0.000 ');
  const unusable = lines(procUnusableIndex(g))[0]!;
  assert.equal(unusable, 'Node 0, zone      DMA 0.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 ');
});

test('extfrag_index and unusable_index: one line per populated zone, 11 values', () => {
  const g = guest();
  const zones = populatedZones(g);
  const ext = lines(procExtfragIndex(g));
  const unu = lines(procUnusableIndex(g));
  assert.equal(ext.length, zones.length);
  assert.equal(unu.length, zones.length);
  ext.forEach((l, i) => {
    assert.match(l, /^Node 0, zone [ A-Za-z0-9]{8} (?:[ -]\d\.-?\d{2,3} ){11}$/);
    assert.equal(l.slice(13, 21).trim(), zones[i]!.name);
  });
  unu.forEach((l) => assert.match(l, /^Node 0, zone [ A-Za-z0-9]{8} (?:\d\.\d{3} ){11}$/));
  // the booted guest has free order-10 blocks in both zones: every order could be served
  for (const l of ext) assert.equal(l.slice(22), '-1.000 '.repeat(MAX_ORDER));
});
