import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createSim, simRunUntil, simAfter } from '../../src/sim/clock.js';
import { createGuest, defaultGuestConfig } from '../../src/guest/guest.js';
import { type Sched, Kthread, createSched, schedBurst, schedWakeup, schedKthread, schedSummary, selectTaskRq } from '../../src/guest/sched.js';

const MS = 1e6;

function schedOf(vcpus: number): Sched {
  const sim = createSim();
  const g = createGuest(defaultGuestConfig({ memoryBytes: 128 * 1024 * 1024, vcpus }), sim);
  return createSched(sim, g.pgdat, vcpus);
}

/** A CPU-bound task: `slices` bursts of `ns` each, one after the other; returns when it finished. */
function cpuHog(s: Sched, slices: number, ns: number, done: (t: number) => void): void {
  let left = slices, cpu = 0;
  const after = (r: { cpu: number }) => {
    cpu = r.cpu;
    if (--left > 0) schedBurst(s, cpu, () => ns, after);
    else done(s.sim.now);
  };
  schedBurst(s, cpu, () => ns, after);
}

test('sched: N CPU-bound tasks on one vCPU share it (each takes N times as long); on N vCPUs none waits', () => {
  for (const [vcpus, tasks, expect] of [[1, 3, 300], [3, 3, 100], [2, 3, 200]] as const) {
    const s = schedOf(vcpus);
    const ends: number[] = [];
    for (let i = 0; i < tasks; i++) cpuHog(s, 10, 10 * MS, (t) => ends.push(t));
    simRunUntil(s.sim, 10e9);
    assert.equal(ends.length, tasks);
    // 3 tasks of 100 ms: on 2 vCPUs the third shares with the others (round robin of bursts)
    assert.ok(Math.max(...ends) <= expect * MS + 1 && Math.max(...ends) >= (vcpus === 2 ? 150 : expect) * MS, `${vcpus} vCPUs, ${tasks} tasks: ended ${ends.map((e) => e / MS)}`);
    const sum = schedSummary(s);
    assert.equal(sum.user_s, 0.3, 'every burst accounted as user time');
    assert.equal(sum.system_s, 0);
    assert.equal(sum.cpus.length, vcpus);
    if (vcpus === 3) assert.equal(sum.runqueue_wait_s, 0, 'one task a vCPU: no run-queue wait');
    else assert.ok(sum.runqueue_wait_s > 0);
  }
});

test('sched: a wakeup runs at once and delays the burst it preempts by its own time; wakeups on a vCPU serialise', () => {
  const s = schedOf(1);
  let hogDone = -1, ranAt = -1, wakeDone = -1, second = -1;
  schedBurst(s, 0, () => 50 * MS, () => { hogDone = s.sim.now; });
  simAfter(s.sim, 10 * MS, () => {
    schedWakeup(s, 0, -1, () => { ranAt = s.sim.now; return 2 * MS; }, () => { wakeDone = s.sim.now; });
    schedWakeup(s, 0, Kthread.kswapd, () => 3 * MS, () => { second = s.sim.now; });
  });
  simRunUntil(s.sim, 1e9);
  assert.equal(ranAt, 10 * MS, 'the woken task ran when it woke');
  assert.equal(wakeDone, 12 * MS);
  assert.equal(second, 15 * MS, 'the second wakeup ran after the first');
  assert.equal(hogDone, 55 * MS, 'the preempted burst ended 5 ms later');
  const sum = schedSummary(s);
  assert.equal(sum.cpus[0]!.preemptions, 2);
  assert.equal(sum.kthreads.kswapd0, 0.003, "kswapd's time is its own");
  assert.equal(sum.system_s, 0.003);
  assert.equal(sum.user_s, 0.052);
});

test('sched: a burst sees its vCPU as this_cpu, system time is its stalls, I/O wait is slept after it', () => {
  const s = schedOf(2);
  const tasks = s.pgdat.tasks;
  const seen: number[] = [];
  let after: { cpu: number; sysNs: number; ioNs: number; t: number } | null = null;
  // cpu 0 busy: the next task goes to cpu 1
  schedBurst(s, 0, () => 100 * MS, null);
  schedBurst(s, 0, (cpu) => {
    seen.push(cpu, tasks.cpu);
    tasks.stallNs += 4 * MS; // direct reclaim
    tasks.ioWaitNs += 6 * MS; // a swap-in
    return 10 * MS;
  }, (r) => { after = { cpu: r.cpu, sysNs: r.sysNs, ioNs: r.ioNs, t: s.sim.now }; });
  simRunUntil(s.sim, 1e9);
  assert.deepEqual(seen, [1, 1]);
  assert.equal(tasks.cpu, 0, 'this_cpu is restored after the burst');
  assert.deepEqual(after, { cpu: 1, sysNs: 4 * MS, ioNs: 6 * MS, t: 20 * MS }, 'vCPU busy 14 ms, then 6 ms asleep');
  assert.equal(schedSummary(s).cpus[1]!.system_s, 0.004);
});

