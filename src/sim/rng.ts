/**
 * The seeded pseudo-random generator every random choice in balloonlab goes through.
 *
 * xoshiro128** (Blackman & Vigna, 2018): 128 bits of state in four uint32 words,
 * period 2^128 - 1, passes BigCrush, and costs a handful of 32-bit integer ops per
 * draw, which matters on allocator and workload hot paths. The state is seeded from
 * the scenario's seed with splitmix32 so that nearby seeds give unrelated streams.
 *
 * No Math.random() anywhere in the model: a scenario plus its seed determines a run.
 */

/** Generator state: four 32-bit words. Plain data so it can be saved and forked. */
export type Rng = {
  /** xoshiro128** state, never all zero. */
  s: Uint32Array;
};

function splitmix32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Creates a generator from a seed (any integer; only the low 53 bits matter). */
export function createRng(seed: number): Rng {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 0x100000000) >>> 0;
  const sm = splitmix32(lo ^ Math.imul(hi, 0x27d4eb2d));
  const s = new Uint32Array(4);
  for (let i = 0; i < 4; i++) s[i] = sm();
  if ((s[0]! | s[1]! | s[2]! | s[3]!) === 0) s[0] = 1;
  return { s };
}

/** Next uniformly distributed uint32. */
export function rngNext(rng: Rng): number {
  const s = rng.s;
  const s0 = s[0]!, s1 = s[1]!, s2 = s[2]!, s3 = s[3]!;
  const m = Math.imul(s1, 5);
  const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
  const t = (s1 << 9) >>> 0;
  const n2 = (s2 ^ s0) >>> 0;
  const n3 = (s3 ^ s1) >>> 0;
  s[1] = s1 ^ n2;
  s[0] = s0 ^ n3;
  s[2] = n2 ^ t;
  s[3] = (n3 << 11) | (n3 >>> 21);
  return result;
}

/**
 * Uniform integer in [0, n) for 0 < n <= 2^32, without bias. For n up to 2^21,
 * Lemire's multiply-shift: the 32x21-bit product is exact in a double, its high part
 * is the result, and the rare low parts below 2^32 mod n are redrawn. Larger n use
 * rejection on the modulo. NOTE: no `%` on the common path: a float modulo costs more
 * than the whole generator.
 */
export function rngBelow(rng: Rng, n: number): number {
  if (n <= 1) return 0;
  if (n <= 0x200000) {
    let m = rngNext(rng) * n;
    let l = m >>> 0;
    if (l < n) {
      const t = (0x100000000 - n) % n;
      while (l < t) {
        m = rngNext(rng) * n;
        l = m >>> 0;
      }
    }
    return Math.floor(m / 0x100000000);
  }
  const limit = 0x100000000 - (0x100000000 % n);
  for (;;) {
    const x = rngNext(rng);
    if (x < limit) return x % n;
  }
}

/** Uniform float in [0, 1) with 32 bits of randomness. */
export function rngFloat(rng: Rng): number {
  return rngNext(rng) / 0x100000000;
}

/** A new independent generator derived from this one (for sub-streams, e.g. per workload). */
export function rngFork(rng: Rng): Rng {
  return createRng(rngNext(rng) * 0x200000 + (rngNext(rng) & 0x1fffff));
}

// ---------------------------------------------------------------------------------
// splitmix64: the generator real-guest helpers use (bl-mem's random:SEED), so that a
// model run can make exactly the choices a real guest's helper makes.

/**
 * splitmix64 (Steele, Lea & Flood 2014) state: one unsigned 64-bit word as two uint32
 * halves, and the last output (also as halves).
 * NOTE: exact 64-bit arithmetic on 32-bit halves instead of BigInt, so a draw costs a
 * few integer operations and allocates nothing.
 */
export type Splitmix64 = { hi: number; lo: number; outHi: number; outLo: number };

/** A splitmix64 generator whose state starts at `seed` (0 .. 2^64-1; a number must be a safe integer). */
export function createSplitmix64(seed: number | bigint): Splitmix64 {
  const s = BigInt(seed);
  if (s < 0n || s >= 1n << 64n) throw new RangeError('splitmix64 seed must be from 0 to 2^64-1');
  return { hi: Number(s >> 32n), lo: Number(s & 0xffffffffn), outHi: 0, outLo: 0 };
}

/** The high 32 bits of the 64-bit product of two uint32s, exactly (16-bit partial products). */
function mulHi32(a: number, b: number): number {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const p01 = a0 * b1, p10 = a1 * b0;
  const mid = ((a0 * b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) >>> 0;
}

/** One step: state += 0x9E3779B97F4A7C15, then the two xor-shift-multiply rounds and a final xor-shift. */
export function splitmix64Next(g: Splitmix64): void {
  // state += 0x9e3779b97f4a7c15 (mod 2^64)
  const lo = g.lo + 0x7f4a7c15;
  g.lo = lo >>> 0;
  g.hi = (g.hi + 0x9e3779b9 + (lo > 0xffffffff ? 1 : 0)) >>> 0;
  let zh = g.hi, zl = g.lo;
  // z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
  zl = (zl ^ ((zl >>> 30) | (zh << 2))) >>> 0;
  zh = (zh ^ (zh >>> 30)) >>> 0;
  let h = (mulHi32(zl, 0x1ce4e5b9) + Math.imul(zl, 0xbf58476d) + Math.imul(zh, 0x1ce4e5b9)) >>> 0;
  zl = Math.imul(zl, 0x1ce4e5b9) >>> 0;
  zh = h;
  // z = (z ^ (z >> 27)) * 0x94d049bb133111eb
  zl = (zl ^ ((zl >>> 27) | (zh << 5))) >>> 0;
  zh = (zh ^ (zh >>> 27)) >>> 0;
  h = (mulHi32(zl, 0x133111eb) + Math.imul(zl, 0x94d049bb) + Math.imul(zh, 0x133111eb)) >>> 0;
  zl = Math.imul(zl, 0x133111eb) >>> 0;
  zh = h;
  // z ^ (z >> 31)
  g.outLo = (zl ^ ((zl >>> 31) | (zh << 1))) >>> 0;
  g.outHi = (zh ^ (zh >>> 31)) >>> 0;
}

/** The next output as a BigInt (for tests and logs, not for loops). */
export function splitmix64BigInt(g: Splitmix64): bigint {
  splitmix64Next(g);
  return (BigInt(g.outHi) << 32n) | BigInt(g.outLo);
}

/**
 * The next output modulo n (1 <= n <= 2^37), exactly as C's `splitmix64() % n` on
 * uint64_t: the 64-bit value is reduced 16 bits at a time so no step leaves the exact
 * range of a double.
 */
export function splitmix64Mod(g: Splitmix64, n: number): number {
  splitmix64Next(g);
  let r = g.outHi % n;
  r = (r * 0x10000 + (g.outLo >>> 16)) % n;
  return (r * 0x10000 + (g.outLo & 0xffff)) % n;
}
