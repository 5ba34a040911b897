/**
 * splitmix64 as the real-guest helpers compute it (scripts/real-guest/qemu/bl-mem.c):
 * exact 64-bit arithmetic on 32-bit halves, checked against the header's vectors and a
 * BigInt reference, and the Fisher-Yates prefix bl-mem's `free ... random:SEED` takes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSplitmix64, splitmix64BigInt, splitmix64Mod } from '../../src/sim/rng.js';

const M64 = (1n << 64n) - 1n;

/** The header's definition, in BigInt: the reference the 32-bit halves are checked against. */
function reference(seed: bigint): () => bigint {
  let s = seed;
  return () => {
    s = (s + 0x9e3779b97f4a7c15n) & M64;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
    return z ^ (z >> 31n);
  };
}

test('seed 1 gives the first outputs bl-mem.c lists', () => {
  const g = createSplitmix64(1);
  assert.deepEqual([1, 2, 3, 4, 5].map(() => splitmix64BigInt(g)),
    [0x910a2dec89025cc1n, 0xbeeb8da1658eec67n, 0xf893a2eefb32555en, 0x71c18690ee42c90bn, 0x71bb54d8d101b5b9n]);
});

test('the 32-bit halves agree with 64-bit arithmetic for seeds across the range, and % n is the uint64 remainder', () => {
  for (const seed of [0n, 1n, 42n, 0xffffffffn, 0x100000000n, BigInt(Number.MAX_SAFE_INTEGER), M64]) {
    const g = createSplitmix64(seed), r = reference(seed);
    for (let i = 0; i < 2000; i++) assert.equal(splitmix64BigInt(g), r(), `seed ${seed}, draw ${i}`);
  }
  const g = createSplitmix64(7n), r = reference(7n);
  for (const n of [1, 2, 3, 10, 1000, 65537, 2 ** 21 + 3, 2 ** 29, 2 ** 32 - 5, 2 ** 36 + 11]) {
    for (let i = 0; i < 200; i++) assert.equal(splitmix64Mod(g, n), Number(r() % BigInt(n)), `n ${n}`);
  }
  assert.throws(() => createSplitmix64(-1), RangeError);
  assert.throws(() => createSplitmix64(1n << 64n), RangeError);
});

test('the seeded Fisher-Yates prefix: N = 10, K = 5, random:1 frees candidates 5 8 1 3 7', () => {
  const g = createSplitmix64(1);
  const a = Array.from({ length: 10 }, (_, i) => i);
  const freed: number[] = [];
  for (let i = 0; i < 5; i++) {
    const j = i + splitmix64Mod(g, 10 - i);
    [a[i], a[j]] = [a[j]!, a[i]!];
    freed.push(a[i]!);
  }
  assert.deepEqual(freed, [5, 8, 1, 3, 7]);
});
