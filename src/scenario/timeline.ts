/**
 * A guest's timeline on its clock: the one controller both runners use (runner.ts for a
 * single guest, host_runner.ts for each VM of a host). Entries run at their `at` in the
 * order written; an entry that waits (`hold`: balloon with wait, ...) or finishes later
 * (`defer`: a migration, a build) holds the ones that come due meanwhile, which then run
 * in order as soon as it is done. Each entry's event records what it set off (OOM kills,
 * allocation stalls, THP splits) when it set off anything.
 *
 * What differs between the runners is passed in: whether an entry the guest refuses
 * (an ActionError) is bad input that ends the run (a single guest: the scenario asked
 * for what cannot be) or an outcome recorded as not run (a guest on a shared host, where
 * the balloon may have left it less than its timeline assumed), and what to do after
 * each entry.
 */
import { simAt, simAfter } from '../sim/clock.js';
import { rngFork } from '../sim/rng.js';
import { type Vm, assertVm } from '../machine/machine.js';
import { VmEvent } from '../guest/mm/vmstat_items.js';
import { type ModelContext, type WaitResult, type EventBase, ActionError } from '../actions/action.js';
import { type Action, type ResultEvent, type SkippedEvent, actionDef } from '../actions/index.js';
import { hintNegotiated } from '../actions/migration.js';
import { type Scenario, ScenarioError } from './schema.js';
import { formatTime } from './units.js';

/** A wait that holds the timeline: polled every HOLD_POLL_NS of virtual time. */
export const HOLD_POLL_NS = 10_000_000;

export type TimelineOptions = {
  check: boolean;
  /** For error messages: the file (and VM). */
  source?: string;
  /** Entries after this virtual time are not scheduled. */
  end: number;
  /** An entry's ActionError: `throw` (bad input, the run ends) or `skip` (recorded as not run, with its reason). */
  actionErrors: 'throw' | 'skip';
  /** Right after each entry's event is recorded. */
  afterEntry?: (i: number, a: Action, ev: ResultEvent) => void;
  /** When an entry is done: at once, or for one that holds the timeline when its wait is over. */
  onEntryDone?: (i: number, ev: ResultEvent) => void;
};

export type Timeline = {
  ctx: ModelContext;
  events: ResultEvent[];
  /** Whether a wait holds the timeline, or entries wait behind one. */
  busy: () => boolean;
  /** The run ends at `end`: the entries a wait still holds are recorded as not run. */
  skipHeld: (end: number) => void;
};

/** An error in timeline entry i: where, which entry, what is wrong. */
export function entryError(source: string | undefined, i: number, a: Action, e: unknown): ScenarioError {
  const msg = e instanceof Error ? e.message : String(e);
  return new ScenarioError(`${source ? `${source}: ` : ''}timeline[${i}] (${a.action} at ${formatTime(a.at)}): ${msg}`);
}

function sideEffectCounts(ev: Float64Array): [number, number, number] {
  return [
    ev[VmEvent.oom_kill]!,
    ev[VmEvent.allocstall_dma]! + ev[VmEvent.allocstall_dma32]! + ev[VmEvent.allocstall_normal]! + ev[VmEvent.allocstall_movable]! + ev[VmEvent.allocstall_device]!,
    ev[VmEvent.thp_split_page]!,
  ];
}

/** The entry's event says what it set off, when it set off anything (the fields are absent otherwise). */
function addSideEffects(ev: EventBase, before: [number, number, number], after: [number, number, number]): void {
  const e = ev as EventBase & { oom_kills?: number; alloc_stalls?: number; thp_splits?: number };
  if (after[0] > before[0]) e.oom_kills = after[0] - before[0];
  if (after[1] > before[1]) e.alloc_stalls = after[1] - before[1];
  if (after[2] > before[2]) e.thp_splits = after[2] - before[2];
}

