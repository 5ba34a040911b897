/**
 * The host's RAM accounting with many VMs (src/host/host.ts, ram.ts's swap state):
 * random writes, discards, reclaim and OOM kills over a few VMs' RAM, checking after
 * every step that the host's pool is the sum of the running VMs' pages, that guest RAM
 * never holds more than host memory (after the allocation check) and host swap more
 * than the device, that every page is in exactly one state (nothing lost), and that a
 * page the host swapped out keeps its contents.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createSim } from '../../src/sim/clock.js';
import { costTable } from '../../src/sim/cost.js';
import { createHostVm, type HostVm } from '../../src/host/vm.js';
import { RamPageState, RamWrite, ramWrite, ramDiscard, ramReadContent, PageContent } from '../../src/host/ram.js';
import { createHost, hostAddVm, hostAllocCheck, hostShrink, hostOomKill, hostFreePages, checkHost, hostWatermarks, SWAP_CLUSTER_MAX } from '../../src/host/host.js';

const PAGE = 4096;

function vmOf(pages: number): HostVm {
  return createHostVm({ ramSize: pages * PAGE, ranges: [{ start: 0, end: pages * PAGE }], memPrealloc: false, balloon: null }, createSim(), costTable());
}

/** Recounts every state from the page array. */
function recount(vm: HostVm): [number, number, number, number] {
  const c: [number, number, number, number] = [0, 0, 0, 0];
  for (let p = 0; p < vm.ram.maxPhysPfn; p++) c[vm.ram.state[p]!]!++;
  return c;
}

const op = fc.oneof(
  fc.record({ kind: fc.constant('write' as const), vm: fc.nat(2), at: fc.nat(4095), n: fc.integer({ min: 1, max: 600 }), data: fc.boolean() }),
  fc.record({ kind: fc.constant('discard' as const), vm: fc.nat(2), at: fc.nat(4095), n: fc.integer({ min: 1, max: 900 }) }),
  fc.record({ kind: fc.constant('shrink' as const), n: fc.integer({ min: 1, max: 500 }) }),
  fc.record({ kind: fc.constant('kill' as const) }),
);

test('host RAM accounting: the pool is the running VMs\' sum, guest RAM fits host memory and swap, every page in one state, swapped pages keep their contents', () => {
  fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), fc.integer({ min: 0, max: 3000 }), (ops, swapPages) => {
    const host = createHost({ memoryBytes: 6000 * PAGE, swapBytes: swapPages * PAGE, reservedBytes: 200 * PAGE }, createSim(), costTable());
    const vms = [vmOf(4096), vmOf(4096), vmOf(4096)];
    vms.forEach((v, i) => hostAddVm(host, `vm${i}`, v));
    for (const o of ops) {
      if (o.kind === 'write') {
        if (!host.guests[o.vm]!.running) continue;
        const ram = vms[o.vm]!.ram;
        const n = Math.min(o.n, ram.maxPhysPfn - o.at);
        ramWrite(ram, o.at, n, o.data ? RamWrite.data : RamWrite.zero);
        hostAllocCheck(host);
        // after the host's allocation path: resident guest RAM fits host memory (unless nothing is left to kill)
        if (host.guests.some((g) => g.running)) assert.ok(hostFreePages(host) >= host.wmarkMin || host.guests.every((g) => !g.running), `free ${hostFreePages(host)} below min ${host.wmarkMin}`);
      } else if (o.kind === 'discard') {
        if (!host.guests[o.vm]!.running) continue;
        ramDiscard(vms[o.vm]!.ram, o.at, o.n);
      } else if (o.kind === 'shrink') {
        // swapped pages keep their contents: remember them, swap, compare
        const before = vms.map((v) => Array.from({ length: v.ram.maxPhysPfn }, (_, p) => [v.ram.state[p], ramReadContent(v.ram, p), v.ram.gen[p]] as const));
        const [, got] = hostShrink(host, o.n);
        assert.ok(got <= o.n + vms.length, 'reclaims about what was asked');
        vms.forEach((v, i) => {
          if (!host.guests[i]!.running) return;
          for (let p = 0; p < v.ram.maxPhysPfn; p++) {
            if (v.ram.state[p] === RamPageState.swapped && before[i]![p]![0] === RamPageState.resident) {
              assert.equal(ramReadContent(v.ram, p), before[i]![p]![1]);
              assert.equal(v.ram.gen[p], before[i]![p]![2]);
            }
          }
        });
      } else {
        hostOomKill(host);
      }
      assert.equal(checkHost(host), null);
      for (let i = 0; i < vms.length; i++) {
        const v = vms[i]!, [untouched, resident, discarded, swapped] = recount(v);
        assert.equal(untouched + resident + discarded + swapped, v.ram.maxPhysPfn, 'every page in one state');
        if (!host.guests[i]!.running) continue;
        assert.equal(resident, v.ram.residentPages, 'resident count');
        assert.equal(swapped, v.ram.swappedPages, 'swapped count');
      }
      assert.ok(host.pool.swappedPages <= host.swapPages, 'host swap holds no more than the device');
      assert.ok(host.pool.residentPages + host.reservedPages <= host.totalPages + 600, 'guest RAM resident within host memory (one write may overshoot before the check)');
    }
  }), { numRuns: 150, seed: 18 });
});

