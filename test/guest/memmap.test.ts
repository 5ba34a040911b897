/**
 * The page map's index arithmetic past 2^29 pages (a 2 TiB guest). A record starts at
 * pfn * 4 int32 words; with a shift, every record from pfn 2^29 on wrapped to a negative
 * index, so writes to those pages and to the list heads (which live after the last page)
 * were silently dropped. The array here is 8 GiB of address space, but only the pages
 * the test touches are ever backed, so it costs a few MiB of RSS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Owner, PageType, PG, createMemMap, listAdd, listAddTail, listCount, listDel, listEmpty, listFirst, listHeadAlloc,
  listLast, listNext, pageFlags, pageMapping, pageOrder, pageOwner, pageRefcount, pageTypeOf, setPageFlag,
  setPageMapping, setPageOrder, setPageOwner, setPageRefcount, setPageType,
} from '../../src/guest/mm/memmap.js';

const BIG = 2 ** 29 + 512; // just past the boundary the shift broke at

test('page records past 2^29 keep their fields, distinct from their neighbours and from pfn 0', () => {
  const map = createMemMap(BIG, 8);
  const pfns = [0, 2 ** 29 - 1, 2 ** 29, 2 ** 29 + 1, BIG - 1];
  pfns.forEach((pfn, i) => {
    setPageOwner(map, pfn, Owner.anon);
    setPageRefcount(map, pfn, i + 1);
    setPageMapping(map, pfn, 1000 + i);
    setPageOrder(map, pfn, i);
    setPageType(map, pfn, PageType.buddy);
    setPageFlag(map, pfn, PG.lru);
  });
  pfns.forEach((pfn, i) => {
    assert.equal(pageOwner(map, pfn), Owner.anon, `owner of ${pfn}`);
    assert.equal(pageRefcount(map, pfn), i + 1, `refcount of ${pfn}`);
    assert.equal(pageMapping(map, pfn), 1000 + i, `mapping of ${pfn}`);
    assert.equal(pageOrder(map, pfn), i, `order of ${pfn}`);
    assert.equal(pageTypeOf(map, pfn), PageType.buddy, `type of ${pfn}`);
    assert.ok(pageFlags(map, pfn) & PG.lru, `flags of ${pfn}`);
  });
  // An untouched page between them stays clear.
  assert.equal(pageOwner(map, 2 ** 29 + 2), Owner.free);
  assert.equal(pageRefcount(map, 2 ** 29 + 2), 0);
});

test('list heads above 2^29 link pages on both sides of the boundary', () => {
  const map = createMemMap(BIG, 8);
  const head = listHeadAlloc(map);
  assert.ok(head >= 2 ** 29, 'the head lives after the last page');
  assert.ok(listEmpty(map, head));
  const low = 7, mid = 2 ** 29 - 1, high = 2 ** 29 + 3, last = BIG - 1;
  listAdd(map, mid, head);
  listAddTail(map, high, head);
  listAdd(map, low, head);
  listAddTail(map, last, head);
  assert.equal(listCount(map, head), 4);
  const order: number[] = [];
  for (let e = listNext(map, head); e !== head; e = listNext(map, e)) order.push(e);
  assert.deepEqual(order, [low, mid, high, last]);
  listDel(map, high);
  assert.equal(listFirst(map, head), low);
  assert.equal(listLast(map, head), last);
  assert.deepEqual([listNext(map, mid)], [last]);
  listDel(map, low); listDel(map, mid); listDel(map, last);
  assert.ok(listEmpty(map, head));
});
