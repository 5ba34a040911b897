/**
 * The discrete-event core: virtual time in nanoseconds and an event queue.
 *
 * In the SimPy mould: a binary heap ordered by (time, sequence); callbacks run in
 * that order, so two events at the same instant run in the order they were
 * scheduled, and a run is reproducible. No Promises, no wall clock: real-time pacing
 * (for a dashboard) is a wrapper around sim.run, never inside it.
 */

/** A scheduled callback. */
export type SimCallback = (sim: Sim) => void;

/** Simulation state. */
export type Sim = {
  /** Virtual time now, in nanoseconds. */
  now: number;
  /** Heap of pending events: parallel arrays of time, sequence and callback. */
  heapTime: number[];
  heapSeq: number[];
  heapFn: SimCallback[];
  /** Sequence counter: ties at equal time are broken by scheduling order. */
  seq: number;
  /** Number of events processed so far. */
  processed: number;
};

export function createSim(): Sim {
  return { now: 0, heapTime: [], heapSeq: [], heapFn: [], seq: 0, processed: 0 };
}

function less(sim: Sim, i: number, j: number): boolean {
  const ti = sim.heapTime[i]!, tj = sim.heapTime[j]!;
  return ti < tj || (ti === tj && sim.heapSeq[i]! < sim.heapSeq[j]!);
}

function swap(sim: Sim, i: number, j: number): void {
  const t = sim.heapTime[i]!; sim.heapTime[i] = sim.heapTime[j]!; sim.heapTime[j] = t;
  const s = sim.heapSeq[i]!; sim.heapSeq[i] = sim.heapSeq[j]!; sim.heapSeq[j] = s;
  const f = sim.heapFn[i]!; sim.heapFn[i] = sim.heapFn[j]!; sim.heapFn[j] = f;
}

/** Schedules fn at absolute virtual time t (ns). Times in the past run "now". */
export function simAt(sim: Sim, t: number, fn: SimCallback): void {
  const time = t < sim.now ? sim.now : t;
  sim.heapTime.push(time);
  sim.heapSeq.push(sim.seq++);
  sim.heapFn.push(fn);
  let i = sim.heapTime.length - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (!less(sim, i, p)) break;
    swap(sim, i, p);
    i = p;
  }
}

/** Schedules fn delay ns from now. */
export function simAfter(sim: Sim, delay: number, fn: SimCallback): void {
  simAt(sim, sim.now + delay, fn);
}

/** Number of pending events. */
export function simPending(sim: Sim): number {
  return sim.heapTime.length;
}

/** Time of the next event, or Infinity. */
export function simPeek(sim: Sim): number {
  return sim.heapTime.length > 0 ? sim.heapTime[0]! : Infinity;
}

function pop(sim: Sim): SimCallback {
  const fn = sim.heapFn[0]!;
  sim.now = sim.heapTime[0]!;
  const last = sim.heapTime.length - 1;
  if (last > 0) swap(sim, 0, last);
  sim.heapTime.pop(); sim.heapSeq.pop(); sim.heapFn.pop();
  let i = 0;
  const n = sim.heapTime.length;
  for (;;) {
    const l = 2 * i + 1, r = l + 1;
    let m = i;
    if (l < n && less(sim, l, m)) m = l;
    if (r < n && less(sim, r, m)) m = r;
    if (m === i) break;
    swap(sim, i, m);
    i = m;
  }
  return fn;
}

/**
 * Runs events up to and including virtual time `until` (ns), then sets now = until.
 * Returns the number of events processed.
 */
export function simRunUntil(sim: Sim, until: number): number {
  let n = 0;
  while (sim.heapTime.length > 0 && sim.heapTime[0]! <= until) {
    const fn = pop(sim);
    fn(sim);
    n++;
  }
  sim.processed += n;
  if (until > sim.now && until !== Infinity) sim.now = until;
  return n;
}