/** Schedules the scenario's timeline on the VM's clock; the caller runs the clock. */
export function startTimeline(vm: Vm, s: Scenario, o: TimelineOptions): Timeline {
  const sim = vm.sim, guest = vm.guest;
  const events: ResultEvent[] = [];
  // Entries that came due while a wait held the timeline, in order.
  let holding = false;
  const held: number[] = [];
  // What is left of the entry that holds: onEntryDone hears of it when its wait is over.
  let afterHold: (() => void) | null = null;
  // The entry whose model side runs now (defer() finishes its event later).
  let current: { ev: EventBase; before: [number, number, number] } | null = null;
  const ctx: ModelContext = {
    vm, rng: rngFork(guest.rng), tags: new Map(), useHints: hintNegotiated(vm), builds: [], highalloc: null, check: o.check,
    emit: (ev: EventBase) => { events.push(ev as ResultEvent); },
    hold: (until, timeoutNs): WaitResult => {
      const r: WaitResult = { reached: false, waited_ns: 0 };
      const start = sim.now;
      const poll = () => {
        const reached = until();
        if (!reached && sim.now - start < timeoutNs) { simAfter(sim, Math.min(HOLD_POLL_NS, start + timeoutNs - sim.now), poll); return; }
        r.reached = reached;
        r.waited_ns = sim.now - start;
        release();
      };
      holding = true;
      simAfter(sim, 0, poll);
      return r;
    },
    defer: () => {
      const entry = current;
      if (entry === null) throw new Error('defer() called outside a timeline entry');
      holding = true;
      let done = false;
      return (fields: object) => {
        if (done) return;
        done = true;
        Object.assign(entry.ev, fields);
        addSideEffects(entry.ev, entry.before, sideEffectCounts(guest.pgdat.events));
        // finished within its own entry: the entry's event goes first, the held ones after
        if (current === entry) simAfter(sim, 0, release);
        else release();
      };
    },
  };
  /** A wait is over: what is left of the holding entry, then the entries it held. */
  const release = () => {
    holding = false;
    const after = afterHold;
    afterHold = null;
    after?.();
    while (!holding && held.length) runEntry(held.shift()!);
  };
  const runEntry = (i: number) => {
    if (holding) { held.push(i); return; }
    const a = s.timeline[i]!;
    const def = actionDef(a.action)!;
    let ev: EventBase;
    if (!def.model) {
      const skipped: SkippedEvent = { t_ns: sim.now, kind: 'skipped', action: a.action, reason: `the model guest cannot run ${a.action}` };
      if (a.label !== undefined) skipped.label = a.label;
      ev = skipped;
    } else {
      ev = { t_ns: sim.now, kind: a.action };
      if (a.label !== undefined) ev.label = a.label;
      const before = sideEffectCounts(guest.pgdat.events);
      current = { ev, before };
      try {
        Object.assign(ev, def.model(ctx, a as never));
      } catch (e) {
        current = null;
        // On a shared host an entry the guest refuses (a mapping larger than what the
        // balloon left it, a process already OOM-killed) is an outcome, not bad input:
        // it is recorded as not run, with the guest's reason, and the VM goes on.
        if (e instanceof ActionError && o.actionErrors === 'skip') {
          const failed: SkippedEvent = { t_ns: sim.now, kind: 'skipped', action: a.action, reason: `failed: ${e.message}` };
          if (a.label !== undefined) failed.label = a.label;
          events.push(failed);
          return;
        }
        if (e instanceof ActionError || e instanceof ScenarioError) throw entryError(o.source, i, a, e);
        throw e;
      } finally {
        current = null;
      }
      addSideEffects(ev, before, sideEffectCounts(guest.pgdat.events));
    }
    events.push(ev as ResultEvent);
    o.afterEntry?.(i, a, ev as ResultEvent);
    if (o.onEntryDone) {
      const tell = o.onEntryDone;
      if (holding) afterHold = () => tell(i, ev as ResultEvent);
      else tell(i, ev as ResultEvent);
    }
    if (o.check) assertVm(vm, `after ${a.action} at t=${sim.now}ns`);
  };
  s.timeline.forEach((a, i) => { if (a.at <= o.end) simAt(sim, a.at, () => runEntry(i)); });
  const skipHeld = (end: number) => {
    for (const i of held) {
      const a = s.timeline[i]!;
      const skipped: SkippedEvent = { t_ns: end, kind: 'skipped', action: a.action, reason: `the run ended at ${formatTime(end)} while an earlier wait held this entry` };
      if (a.label !== undefined) skipped.label = a.label;
      events.push(skipped);
    }
  };
  return { ctx, events, busy: () => holding || held.length > 0, skipHeld };
}
