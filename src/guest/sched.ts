/**
 * The guest's vCPUs as the scheduler shares them (kernel/sched/core.c and fair.c, much
 * simplified): what runs where, for how long, and who waits.
 *
 * Work arrives as bursts: a task (a compiler's slice, a chunk of a large fault, one
 * allocation attempt) or a kernel thread (kswapd, kcompactd, khugepaged, the flusher,
 * the balloon's work item) asks for a vCPU, does its work when it gets one, and keeps
 * the vCPU busy for the CPU time that work took. Two kinds, after CFS's placement:
 *
 * - A burst of a task that stays runnable (a CPU-bound compiler's next slice, a fork's
 *   first one: START_DEBIT places it behind) joins the vCPU's run queue and waits its
 *   turn: bursts on one vCPU run one after the other, so N CPU-bound tasks on one vCPU
 *   each progress at 1/N speed (round robin of the callers' slices).
 * - A wakeup (a sleeper woken: a kernel thread, a task back from sleep or I/O) runs at
 *   once and preempts whatever runs there (place_entity puts a sleeper half a
 *   sched_latency behind min_vruntime, so check_preempt_wakeup lets it in): the
 *   preempted burst ends that much later. Wakeups on one vCPU serialise among
 *   themselves.
 *
 * A burst's effects happen when it starts (the model's mm work is instantaneous); its
 * time is the vCPU time those effects cost. The time a burst spent in direct reclaim
 * and compaction (pgdat.tasks.stallNs) is its system time; kernel threads' own work
 * (pgdat.daemonNs) theirs; I/O it waited for (swap-in, dirty throttling:
 * pgdat.tasks.ioWaitNs) is not vCPU time: the task sleeps that long after its burst and
 * comes back as a wakeup.
 *
 * CPU choice (select_task_rq_fair, roughly): the task's previous vCPU if nothing runs
 * or waits there, else the vCPU with the fewest runnable bursts (ties: the previous
 * one, then the lowest number). No load balancing moves a queued burst; a task's next
 * burst chooses again. While a burst runs, pgdat.tasks.cpu is its vCPU, so its
 * allocations and frees use that vCPU's per-cpu lists.
 */
import { type Sim, simAt, simAfter } from '../sim/clock.js';
import type { PgData } from './mm/mmzone.js';

/** Kernel threads whose vCPU time is accounted apart (the result document's `cpu.kthreads`). */
export const enum Kthread {
  kswapd = 0,
  kcompactd = 1,
  khugepaged = 2,
  flusher = 3,
  balloon = 4,
}
/** Their names as `ps` shows them (the balloon's work items run on a kworker). */
export const KTHREAD_NAMES = ['kswapd0', 'kcompactd0', 'khugepaged', 'kworker/u:flush', 'kworker:virtio_balloon'] as const;
export const NR_KTHREADS = KTHREAD_NAMES.length;

/** What a burst used, handed to its continuation. */
export type BurstResult = {
  cpu: number;
  /** Its own CPU time (user work, or a kernel thread's work). */
  userNs: number;
  /** Time in direct reclaim and compaction during it (system time). */
  sysNs: number;
  /** I/O it waited for after the vCPU time (it slept this long before `after` ran). */
  ioNs: number;
  /** From the request to the end of its vCPU time (queueing included). */
  latencyNs: number;
};

/** A burst: `run(cpu)` does the work when the burst gets `cpu` and returns its own CPU time (ns). */
type Burst = { run: (cpu: number) => number; after: ((r: BurstResult) => void) | null; queuedAt: number; kthread: number };

/** One vCPU's run queue (struct rq). */
export type Rq = {
  cpu: number;
  /** When what occupies the vCPU now ends; <= now: idle. */
  busyUntil: number;
  /** When the wakeups that preempted it are through (they serialise). */
  wakeupUntil: number;
  /** The continuation of the burst running now (null: idle, or only wakeups). */
  curr: Burst | null;
  currResult: BurstResult | null;
  /** A completion event is pending. */
  armed: boolean;
  /** Bursts waiting for the vCPU, oldest first. */
  queue: Burst[];
  /** Accounting, ns: tasks' user time, system time (tasks' stalls and kernel threads). */
  userNs: number;
  systemNs: number;
  /** Bursts run, and those that preempted another (wakeups on a busy vCPU). */
  bursts: number;
  preemptions: number;
};

export type Sched = {
  sim: Sim;
  pgdat: PgData;
  rqs: Rq[];
  /** vCPU time of each kernel thread (Kthread), ns. */
  kthreadNs: Float64Array;
  /** Time tasks waited for a vCPU (runnable, not running), ns: the run-queue delay. */
  waitNs: number;
  /** The time accounting began (boot). */
  startNs: number;
};

