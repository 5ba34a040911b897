/**
 * Sweeps on many machines (docs/sweeps.md): `balloonlab sweep … --queue URL` puts each
 * run on a BullMQ queue in Redis and collects the results; `balloonlab worker --queue
 * URL` on any number of machines takes runs and runs them on the same thread pool as a
 * local sweep (pool.ts). BullMQ does the distributing: locks, stalled-job detection,
 * keeping results. This file only decides what a job is and how both ends use it.
 *
 * - A job is one run: its scenario document (the base with the run's values set, plain
 *   data, validated by the sweep and again by the worker), the balloonlab version, and
 *   the run's flags. Never code. A worker of another version refuses it: the job fails
 *   with a message naming both versions.
 * - Job ids are the sweep's content hash (the version, the flags, every run's scenario
 *   document) and the run's index, so enqueueing again is a no-op: a restarted sweep
 *   finds the runs already done and takes their results, and two people sweeping the
 *   same grid share them. Runs that failed are put back once per `sweep` command.
 * - A worker holds a run under a lock of LOCK_MS that it renews while the run goes on
 *   in a thread; a worker that dies stops renewing, and within about LOCK_MS +
 *   2 × STALLED_INTERVAL_MS another worker's stalled check puts the run back. A run
 *   whose workers die more than MAX_STALLED times fails ("its worker stopped").
 * - The result a worker returns is the run's result document; the sweep orders them by
 *   run index, so the sweep's document is the bytes of a local run.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { Queue, Worker, Job, UnrecoverableError } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { z } from 'zod';
import { VERSION } from '../version.js';
import { validateScenarioFile } from '../scenario/schema.js';
import { InputError } from '../sim/errors.js';
import type { SweepOutcome } from '../report/sweep.js';
import type { SweepDocument } from '../report/sweep_figures.js';
import { type QueueTarget, QueueError } from './queue_url.js';
import { createRunPool } from './pool.js';

/** The one queue every sweep and worker uses (BullMQ's keys: `bull:balloonlab:*`). */
export const QUEUE_NAME = 'balloonlab';
/** A run's lock; a worker renews it every half of it. */
export const LOCK_MS = 8000;
/** How often workers look for runs whose worker died. */
export const STALLED_INTERVAL_MS = 4000;
/** How often one run may lose its worker and be put back before it fails. */
export const MAX_STALLED = 2;
/** Connecting (TCP, TLS, AUTH) may take this long before the command gives up. */
export const CONNECT_TIMEOUT_MS = 5000;
/** Redis gone for this long ends a sweep or a worker (exit 4). */
export const LOST_MS = 60_000;
const POLL_MS = 500;
/** A sweep with runs left and none running for this long says how to start a worker. */
const IDLE_HINT_MS = 30_000;

/** What a job carries. */
export type RunJobData = {
  balloonlab: string;
  sweep: string;
  index: number;
  label: string;
  /** For messages: the sweep file, the run and its values. */
  source: string;
  /** The run's scenario document (plain data, as a scenario file holds it). */
  scenario: unknown;
  check: boolean;
  reproducible: boolean;
};

const jobSchema = z.strictObject({
  balloonlab: z.string(),
  sweep: z.string(),
  index: z.number().int().min(0),
  label: z.string(),
  source: z.string(),
  scenario: z.unknown(),
  check: z.boolean(),
  reproducible: z.boolean(),
});

/** One run to enqueue. */
export type QueueRun = { index: number; label: string; source: string; doc: unknown };

/** Where a sweep on the queue reports. */
export type QueueProgress = {
  update: (c: { done: number; running: number; failed: number }) => void;
  note: (line: string) => void;
};

function redisOptions(t: QueueTarget): RedisOptions {
  return {
    host: t.host, port: t.port, db: t.db,
    ...(t.username !== undefined ? { username: t.username } : {}),
    ...(t.password !== undefined ? { password: t.password } : {}),
    ...(t.tls ? { tls: { servername: t.host } } : {}),
    connectTimeout: CONNECT_TIMEOUT_MS,
    // keep trying while Redis is away (the commands' own bounds say when to give up)
    retryStrategy: (times: number) => Math.min(250 * times, 2000),
  };
}

