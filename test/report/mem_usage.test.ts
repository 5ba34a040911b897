import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadScenarioText, runScenario } from '../../src/scenario/runner.js';
import { memUsage, formatMemUsage, hibernationSaveable } from '../../src/report/mem_usage.js';
import { pageTypes } from '../../src/report/proc.js';
import { guestPageReadsZero, guestPageUnbacked } from '../../src/machine/machine.js';
import { Owner, pageOwner } from '../../src/guest/mm/memmap.js';

const SCENARIO = `name: mu
guest: { memory: 1GiB }
timeline:
  - { at: 0s, action: process_file, pid: 10, size: 64MiB, dirty: true, file_size: 16KiB }
  - { at: 0s, action: process_file, pid: 12, size: 32MiB }
  - { at: 0s, action: process_fault, pid: 11, size: 128MiB }
  - { at: 1s, action: balloon, value: 640MiB, wait: 60s }
  - { at: 70s, action: snapshot }
`;

test('mem-usage: every page in one class; written page cache is PRI_CACHE (buffer_heads), read page cache NON_PRI_CACHE, anonymous USER; balloon pages are offline, or zero pages the dump faults back in when PageOffline is unknown', () => {
  const { vm } = runScenario(loadScenarioText(SCENARIO, 'mu.yaml').base, {});
  const g = vm.guest, pg = g.pgdat;
  const zero = guestPageReadsZero(vm), unbacked = guestPageUnbacked(vm);
  const k = memUsage(g, zero, unbacked, true), u = memUsage(g, zero, unbacked, false);
  for (const x of [k, u]) assert.equal(x.zero + x.nonPriCache + x.priCache + x.user + x.free + x.offline + x.kernData, x.total, 'the classes cover every page once');
  assert.equal(k.total, pg.map.nrPages);
  assert.equal(k.priCache, 16384, 'one buffer_head a written page: all 64 MiB written carry PG_private');
  assert.equal(k.nonPriCache, 8192 + pg.ownerPages[Owner.shmem]!, 'the 32 MiB read through mpage carry none; boot\'s tmpfs pages are cache too');
  assert.equal(k.user, pg.ownerPages[Owner.anon]! + pg.ownerPages[Owner.hugetlb]!);
  assert.equal(k.offline, 98304, 'the balloon\'s 384 MiB (the guest ballooned to 640 MiB), PageOffline');
  assert.equal(u.offline, 0);
  assert.equal(u.zero - k.zero, 98304, 'unknown, the balloon pages are read: all zero (the host discarded them)');
  assert.equal(u.readDiscarded - k.readDiscarded, 98304, 'and each read faults one back in on the host');
  assert.equal(u.kernData, k.kernData, 'the dump itself is the same size either way');
  // hibernation skips free and offline pages: the image is what is left, the balloon's pages saved only when not offline
  const saved = hibernationSaveable(g, true);
  let pcp = 0;
  for (let pfn = 0; pfn < pg.map.nrPages; pfn++) if (pageOwner(pg.map, pfn) === Owner.pcp) pcp++;
  assert.ok(pcp > 0, 'some pages sit on the per-cpu lists');
  assert.equal(saved, k.total - k.free - pcp - k.offline);
  assert.equal(hibernationSaveable(g, false) - saved, 98304);
  const text = formatMemUsage(k);
  assert.ok(text.startsWith('\nTYPE\t\tPAGES\t\t\tEXCLUDABLE\tDESCRIPTION\n' + '-'.repeat(70) + '\n'));
  assert.match(text, new RegExp(`\nPRI_CACHE\t16384 {11}\tyes\t\tCache pages with private flag\n`));
  assert.match(text, new RegExp(`\nKERN_DATA\t${k.kernData} *\tno\t\tDumpable kernel data \n`));
  assert.match(text, /\nTotal size on system:\t1073741824 {7}Byte\n$/);
});

test('balloon.page_type balloon (PG_balloon, before 4.20): page-types names bit 23 balloon, and makedumpfile reads the balloon pages as zero pages', () => {
  const text = SCENARIO.replace('name: mu\n', 'name: mu\nballoon: { page_type: balloon }\n');
  const { vm } = runScenario(loadScenarioText(text, 'mu.yaml').base, {});
  assert.equal(vm.guest.pgdat.balloonPageType, 'balloon');
  const pt = pageTypes(vm.guest);
  assert.match(pt, /\n0x0000000000800000\t {5}98304 {6}384  _{23}o_+\tballoon\n/);
  assert.doesNotMatch(pt, /offline/);
  const zero = guestPageReadsZero(vm), unbacked = guestPageUnbacked(vm);
  const u = memUsage(vm.guest, zero, unbacked, false); // PG_balloon: not known as offline
  assert.equal(u.offline, 0);
  assert.ok(u.zero >= 98304 && u.readDiscarded >= 98304, `${u.zero} zero pages, ${u.readDiscarded} read from discarded memory`);
});

test('guest.kernel 3.6: balloon pages carry no page flag (PG_balloon is 4.0, PG_offline 4.20): page-types counts them with the flagless pages; page_type is refused', () => {
  const text = SCENARIO.replace('guest: { memory: 1GiB }', "guest: { memory: 1GiB, kernel: '3.6' }");
  const { vm } = runScenario(loadScenarioText(text, 'mu.yaml').base, {});
  assert.equal(vm.guest.pgdat.balloonPageType, 'none');
  const pt = pageTypes(vm.guest);
  assert.doesNotMatch(pt, /offline|balloon|0x0000000000800000/);
  // the flagless row holds the 98304 balloon pages (and the kernel's own flagless pages)
  const flagless = Number(/\n0x0000000000000000\t *(\d+) /.exec(pt)![1]);
  const six = runScenario(loadScenarioText(SCENARIO, 'mu.yaml').base, {});
  const flagless61 = Number(/\n0x0000000000000000\t *(\d+) /.exec(pageTypes(six.vm.guest))![1]);
  assert.ok(flagless >= 98304 && flagless - 98304 < flagless61 + 4096, `3.6 flagless ${flagless}, 6.1 ${flagless61} + the balloon`);
  assert.throws(() => loadScenarioText(text.replace('name: mu\n', 'name: mu\nballoon: { page_type: balloon }\n'), 'mu.yaml'), /balloon\.page_type: Linux 3\.6 has neither PG_balloon/);
});
