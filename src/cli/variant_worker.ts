/**
 * One variant of a scenario run in a worker thread (piscina), for `compare --jobs N`.
 * The task carries the validated scenario (plain data), never code; the worker runs it
 * with the same runner as the main thread, so its result document is the same bytes
 * as a run on the main thread (wall-clock fields aside, which --reproducible zeroes).
 * Progress goes back over a MessagePort; errors come back as data, with the kind the
 * CLI maps to an exit code (the error classes do not survive the thread boundary).
 */
import type { MessagePort } from 'node:worker_threads';
import type { ResultDocument } from '../scenario/runner.js';
import { runAnyScenario, type HostResultDocument } from '../scenario/host_runner.js';
import type { Scenario } from '../scenario/schema.js';
import { InputError } from '../sim/errors.js';
import { InvariantError } from '../guest/mm/check.js';

export type VariantTask = {
  scenario: Scenario;
  /** For error messages: the file and variant. */
  source: string;
  seed?: number;
  check: boolean;
  reproducible: boolean;
  /** Where progress (now, end, phase) is posted; absent: none. */
  port?: MessagePort;
};

export type VariantProgress = { now: number; end: number; phase: string };

export type VariantOutcome =
  | { ok: true; doc: ResultDocument | HostResultDocument }
  | { ok: false; kind: 'input' | 'invariant' | 'internal'; name: string; message: string; stack?: string };

export default function runVariant(t: VariantTask): VariantOutcome {
  const port = t.port;
  try {
    const { doc } = runAnyScenario(t.scenario, {
      source: t.source,
      ...(t.seed !== undefined ? { seed: t.seed } : {}),
      check: t.check,
      ...(port ? { onProgress: (now: number, end: number, phase: string) => port.postMessage({ now, end, phase } satisfies VariantProgress) } : {}),
      ...(t.reproducible ? {} : { wallClock: () => performance.now() }),
    });
    return { ok: true, doc };
  } catch (e) {
    const kind = e instanceof InputError ? 'input' : e instanceof InvariantError ? 'invariant' : 'internal';
    const err = e instanceof Error ? e : new Error(String(e));
    return { ok: false, kind, name: err.name, message: err.message, ...(err.stack !== undefined ? { stack: err.stack } : {}) };
  } finally {
    port?.close();
  }
}