export function createSched(sim: Sim, pgdat: PgData, nrCpus: number): Sched {
  const rqs: Rq[] = [];
  for (let cpu = 0; cpu < nrCpus; cpu++) {
    rqs.push({ cpu, busyUntil: 0, wakeupUntil: 0, curr: null, currResult: null, armed: false, queue: [], userNs: 0, systemNs: 0, bursts: 0, preemptions: 0 });
  }
  return { sim, pgdat, rqs, kthreadNs: new Float64Array(NR_KTHREADS), waitNs: 0, startNs: sim.now };
}

/** Runnable bursts on the vCPU: the running one and those queued. */
function rqLoad(s: Sched, rq: Rq): number {
  return (rq.busyUntil > s.sim.now ? 1 : 0) + rq.queue.length;
}

/** @kernel kernel/sched/fair.c select_task_rq_fair (the idle-sibling shortcut, then the least loaded) */
export function selectTaskRq(s: Sched, prev: number): number {
  const rqs = s.rqs;
  const p = prev >= 0 && prev < rqs.length ? prev : 0;
  let best = p, bestLoad = rqLoad(s, rqs[p]!);
  if (bestLoad === 0) return p;
  for (const rq of rqs) {
    const l = rqLoad(s, rq);
    if (l < bestLoad) { best = rq.cpu; bestLoad = l; }
  }
  return best;
}

/** Runs a burst's work on `cpu` now; returns what it used (the vCPU time not yet taken). */
function runBurst(s: Sched, b: Burst, cpu: number): BurstResult {
  const tasks = s.pgdat.tasks;
  const prevCpu = tasks.cpu;
  const stall0 = tasks.stallNs, io0 = tasks.ioWaitNs, daemon0 = s.pgdat.daemonNs;
  tasks.cpu = cpu;
  const own = b.run(cpu);
  tasks.cpu = prevCpu;
  const sysNs = tasks.stallNs - stall0 + (b.kthread >= 0 ? s.pgdat.daemonNs - daemon0 : 0);
  const userNs = Math.max(0, own);
  const rq = s.rqs[cpu]!;
  rq.bursts++;
  if (b.kthread >= 0) {
    rq.systemNs += userNs + sysNs;
    s.kthreadNs[b.kthread] = s.kthreadNs[b.kthread]! + userNs + sysNs;
  } else {
    rq.userNs += userNs;
    rq.systemNs += sysNs;
  }
  return { cpu, userNs, sysNs, ioNs: tasks.ioWaitNs - io0, latencyNs: 0 };
}

/** The continuation of a finished burst: at once, or after the I/O it waits for. */
function finishBurst(s: Sched, b: Burst, r: BurstResult): void {
  r.latencyNs = s.sim.now - b.queuedAt;
  const after = b.after;
  if (after === null) return;
  if (r.ioNs > 0) simAfter(s.sim, r.ioNs, () => after(r));
  else after(r);
}

function arm(s: Sched, rq: Rq): void {
  if (rq.armed) return;
  rq.armed = true;
  simAt(s.sim, rq.busyUntil, () => complete(s, rq));
}

/** The vCPU's occupancy ended (or moved later: then wait again). */
function complete(s: Sched, rq: Rq): void {
  rq.armed = false;
  const now = s.sim.now;
  if (rq.busyUntil > now) { arm(s, rq); return; }
  const b = rq.curr, r = rq.currResult;
  rq.curr = null;
  rq.currResult = null;
  // the next queued burst starts before the finished one's continuation runs, so a
  // task that asks again goes to the back of the queue
  startNext(s, rq);
  if (b !== null && r !== null) finishBurst(s, b, r);
}

function startNext(s: Sched, rq: Rq): void {
  const b = rq.queue.shift();
  if (b === undefined) return;
  const now = s.sim.now;
  s.waitNs += now - b.queuedAt;
  const r = runBurst(s, b, rq.cpu);
  rq.curr = b;
  rq.currResult = r;
  rq.busyUntil = now + r.userNs + r.sysNs;
  arm(s, rq);
}

/**
 * A task's burst that waits its turn: on the chosen vCPU (see selectTaskRq, from the
 * task's previous vCPU `prev`), `run` runs when the bursts before it are done; then the
 * vCPU is busy for its CPU time and stalls, and `after` runs (after its I/O wait, if any).
 */
