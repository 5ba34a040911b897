/** The invariant checker must catch corruption (tests of the check itself). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createGuest, defaultGuestConfig } from '../../src/guest/guest.js';
import { checkPgdat, censusPgdat, assertPgdat, InvariantError } from '../../src/guest/mm/check.js';
import { Owner, PageType, listFirst, setPageOrder, setPageOwner, setPageType } from '../../src/guest/mm/memmap.js';
import { freeListHead } from '../../src/guest/mm/mmzone.js';
import { ZoneStat } from '../../src/guest/mm/vmstat_items.js';

const small = () => createGuest(defaultGuestConfig({ memoryBytes: 128 * 1024 * 1024 }));

test('a booted guest passes and its census accounts for every page', () => {
  const g = small();
  const c = censusPgdat(g.pgdat);
  assert.notEqual(typeof c, 'string', String(c));
  if (typeof c === 'string') return;
  assert.equal(c.free + c.pcp + c.allocated + c.reserved + c.ballooned, g.pgdat.map.nrPages);
  assert.ok(c.reserved > 0 && c.allocated > 0 && c.free > 0);
});

test('a page lost from the allocator breaks conservation', () => {
  const g = small();
  const pfn = listFirst(g.pgdat.map, freeListHead(g.pgdat.zones[1]!, 10, 1));
  setPageOwner(g.pgdat.map, pfn + 3, Owner.anon); // an "allocated" page inside a free block
  assert.match(checkPgdat(g.pgdat) ?? '', /inside free block/);
});

test('a wrong nr_free_pages is caught', () => {
  const g = small();
  g.pgdat.zones[1]!.vmStat[ZoneStat.nr_free_pages]! += 1;
  assert.match(checkPgdat(g.pgdat) ?? '', /nr_free_pages/);
});

test('a buddy page off its free list is caught', () => {
  const g = small();
  const z = g.pgdat.zones[1]!;
  const pfn = listFirst(g.pgdat.map, freeListHead(z, 10, 1));
  setPageOrder(g.pgdat.map, pfn, 9); // now claims order 9 while listed at order 10
  assert.match(checkPgdat(g.pgdat) ?? '', /not inside any free block|order/);
});

test('an unmerged buddy pair is caught', () => {
  const g = small();
  const map = g.pgdat.map;
  const z = g.pgdat.zones[1]!;
  const pfn = listFirst(map, freeListHead(z, 10, 1));
  // Split the order-10 block into two order-9 halves by hand without re-listing them
  setPageOrder(map, pfn, 9);
  setPageType(map, pfn + 512, PageType.buddy);
  setPageOrder(map, pfn + 512, 9);
  const r = checkPgdat(g.pgdat) ?? '';
  assert.match(r, /not merged|listed/);
});

test('a balloon page that is not PageOffline is caught; assertPgdat throws InvariantError', () => {
  const g = small();
  const z = g.pgdat.zones[1]!;
  const pfn = listFirst(g.pgdat.map, freeListHead(z, 10, 1));
  setPageOwner(g.pgdat.map, pfn + 1, Owner.balloon);
  assert.throws(() => assertPgdat(g.pgdat, 'in test'), InvariantError);
});
