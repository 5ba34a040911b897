/**
 * What a scenario action is: one declaration holds its name, its fields (schema and
 * documentation, fields.ts), one line of documentation, and how it runs on each side
 * that can run it — the model guest (a machine on the simulation clock) and real
 * guests (a real Linux under v86 with balloonlab's device, or under QEMU with QEMU's).
 * The scenario schema, the runners, `balloonlab actions` and docs/CLI.md's list are
 * all derived from the table of these declarations (index.ts).
 *
 * A run returns the action's event fields; the runner adds `t_ns`, `kind` (the
 * action's name) and `label`. Model runs are synchronous: they act on the machine at
 * the action's virtual time, and what unfolds afterwards unfolds on the clock. Real
 * runs are asynchronous and reach the guest only through a RealContext (QMP and a
 * shell); they never touch the model.
 */
import { z } from 'zod';
import type { Fields, FieldValues } from './fields.js';
import type { Rng } from '../sim/rng.js';
import type { Vm } from '../machine/machine.js';
import type { QmpCommand, QmpResponse } from '../host/qmp.js';
import type { KernelBuild } from '../workloads/kernel_build.js';
import type { StressHighalloc } from '../workloads/stress_highalloc.js';
import { InputError } from '../sim/errors.js';
import type { FileStream } from './file_layout.js';

/** Real guests: a Linux in v86 driving balloonlab's device, or a Linux under QEMU with QEMU's device. */
export type RealEngine = 'v86' | 'qemu';
/** Where an action can run. */
export type Side = 'model' | RealEngine;
export const SIDES: readonly Side[] = ['model', 'v86', 'qemu'];

/** The fields every timeline entry has. */
export type EntryBase = { at: number; label?: string };

/** A parsed timeline entry of action N. */
export type ActionInput<N extends string, F extends Fields> = EntryBase & { action: N } & FieldValues<F>;

/** What a wait in an event says, filled in when the wait ends. */
export type WaitResult = { reached: boolean; waited_ns: number };

/** The header every event has. */
export type EventBase = { t_ns: number; kind: string; label?: string };

/** Blocks a scenario holds under a tag (alloc_pages / free_pages): (pfn, order) pairs. */
export type HeldBlocks = { pfns: number[]; orders: number[] };

/**
 * The model side's state while a scenario runs: the machine, the scenario's random
 * stream, what earlier actions left for later ones, and the runner's services.
 */
export type ModelContext = {
  vm: Vm;
  /** The scenario's own random stream (forked from the guest's). */
  rng: Rng;
  /** alloc_pages' blocks by tag. */
  tags: Map<string, HeldBlocks>;
  /** Whether migration uses free page hints (balloon_free_page_hint; on when negotiated). */
  useHints: boolean;
  /** Kernel builds started by kernel_build, and the stress-highalloc run, for the result document. */
  builds: Array<{ label: string; build: KernelBuild }>;
  highalloc: StressHighalloc | null;
  /** --check: actions that finish later check the machine then too. */
  check: boolean;
  /** Adds an event that happens later than its action (a build finishing, a migration completing). */
  emit(ev: EventBase): void;
  /**
   * Holds the rest of the timeline until `until()` holds (checked every 10 ms of
   * virtual time) or `timeoutNs` passes; later entries then start, no earlier than
   * their own `at`. The result object is filled in when the wait ends.
   */
  hold(until: () => boolean, timeoutNs: number): WaitResult;
  /**
   * Holds the rest of the timeline until the returned function is called (work the
   * entry started goes on over virtual time: a large fault on a vCPU); its fields are
   * then added to the entry's event, with what the entry set off meanwhile (OOM kills,
   * stalls, splits), and the entries held start at that instant.
   */
  defer(): (fields: object) => void;
};