export function schedBurst(s: Sched, prev: number, run: (cpu: number) => number, after: ((r: BurstResult) => void) | null, opts: { pinned?: boolean; kthread?: number } = {}): number {
  const cpu = opts.pinned === true ? Math.min(Math.max(prev, 0), s.rqs.length - 1) : selectTaskRq(s, prev);
  const rq = s.rqs[cpu]!;
  rq.queue.push({ run, after, queuedAt: s.sim.now, kthread: opts.kthread ?? -1 });
  if (rq.busyUntil <= s.sim.now && rq.curr === null) {
    if (rq.armed) return cpu; // the completion due now starts it
    startNext(s, rq);
  }
  return cpu;
}

/**
 * A wakeup: `run` runs now on the chosen vCPU, preempting what runs there, which ends
 * that much later. `kthread` accounts it to a kernel thread (Kthread), or -1 for a
 * task. Returns the vCPU.
 */
export function schedWakeup(s: Sched, prev: number, kthread: number, run: (cpu: number) => number, after: ((r: BurstResult) => void) | null): number {
  const cpu = selectTaskRq(s, prev);
  const rq = s.rqs[cpu]!;
  const now = s.sim.now;
  const b: Burst = { run, after, queuedAt: now, kthread };
  const r = runBurst(s, b, cpu);
  const ns = r.userNs + r.sysNs;
  const start = Math.max(now, rq.wakeupUntil);
  const end = start + ns;
  rq.wakeupUntil = end;
  if (rq.busyUntil > now) {
    rq.preemptions++;
    rq.busyUntil += ns;
  } else {
    rq.busyUntil = end;
    arm(s, rq);
  }
  if (after !== null) {
    if (end > now) simAt(s.sim, end, () => finishBurst(s, b, r));
    else finishBurst(s, b, r);
  }
  return cpu;
}

/**
 * A kernel thread that stays runnable (it went on after cond_resched): its next slice
 * `fn` waits its turn on the vCPU like a task's burst, so that it and the tasks there
 * take turns.
 */
export function schedKthreadBurst(s: Sched, kthread: Kthread, fn: () => void): void {
  schedBurst(s, kthread % s.rqs.length, () => { fn(); return 0; }, null, { kthread });
}

/**
 * CFS's slice for two runnable tasks on a vCPU (sched_slice: sysctl_sched_latency,
 * 6 ms scaled by 1 + ilog2(cpus) up to 8 cpus, shared by their weights): how long a
 * CPU-bound task or kernel thread runs before cond_resched lets the other in.
 */
export function schedSliceNs(nrCpus: number): number {
  return (6e6 * (1 + Math.floor(Math.log2(Math.min(Math.max(nrCpus, 1), 8))))) / 2;
}

/** A kernel thread's run: `fn` does its work now (a wakeup), its cost (pgdat.daemonNs, stalls) is its vCPU time. */
export function schedKthread(s: Sched, kthread: Kthread, fn: () => void): void {
  schedWakeup(s, kthread % s.rqs.length, kthread, () => { fn(); return 0; }, null);
}

/** The vCPUs' accounting so far, for the result document: per vCPU and per kernel thread, seconds. */
export type SchedSummary = {
  cpus: Array<{ cpu: number; user_s: number; system_s: number; idle_s: number; bursts: number; preemptions: number }>;
  user_s: number;
  system_s: number;
  idle_s: number;
  /** Time runnable tasks waited for a vCPU. */
  runqueue_wait_s: number;
  kthreads: Record<string, number>;
};

/** Seconds to the microsecond. */
const us = (ns: number) => Math.round(ns / 1e3) / 1e6;

export function schedSummary(s: Sched): SchedSummary {
  const elapsed = s.sim.now - s.startNs;
  const cpus = s.rqs.map((rq) => ({
    cpu: rq.cpu, user_s: us(rq.userNs), system_s: us(rq.systemNs), idle_s: us(Math.max(0, elapsed - rq.userNs - rq.systemNs)),
    bursts: rq.bursts, preemptions: rq.preemptions,
  }));
  const kthreads: Record<string, number> = {};
  KTHREAD_NAMES.forEach((name, i) => { kthreads[name] = us(s.kthreadNs[i]!); });
  return {
    cpus,
    user_s: us(s.rqs.reduce((x, r) => x + r.userNs, 0)),
    system_s: us(s.rqs.reduce((x, r) => x + r.systemNs, 0)),
    idle_s: us(s.rqs.reduce((x, r) => x + Math.max(0, elapsed - r.userNs - r.systemNs), 0)),
    runqueue_wait_s: us(s.waitNs),
    kthreads,
  };
}