test('a guest write to a host-swapped page swaps it in (one swap-in, contents then the write\'s)', () => {
  const host = createHost({ memoryBytes: 1 << 30, swapBytes: 1 << 28, reservedBytes: 0 }, createSim(), costTable());
  const v = vmOf(1024);
  hostAddVm(host, 'a', v);
  ramWrite(v.ram, 0, 1024, RamWrite.data);
  v.ram.referenced!.fill(0);
  const [, got] = hostShrink(host, 10);
  assert.equal(got, 10);
  assert.equal(v.ram.swappedPages, 10);
  assert.equal(ramReadContent(v.ram, 0), PageContent.data, 'a swapped page reads as its contents');
  ramWrite(v.ram, 0, 4, RamWrite.zero);
  assert.equal(v.ram.swapIns, 4);
  assert.equal(v.ram.swappedPages, 6);
  assert.equal(v.ram.residentPages, 1018);
  assert.equal(host.pool.residentPages, 1018);
  // a discard of a swapped page frees its swap slot without a swap-in (MADV_DONTNEED on a swap entry)
  ramDiscard(v.ram, 4, 6);
  assert.equal(v.ram.swappedPages, 0);
  assert.equal(v.ram.swapIns, 4);
  assert.equal(host.pool.swappedPages, 0);
});

test('the reclaim scanner gives referenced pages a second chance (CLOCK) and scans VMs in proportion to their resident sets', () => {
  const host = createHost({ memoryBytes: 1 << 30, swapBytes: 1 << 28, reservedBytes: 0 }, createSim(), costTable());
  const a = vmOf(4096), b = vmOf(4096);
  hostAddVm(host, 'a', a);
  hostAddVm(host, 'b', b);
  ramWrite(a.ram, 0, 3000, RamWrite.data);
  ramWrite(b.ram, 0, 1000, RamWrite.data);
  // everything was just written: the first pass only clears referenced bits
  a.ram.referenced!.fill(0, 0, 1500);
  const [, got] = hostShrink(host, 400);
  assert.equal(a.ram.swappedPages, 300, 'a holds 3/4 of the resident pages: 3/4 of the reclaim');
  assert.equal(got, 400);
  for (let p = 0; p < 300; p++) assert.equal(a.ram.state[p], RamPageState.swapped, 'the cold pages go first');
  assert.equal(b.ram.swappedPages, 100);
});

test('mm/page_alloc.c watermarks of a 32 GiB host: min_free_kbytes = sqrt(lowmem KiB x 16), low and high one step of max(min/4, 0.1 % of the zone) each', () => {
  const pages = (32 * 2 ** 30) / PAGE;
  const w = hostWatermarks(pages);
  assert.equal(w.min, Math.floor(Math.floor(Math.sqrt(32 * 2 ** 20 * 16)) / 4)); // 23170 KiB
  assert.equal(w.low - w.min, Math.floor(pages * 10 / 10000));
  assert.equal(w.high - w.low, w.low - w.min);
  // a small host: min/4 is the larger step
  const s = hostWatermarks(65536);
  assert.equal(s.low - s.min, Math.floor(s.min / 4));
});

test('past its swap the host OOM-kills the VM with the most resident and swapped pages; its memory comes back at once', () => {
  const host = createHost({ memoryBytes: 3000 * PAGE, swapBytes: 100 * PAGE, reservedBytes: 0 }, createSim(), costTable());
  const a = vmOf(2048), b = vmOf(2048);
  hostAddVm(host, 'a', a);
  hostAddVm(host, 'b', b);
  const killed: number[] = [];
  host.onOomKill = (i) => killed.push(i);
  ramWrite(a.ram, 0, 1200, RamWrite.data);
  assert.equal(hostAllocCheck(host), 0);
  for (let off = 0; off < 2048; off += SWAP_CLUSTER_MAX) {
    ramWrite(b.ram, off, SWAP_CLUSTER_MAX, RamWrite.data);
    hostAllocCheck(host);
    if (killed.length) break;
  }
  assert.deepEqual(killed, [1], 'b grew past a (1200 pages) before the host ran out');
  assert.equal(host.guests[1]!.running, false);
  assert.equal(host.oomKills.length, 1);
  assert.equal(host.pool.residentPages, a.ram.residentPages);
  assert.equal(host.pool.swappedPages, a.ram.swappedPages);
  assert.equal(checkHost(host), null);
  assert.ok(hostFreePages(host) > host.wmarkHigh);
});
