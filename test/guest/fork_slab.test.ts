/**
 * A forked process's slab objects (task_struct, mm_struct ...) and each mapping's
 * vm_area_struct, anon_vma and anon_vma_chain come and go with it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createGuest, defaultGuestConfig } from '../../src/guest/guest.js';
import { kmemCacheByName } from '../../src/guest/mm/slab.js';
import { forkProcess, mmapAnon, faultRange, munmapRange, exitProcess } from '../../src/guest/mm/process.js';
import { checkPgdat } from '../../src/guest/mm/check.js';

const CACHES = ['task_struct', 'mm_struct', 'signal_cache', 'sighand_cache', 'files_cache', 'cred_jar', 'pid', 'vm_area_struct', 'anon_vma', 'anon_vma_chain'] as const;

test('fork takes one object of each task cache, every mapping a vm_area_struct, an anon_vma and a chain; exit gives them all back', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 256 * 1024 * 1024 }));
  const pg = g.pgdat;
  const active = () => Object.fromEntries(CACHES.map((n) => [n, kmemCacheByName(pg, n).inuse]));
  const base = active();
  const procs = [10, 11, 12].map((pid) => forkProcess(pg, pid, 1));
  assert.equal(forkProcess(pg, 10, 1), procs[0], 'an existing pid is not forked again');
  const forked = active();
  for (const n of CACHES.slice(0, 7)) assert.equal(forked[n]! - base[n]!, 3, `${n}: one per process`);
  for (const n of CACHES.slice(7)) assert.equal(forked[n], base[n], `${n}: no mapping yet`);
  // two separate mappings (guard gaps keep them apart), one of them split by a munmap in its middle
  const p = procs[0]!;
  const a = mmapAnon(pg, p, 512, 'default', { guard: true })!;
  const b = mmapAnon(pg, p, 512, 'default', { guard: true })!;
  faultRange(pg, p, a.vma, a.start, 512);
  faultRange(pg, p, b.vma, b.start, 512);
  munmapRange(pg, p, b.start + 100, 10);
  assert.equal(p.mm.vmas.length, 3);
  const mapped = active();
  for (const n of CACHES.slice(7)) assert.equal(mapped[n]! - base[n]!, 3, `${n}: one per mapping`);
  assert.equal(checkPgdat(pg), null);
  for (const q of procs) exitProcess(pg, g.procs, q);
  assert.deepEqual(active(), base, 'all given back at exit');
  assert.equal(checkPgdat(pg), null);
});