function errText(e: unknown): string {
  const err = e as { message?: unknown; code?: unknown };
  const msg = typeof err?.message === 'string' && err.message ? err.message : String(e);
  return typeof err?.code === 'string' && !msg.includes(err.code) ? `${err.code}: ${msg}` : msg;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms / 1000} s`)), ms); })]).finally(() => clearTimeout(timer));
}

/**
 * Connects once with no retries and a bounded timeout, and asks PING: an unreachable,
 * password-protected or TLS-mismatched Redis is one clear error, never a hang.
 */
export async function probeRedis(t: QueueTarget): Promise<void> {
  const c = new Redis({ ...redisOptions(t), lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false });
  let last: unknown = null;
  c.on('error', (e) => { last = e; });
  try {
    await withTimeout(c.connect(), CONNECT_TIMEOUT_MS + 1000, 'connect');
    await withTimeout(c.ping(), CONNECT_TIMEOUT_MS, 'PING');
  } catch (e) {
    const why = errText(last ?? e);
    const hint = /NOAUTH|WRONGPASS|invalid password|invalid username/i.test(why) ? 'give the user and password in the URL: redis://USER:PASSWORD@HOST:PORT/DB'
      : /certificate|SSL|TLS|EPROTO|wrong version number/i.test(why) ? 'rediss:// speaks TLS, redis:// plain TCP: the scheme must match the server (a private CA: NODE_EXTRA_CA_CERTS)'
      : 'is redis-server running there, and can this machine reach it?';
    throw new QueueError(`--queue: cannot use Redis at ${t.display}: ${why} (${hint})`);
  } finally {
    c.disconnect();
  }
}

/** The sweep's content hash: what decides its runs' results (the version, the flags, every run's scenario). */
export function sweepHash(runs: readonly QueueRun[], o: { check: boolean; reproducible: boolean }): string {
  const content = JSON.stringify({ balloonlab: VERSION, check: o.check, reproducible: o.reproducible, runs: runs.map((r) => r.doc) });
  return createHash('sha256').update(content).digest('hex').slice(0, 24);
}

/** A run's job id (BullMQ ids must not be bare numbers nor hold ':'). */
export function runJobId(hash: string, index: number): string {
  return `sweep-${hash}-${index}`;
}

/** The kinds a failed job's reason starts with (the worker writes `KIND: message`). */
const KINDS = ['input', 'invariant', 'internal', 'refused'] as const;

function failedOutcome(reason: string | undefined): SweepOutcome & { ok: false } {
  const r = reason ?? '(no reason recorded)';
  if (/stalled more than allowable limit/.test(r)) return { ok: false, kind: 'lost', message: `its worker stopped (killed, or cut off from Redis) more than ${MAX_STALLED} times` };
  const m = /^([a-z]+): ([\s\S]*)$/.exec(r);
  if (m && (KINDS as readonly string[]).includes(m[1]!)) return { ok: false, kind: m[1]!, message: m[2]! };
  return { ok: false, kind: 'queue', message: r };
}

/**
 * Runs a sweep's runs on the queue: enqueues those not there yet (deterministic ids),
 * puts back the ones that failed before, and waits until each is done or failed,
 * reporting as they go. The outcomes are in run order.
 */
export async function runOnQueue(t: QueueTarget, sweepName: string, runs: readonly QueueRun[], o: { check: boolean; reproducible: boolean; progress: QueueProgress }): Promise<SweepOutcome[]> {
  await probeRedis(t);
  const hash = sweepHash(runs, o);
  const queue = new Queue<RunJobData, SweepDocument>(QUEUE_NAME, { connection: { ...redisOptions(t), maxRetriesPerRequest: 1, enableOfflineQueue: false } });
  queue.on('error', () => {}); // seen through the commands that fail
  const ids = runs.map((r) => runJobId(hash, r.index));
  const outcomes: Array<SweepOutcome | undefined> = runs.map(() => undefined);
  const add = (list: readonly QueueRun[]) => queue.addBulk(list.map((r) => ({
    name: sweepName,
    data: { balloonlab: VERSION, sweep: sweepName, index: r.index, label: r.label, source: r.source, scenario: r.doc, check: o.check, reproducible: o.reproducible },
    opts: { jobId: runJobId(hash, r.index), attempts: 1, removeOnComplete: false, removeOnFail: false },
  })));
  try {
    const states = await mapChunked(ids, (id) => queue.getJobState(id));
    let before = 0, requeued = 0;
    const fresh: QueueRun[] = [];
    for (let i = 0; i < runs.length; i++) {
      const s = states[i]!;
      if (s === 'unknown') fresh.push(runs[i]!);
      else if (s === 'completed') before++;
      else if (s === 'failed') {
        const job = await queue.getJob(ids[i]!);
        if (job) {
          o.progress.note(`run ${runs[i]!.index} (${runs[i]!.label}) failed before (${job.failedReason}); back on the queue`);
          await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
          requeued++;
        }
      }
    }
    if (fresh.length) await add(fresh);
    o.progress.note(`sweep ${sweepName}: ${runs.length} runs on queue ${QUEUE_NAME} at ${t.display} (id sweep-${hash}): ${fresh.length} enqueued, ${before} done before${requeued ? `, ${requeued} failed before and put back` : ''}, ${runs.length - fresh.length - before - requeued} already waiting or running`);
    let lastOk = Date.now(), lastMove = Date.now(), hinted = false, lastFailure = '';
    for (;;) {
      let running = 0, moved = false;
      try {
        const pending = runs.map((_, i) => i).filter((i) => outcomes[i] === undefined);
        const now = await mapChunked(pending, (i) => queue.getJobState(ids[i]!));
        const gone: QueueRun[] = [];
        for (let k = 0; k < pending.length; k++) {
          const i = pending[k]!, s = now[k]!, r = runs[i]!;
          if (s === 'active') running++;
          else if (s === 'unknown') gone.push(r);
          else if (s === 'completed' || s === 'failed') {
            const job = await Job.fromId<RunJobData, SweepDocument>(queue, ids[i]!);
            if (!job) { gone.push(r); continue; }
            moved = true;
            if (job.stalledCounter > 0) o.progress.note(`run ${r.index} (${r.label}) lost its worker ${job.stalledCounter === 1 ? 'once' : `${job.stalledCounter} times`} and was run again${job.processedBy ? ` (last by ${job.processedBy})` : ''}`);
            if (s === 'completed' && typeof job.returnvalue === 'object' && job.returnvalue !== null) {
              outcomes[i] = { ok: true, doc: job.returnvalue };
            } else {
              const f = s === 'completed' ? { ok: false as const, kind: 'queue', message: 'the job completed with no result document' } : failedOutcome(job.failedReason);
              outcomes[i] = f;
              o.progress.note(`run ${r.index} (${r.label}) failed: ${f.kind}: ${f.message}`);
            }
          }
        }
        if (gone.length) {
          o.progress.note(`${gone.length} run(s) were no longer on the queue (removed by hand?); enqueued again`);
          await add(gone);
        }
        lastOk = Date.now();
        lastFailure = '';
      } catch (e) {
        lastFailure = errText(e);
        if (Date.now() - lastOk > LOST_MS) throw new QueueError(`--queue: lost Redis at ${t.display} for ${LOST_MS / 1000} s (${lastFailure}); the runs stay on the queue: run the same command again to collect them`);
      }
      const done = outcomes.filter((x) => x?.ok).length, failed = outcomes.filter((x) => x && !x.ok).length;
      o.progress.update({ done, running, failed });
      if (done + failed === runs.length) break;
      if (moved || running > 0) lastMove = Date.now();
      else if (!hinted && !lastFailure && Date.now() - lastMove > IDLE_HINT_MS) {
        hinted = true;
        o.progress.note(`no worker has run anything for ${IDLE_HINT_MS / 1000} s: start one with balloonlab worker --queue ${t.display}`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    return outcomes.map((x) => x!);
  } finally {
    await queue.close().catch(() => {});
  }
}

/** f over xs, at most 64 at a time (each is a round trip to Redis). */
async function mapChunked<T, R>(xs: readonly T[], f: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < xs.length; i += 64) out.push(...await Promise.all(xs.slice(i, i + 64).map(f)));
  return out;
}

/**
 * `balloonlab worker`: takes runs off the queue, `threads` at a time, each on the run
 * pool, until SIGINT or SIGTERM (the runs it holds finish first; a second signal
 * abandons them, and other workers run them again). Ends with a QueueError when Redis
 * is gone for LOST_MS.
 */
export async function runQueueWorker(t: QueueTarget, o: { threads: number; log: (line: string) => void }): Promise<void> {
  await probeRedis(t);
  const me = `${hostname()}:${process.pid}`;
  const pool = createRunPool(o.threads);
  const processor = async (job: Job<unknown, SweepDocument>): Promise<SweepDocument> => {
    const raw = job.data as { balloonlab?: unknown } | null;
    const theirs = typeof raw === 'object' && raw !== null && typeof raw.balloonlab === 'string' ? raw.balloonlab : null;
    if (theirs !== VERSION) {
      const why = `this worker (${me}) is balloonlab ${VERSION} and the run was enqueued by ${theirs === null ? 'something that is not balloonlab' : `balloonlab ${theirs}`}: run workers of the sweep's version`;
      o.log(`refused job ${job.id}: ${why}`);
      throw new UnrecoverableError(`refused: ${why}`);
    }
    const p = jobSchema.safeParse(job.data);
    if (!p.success) {
      const iss = p.error.issues[0]!;
      throw new UnrecoverableError(`refused: job ${job.id} is not a balloonlab run: ${iss.path.join('.') || '(top level)'}: ${iss.message}`);
    }
    const d = p.data;
    const what = `run ${d.index} of ${d.sweep} (${d.label})`;
    let scenario;
    try {
      scenario = validateScenarioFile(d.scenario, d.source).base;
    } catch (e) {
      if (e instanceof InputError) { o.log(`${what} refused: ${e.message}`); throw new UnrecoverableError(`input: ${e.message}`); }
      throw e;
    }
    const again = job.attemptsStarted > 1 ? ` (start ${job.attemptsStarted}${job.stalledCounter ? `: its worker stopped ${job.stalledCounter === 1 ? 'once' : `${job.stalledCounter} times`}` : ''})` : '';
    o.log(`${what} started${again}`);
    const t0 = performance.now();
    const out = await pool.run({ scenario, source: d.source, check: d.check, reproducible: d.reproducible });
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    if (!out.ok) {
      o.log(`${what} failed after ${secs} s: ${out.message}`);
      throw new UnrecoverableError(`${out.kind}: ${out.message}`);
    }
    o.log(`${what} done in ${secs} s`);
    return out.doc;
  };
  const worker = new Worker<unknown, SweepDocument>(QUEUE_NAME, processor, {
    connection: { ...redisOptions(t), maxRetriesPerRequest: null },
    concurrency: o.threads,
    name: me,
    lockDuration: LOCK_MS,
    stalledInterval: STALLED_INTERVAL_MS,
    maxStalledCount: MAX_STALLED,
    autorun: false,
  });
  let lastError = '';
  worker.on('error', (e) => {
    const m = errText(e);
    if (m !== lastError) o.log(`queue: ${m}`);
    lastError = m;
  });
  // A watchdog on its own connection: commands fail at once while Redis is away.
  const watch = new Redis({ ...redisOptions(t), maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => 1000 });
  watch.on('error', () => {});
  o.log(`balloonlab ${VERSION} worker ${me}: ${o.threads} thread(s), taking runs from queue ${QUEUE_NAME} at ${t.display} (Ctrl-C stops after the runs it holds)`);
  await new Promise<void>((resolve, reject) => {
    let lastOk = Date.now(), stopping = false;
    const stop = (err: Error | null) => {
      stopping = true;
      clearInterval(timer);
      void worker.close().catch(() => {}).then(() => pool.destroy()).then(() => watch.disconnect()).then(() => (err ? reject(err) : resolve()));
    };
    const timer = setInterval(() => {
      watch.ping().then(() => { lastOk = Date.now(); }, () => {
        if (!stopping && Date.now() - lastOk > LOST_MS) {
          o.log(`lost Redis at ${t.display} for ${LOST_MS / 1000} s; stopping (the runs this worker held go back to the queue)`);
          clearInterval(timer);
          stopping = true;
          // close() would wait for Redis to answer; the held runs stall and other workers take them
          watch.disconnect();
          void Promise.allSettled([worker.disconnect(), pool.destroy()]).then(() => reject(new QueueError(`worker: lost Redis at ${t.display} for ${LOST_MS / 1000} s`)));
        }
      });
    }, 5000);
    const onSignal = (sig: string) => {
      if (stopping) { o.log(`${sig} again: abandoning the runs held (other workers run them again)`); process.exit(130); }
      o.log(`${sig}: stopping after the runs this worker holds`);
      stop(null);
    };
    process.on('SIGINT', () => onSignal('SIGINT'));
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    worker.run().catch((e: unknown) => { if (!stopping) stop(new QueueError(`worker: ${errText(e)}`)); });
  });
  o.log('stopped');
}