test('sched: selectTaskRq keeps a task on its idle vCPU, else takes the least loaded', () => {
  const s = schedOf(3);
  assert.equal(selectTaskRq(s, 2), 2);
  schedBurst(s, 2, () => 10 * MS, null);
  assert.equal(selectTaskRq(s, 2), 0, 'its vCPU is busy: the lowest idle one');
  schedBurst(s, 0, () => 10 * MS, null);
  schedBurst(s, 1, () => 10 * MS, null);
  assert.equal(selectTaskRq(s, 1), 1, 'all equally loaded: stays');
});

test('guest: kernel threads run on the vCPUs and their time is accounted (kswapd under memory pressure)', async () => {
  const { allocPages } = await import('../../src/guest/mm/page_alloc.js');
  const { GFP_HIGHUSER_MOVABLE } = await import('../../src/guest/mm/gfp.js');
  const { Owner } = await import('../../src/guest/mm/memmap.js');
  const { getProcess, readFilePages } = await import('../../src/guest/mm/process.js');
  const sim = createSim();
  const g = createGuest(defaultGuestConfig({ memoryBytes: 128 * 1024 * 1024, vcpus: 2 }), sim);
  // fill memory with page cache, then allocate: kswapd wakes and reclaims
  readFilePages(g.pgdat, getProcess(g.procs, 10), 28000, false);
  for (let i = 0; i < 4000; i++) allocPages(g.pgdat, GFP_HIGHUSER_MOVABLE, 0, Owner.kernel);
  simRunUntil(sim, 1e9);
  const sum = schedSummary(g.sched);
  assert.ok(sum.kthreads.kswapd0! > 0, `kswapd ran: ${JSON.stringify(sum.kthreads)}`);
  assert.ok(sum.system_s >= sum.kthreads.kswapd0!);
  void schedKthread;
});

test('sched property: every burst finishes once, after its own time; no vCPU is busy longer than the time that passed; FIFO per vCPU', () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 4 }),
    fc.array(fc.record({ at: fc.integer({ min: 0, max: 50 }), ns: fc.integer({ min: 0, max: 20 }), wakeup: fc.boolean(), prev: fc.integer({ min: 0, max: 3 }) }), { minLength: 1, maxLength: 40 }),
    (vcpus, reqs) => {
      const s = schedOf(vcpus);
      const finished = new Array<number>(reqs.length).fill(0);
      const startedOn: Array<Array<number>> = Array.from({ length: vcpus }, () => []);
      reqs.forEach((q, i) => {
        simAfter(s.sim, q.at * MS, () => {
          const t0 = s.sim.now;
          const run = (cpu: number) => { startedOn[cpu]!.push(i); return q.ns * MS; };
          const after = (r: { latencyNs: number; userNs: number }) => {
            finished[i]!++;
            assert.ok(s.sim.now - t0 >= q.ns * MS, 'a burst ends no sooner than its own time');
            assert.equal(r.userNs, q.ns * MS);
            assert.equal(r.latencyNs, s.sim.now - t0);
          };
          if (q.wakeup) schedWakeup(s, q.prev % vcpus, -1, run, after);
          else schedBurst(s, q.prev % vcpus, run, after);
        });
      });
      simRunUntil(s.sim, 10e9);
      assert.deepEqual(finished, reqs.map(() => 1), 'each burst finished exactly once');
      const sum = schedSummary(s);
      const total = reqs.reduce((x, q) => x + q.ns, 0) / 1000;
      assert.ok(Math.abs(sum.user_s - total) < 1e-9, `${sum.user_s} user vs ${total}`);
      for (const c of sum.cpus) assert.ok(c.user_s + c.system_s <= 10 + 1e-9);
      for (const rq of s.rqs) assert.ok(rq.queue.length === 0 && rq.curr === null, 'nothing left on a run queue');
    },
  ), { numRuns: 200 });
});
