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