/** How a real guest is reached: QMP to its VMM, a shell in the guest, the wall clock. */
export type RealContext = {
  engine: RealEngine;
  /** Guest RAM in bytes. */
  ramSize: number;
  qmp(cmd: QmpCommand): Promise<QmpResponse>;
  /** A command in the guest's shell: its output (stdout and stderr) and exit status. */
  shell(cmd: string, timeoutNs: number): Promise<{ output: string; status: number }>;
  /** Time since the timeline started, ns (the wall clock). */
  now(): number;
  sleep(ns: number): Promise<void>;
  /** Polls `cond` (every 50 ms) until it holds or `timeoutNs` passes. */
  waitUntil(cond: () => boolean | Promise<boolean>, timeoutNs: number): Promise<WaitResult>;
  /** The host memory backing the guest now, bytes (null when the engine cannot tell). */
  hostRssBytes(): number | null;
  /** The balloon target the last `balloon` action set, in 4 KiB pages (QMP cannot be asked for it); null before. */
  balloonTargetPages: number | null;
  /**
   * The guest's scratch file system (engines that attach one, when the scenario has a
   * process_file): where it is mounted and each process's file stream (file_layout.ts).
   */
  files?: { dir: string; streams: Map<number, FileStream> };
  /**
   * Live migration (engines that can run a second VMM): starts the destination VMM
   * (`-incoming`) and returns the URI to migrate to.
   */
  migrationTarget?(): Promise<string>;
  /** After the migration ended: on completion the context talks to the destination from now on (the source is quit). */
  migrationEnded?(completed: boolean): Promise<void>;
};

/** An error in a timeline entry the user can fix (exit 2); the runner names the entry. */
export class ActionError extends InputError {}

export type ActionDef<N extends string = string, F extends Fields = Fields, E extends object = object> = {
  name: N;
  /** One line: what the action does (docs/CLI.md, `balloonlab actions`). */
  doc: string;
  fields: F;
  // NOTE: method signatures (bivariant in their parameters) so that every declaration
  // is also an ActionDef<string, Fields, object>, the form the table is walked in.
  /** Rules across fields (min <= max ...): the field at fault and what is wrong, or null. */
  refine?(a: FieldValues<F>): { field: string; message: string } | null;
  /** Runs on the model guest, at the entry's virtual time. */
  model?(ctx: ModelContext, a: ActionInput<N, F>): E;
  /**
   * Runs on a real guest through its RealContext, on the engines listed. `refuse`
   * says, before the guest boots, why an entry cannot run on that engine as written
   * (a field the real side cannot honour), or null.
   */
  real?: { engines: readonly RealEngine[]; run(ctx: RealContext, a: ActionInput<N, F>): Promise<E>; refuse?(a: ActionInput<N, F>, engine: RealEngine): string | null };
};

/** Declares an action; the types of its fields and event follow from the declaration. */
export function defineAction<const N extends string, F extends Fields, E extends object>(def: ActionDef<N, F, E>): ActionDef<N, F, E> {
  return def;
}

/** The sides an action can run on, model first. */
export function actionSides(def: ActionDef<string, Fields, object>): Side[] {
  const out: Side[] = [];
  if (def.model) out.push('model');
  for (const e of def.real?.engines ?? []) out.push(e);
  return out;
}

/** The zod schema of one timeline entry of this action (at, label, action, then its fields). */
export function entrySchema(def: ActionDef<string, Fields, object>, at: z.ZodType<number, unknown>) {
  const shape: Record<string, z.ZodType<unknown, unknown>> = { at, label: z.string().optional(), action: z.literal(def.name) };
  for (const [k, f] of Object.entries(def.fields)) shape[k] = f.schema;
  let s: z.ZodType<unknown, unknown> = z.strictObject(shape);
  if (def.refine) {
    s = s.superRefine((v, ctx) => {
      const bad = def.refine!(v as never);
      if (bad !== null) ctx.addIssue({ code: 'custom', path: [bad.field], message: bad.message });
    });
  }
  return s;
}
