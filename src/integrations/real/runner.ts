/**
 * Running a scenario's timeline on a real guest: the same entries, the same action
 * table, through a RealContext (QMP to the VMM, a shell in the guest, the wall clock)
 * instead of a machine on the simulation clock. Entries run in order, each no earlier
 * than its `at` (time since the timeline started); an entry that takes time (a
 * balloon wait, a shell command) delays the ones after it, as a wait does on the
 * model. Every action declared for this engine runs through its `real.run`; the
 * scenario was checked before boot (checkSides) so none is missing.
 *
 * An action the guest refuses (a QMP error, a failed command) is recorded in its
 * event as `error` and the run goes on: a differential report wants to see how far the
 * real side got. `ok` says whether every entry ran without error and every wait was
 * reached.
 */
import { type RealContext, type RealEngine, type EventBase, type WaitResult, ActionError } from '../../actions/action.js';
import { type ResultEvent, actionDef } from '../../actions/index.js';
import type { Scenario } from '../../scenario/schema.js';
import type { DeviceView } from '../../report/balloon_trace.js';
import { formatTime } from '../../scenario/units.js';

/** An entry the real guest could not carry out. */
export type ErrorEvent = EventBase & { error: string };
export type RealEvent = ResultEvent | ErrorEvent;

export type RealTimelineResult = {
  engine: RealEngine;
  events: RealEvent[];
  /** What `probe` read after each entry (MemTotal/MemFree/MemAvailable for the differential report), by entry. */
  probes: Array<Record<string, number>>;
  ok: boolean;
  /** Problems, one line each (entry, what went wrong). */
  problems: string[];
  /** Wall time the timeline took, ns. */
  timeline_ns: number;
};

function isWait(v: unknown): v is WaitResult {
  return typeof v === 'object' && v !== null && 'reached' in v && 'waited_ns' in v;
}

export type RealTimelineOptions = {
  /** Hears of each event as it is recorded. */
  onEntry?: (i: number, ev: RealEvent) => void;
  /** Read after each entry (not counted in the entry's time). */
  probe?: () => Promise<Record<string, number>>;
};

/** Runs the timeline on a real guest. */
export async function runRealTimeline(s: Scenario, ctx: RealContext, opts: RealTimelineOptions = {}): Promise<RealTimelineResult> {
  const events: RealEvent[] = [];
  const probes: Array<Record<string, number>> = [];
  const problems: string[] = [];
  const t0 = ctx.now();
  for (let i = 0; i < s.timeline.length; i++) {
    const a = s.timeline[i]!;
    const def = actionDef(a.action)!;
    if (!def.real || !def.real.engines.includes(ctx.engine)) throw new Error(`BUG: ${a.action} reached the ${ctx.engine} runner (checkSides should have refused it)`);
    const wait = a.at - (ctx.now() - t0);
    if (wait > 0) await ctx.sleep(wait);
    const ev: EventBase = { t_ns: ctx.now() - t0, kind: a.action };
    if (a.label !== undefined) ev.label = a.label;
    try {
      Object.assign(ev, await def.real.run(ctx, a as never));
    } catch (e) {
      if (!(e instanceof ActionError)) throw e;
      (ev as ErrorEvent).error = e.message;
    }
    const where = `timeline[${i}] (${a.action} at ${formatTime(a.at)})`;
    if ('error' in ev) problems.push(`${where}: ${(ev as ErrorEvent).error}`);
    for (const v of Object.values(ev)) if (isWait(v) && !v.reached) problems.push(`${where}: the wait was not reached in ${formatTime(v.waited_ns)}`);
    if ('qmp' in ev && typeof ev.qmp === 'object' && ev.qmp !== null && 'error' in ev.qmp) problems.push(`${where}: QMP error ${JSON.stringify(ev.qmp)}`);
    events.push(ev as RealEvent);
    opts.onEntry?.(i, ev as RealEvent);
    if (opts.probe) probes.push(await opts.probe());
  }
  return { engine: ctx.engine, events, probes, ok: problems.length === 0, problems, timeline_ns: ctx.now() - t0 };
}

/** A real guest's state at the end: its /proc (whole vmstat and meminfo) and MemTotal before the timeline. */
export type RealGuestState = { vmstat: Record<string, number>; meminfo: Record<string, number>; memtotal_start_kib: number };

/** A whole real run: the timeline, the device's view (when the device is balloonlab's), the guest's end state, wall times. */
export type RealRunResult = {
  engine: RealEngine;
  scenario: string;
  memory_bytes: number;
  timeline: RealTimelineResult;
  device: DeviceView | null;
  guest: RealGuestState;
  /** Wall-clock ms: boot, the timeline, all. */
  timings: { boot_ms: number; timeline_ms: number; total_ms: number };
};
