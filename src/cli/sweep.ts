/**
 * `balloonlab sweep` and `balloonlab worker` (docs/sweeps.md). A sweep's runs go to
 * this machine's threads (`--jobs N`, pool.ts), or to this thread one after another
 * (`--jobs 1`), or to a Redis queue that `balloonlab worker` processes on any number of
 * machines take them from (`--queue URL`, queue.ts). Each way runs the same function
 * (variant_worker.ts) on the same validated scenario, and the results are put in run
 * order, so the document is the same bytes whichever way the runs went (`--reproducible`).
 */
import { dirname, join } from 'node:path';
import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { parseYamlText } from '../scenario/schema.js';
import { validateSweep, sweepRuns, sweepFigures, type SweepRun } from '../scenario/sweep.js';
import { type SweepOutcome, deadFigures, formatSweep, missingFigures, sweepCsv, sweepDocument } from '../report/sweep.js';
import { formatJson } from '../report/json.js';
import { InputError } from '../sim/errors.js';
import { InvariantError } from '../guest/mm/check.js';
import runVariant from './variant_worker.js';
import { createRunPool, type RunTask } from './pool.js';
import { QueueError, parseQueueUrl } from './queue_url.js';

/** What main.ts lends these commands. */
export type SweepHelpers = {
  usageError: (msg: string) => Error;
  readTextFile: (file: string, what: string) => string;
  checkOutputPath: (option: string, target: string | undefined) => void;
  writeOutput: (target: string, text: string) => void;
  parseIntOption: (name: string, v: string, min: number, max: number) => number;
};

type Counts = { done: number; running: number; failed: number };

/**
 * A sweep's progress on stderr: on a terminal one bar (done, running, failed, left);
 * otherwise, when `lines`, a line whenever the counts change (at most one every 2 s,
 * and the last). Notes (a run that failed, one that lost its worker) always print.
 */
class SweepProgress {
  private bars: cliProgress.MultiBar | null = null;
  private bar: cliProgress.SingleBar | null = null;
  private lastLine = '';
  private lastAt = 0;
  private pending: Counts | null = null;

  constructor(private readonly name: string, private readonly total: number, quiet: boolean, private lines: boolean) {
    if (!quiet && process.stderr.isTTY && process.stdout.isTTY) {
      this.bars = new cliProgress.MultiBar({
        format: `sweep ${name} [{bar}] {value}/{total} | done {done} | running {running} | failed {failed} | left {left}`,
        stream: process.stderr, hideCursor: true, clearOnComplete: true,
      }, cliProgress.Presets.shades_classic);
      this.bar = this.bars.create(total, 0, { done: 0, running: 0, failed: 0, left: total });
    } else if (quiet) {
      this.lines = false;
    }
  }

  update(c: Counts): void {
    const left = this.total - c.done - c.failed - c.running;
    if (this.bar) { this.bar.update(c.done + c.failed, { ...c, left }); return; }
    if (!this.lines) return;
    const line = `sweep ${this.name}: done ${c.done}, running ${c.running}, failed ${c.failed}, left ${left}`;
    if (line === this.lastLine) return;
    if (Date.now() - this.lastAt < 2000 && c.done + c.failed < this.total) { this.pending = c; return; }
    this.write(line);
  }

  note(line: string): void {
    if (this.bars) this.bars.log(`${line}\n`);
    else process.stderr.write(`${line}\n`);
  }

  stop(): void {
    this.bars?.stop();
    if (this.pending && this.lines) {
      const c = this.pending;
      const line = `sweep ${this.name}: done ${c.done}, running ${c.running}, failed ${c.failed}, left ${this.total - c.done - c.failed - c.running}`;
      if (line !== this.lastLine) this.write(line);
    }
  }

  private write(line: string): void {
    process.stderr.write(`${line}\n`);
    this.lastLine = line;
    this.lastAt = Date.now();
    this.pending = null;
  }
}

function task(r: SweepRun, file: string, o: { check: boolean; reproducible: boolean }): RunTask {
  return { scenario: r.scenario, source: `${file} (run ${r.index}: ${r.label})`, check: o.check, reproducible: o.reproducible };
}

/** The runs on this machine: `jobs` threads, or this thread for one. Outcomes in run order. */
async function runLocally(runs: readonly SweepRun[], file: string, jobs: number, o: { check: boolean; reproducible: boolean }, progress: SweepProgress): Promise<SweepOutcome[]> {
  const out: SweepOutcome[] = new Array<SweepOutcome>(runs.length);
  const c: Counts = { done: 0, running: 0, failed: 0 };
  const finish = (i: number, r: SweepOutcome) => {
    out[i] = r;
    c.running--;
    if (r.ok) c.done++;
    else { c.failed++; progress.note(`run ${runs[i]!.index} (${runs[i]!.label}) failed: ${r.kind}: ${r.message}`); }
    progress.update(c);
  };
  if (jobs <= 1) {
    for (let i = 0; i < runs.length; i++) {
      c.running++;
      progress.update(c);
      // let the bar draw before this thread is busy with the run
      await new Promise((r) => setTimeout(r, 0));
      finish(i, runVariant(task(runs[i]!, file, o)));
    }
    return out;
  }
  const pool = createRunPool(jobs);
  try {
    let next = 0;
    const lane = async () => {
      while (next < runs.length) {
        const i = next++;
        c.running++;
        progress.update(c);
        finish(i, await pool.run(task(runs[i]!, file, o)));
      }
    };
    await Promise.all(Array.from({ length: jobs }, lane));
  } finally {
    await pool.destroy();
  }
  return out;
}

/** The error a sweep with failed runs ends with: the first failed run's kind says the exit code. */
function failureError(name: string, runs: readonly SweepRun[], outcomes: readonly SweepOutcome[], wrote: string): Error {
  const failed = outcomes.flatMap((r, i) => (r.ok ? [] : [{ i, r }]));
  const first = failed[0]!;
  const r = runs[first.i]!, why = first.r.ok ? '' : first.r.message;
  const msg = `sweep ${name}: ${failed.length} of ${runs.length} runs failed (${failed.slice(0, 3).map((f) => `run ${runs[f.i]!.index}`).join(', ')}${failed.length > 3 ? ', ...' : ''}${wrote}); ${why.includes(`(run ${r.index}: `) ? why : `run ${r.index} (${r.label}): ${why}`}`;
  if (first.r.ok) return new Error(msg);
  switch (first.r.kind) {
    case 'input': return new InputError(msg);
    case 'invariant': return new InvariantError(msg);
    case 'internal': return new Error(msg);
    default: return new QueueError(msg);
  }
}

export function addSweepCommands(program: Command, h: SweepHelpers): void {
  program.command('sweep')
    .description('Run a scenario over every combination of parameter values (and seeds) of a sweep file, on this machine\'s threads or on a Redis queue that balloonlab worker processes take runs from; one line per run.')
    .argument('<sweep>', 'sweep file (YAML: sweep, base, variant?, parameters: [{ path, values | range }], seeds?, figures?)')
    .option('--json <file>', 'write { balloonlab, sweep, base, variant, parameters, seeds, figures, runs: [{ index, point, seed, figures, result }] } to FILE, or - for stdout')
    .option('--csv <file>', 'write the figures as CSV (index, the parameters, seed, one column per figure) to FILE, or - for stdout')
    .option('--check', 'run the invariant checker after every step')
    .option('--quiet', 'no progress on stderr (failures still print)')
    .option('--reproducible', 'leave wall-clock time out so runs are byte-identical')
    .option('--jobs <n>', `runs at once on this machine, each in a worker thread (default: the cores, ${availableParallelism()} here; 1: one after another in this thread)`)
    .option('--queue <url>', 'put the runs on the BullMQ queue in this Redis (redis://[USER:PASSWORD@]HOST[:PORT][/DB], rediss:// for TLS) and wait for balloonlab worker processes to run them; finished runs are kept there, so the same command again resumes')
    .action(async (file: string, o: { json?: string; csv?: string; check?: boolean; quiet?: boolean; reproducible?: boolean; jobs?: string; queue?: string }) => {
      h.checkOutputPath('--json', o.json);
      h.checkOutputPath('--csv', o.csv);
      if (o.json === '-' && o.csv === '-') throw h.usageError('--csv: --json already writes to stdout; give one of them a file');
      if (o.queue !== undefined && o.jobs !== undefined) throw h.usageError('--jobs: the runs of a --queue sweep go to the workers (balloonlab worker --jobs N sets their threads)');
      const target = o.queue !== undefined ? parseQueueUrl('--queue', o.queue) : null;
      const jobs = o.jobs !== undefined ? h.parseIntOption('--jobs', o.jobs, 1, 256) : availableParallelism();
      const sweep = validateSweep(parseYamlText(h.readTextFile(file, 'sweep file'), file), file);
      const baseFile = join(dirname(file), sweep.base);
      const runs = sweepRuns(sweep, h.readTextFile(baseFile, `base scenario of ${file}`), baseFile);
      const figures = sweepFigures(sweep, runs, file);
      const flags = { check: o.check ?? false, reproducible: o.reproducible ?? false };
      const progress = new SweepProgress(sweep.name, runs.length, o.quiet ?? false, target !== null);
      // on the queue, Ctrl-C says how to collect the runs later (a local sweep just ends)
      const interrupted = () => { progress.stop(); process.stderr.write(`\nballoonlab: sweep ${sweep.name} interrupted; its runs stay on the queue: the same command again collects them\n`); process.exit(130); };
      if (target) process.once('SIGINT', interrupted);
      let outcomes: SweepOutcome[];
      try {
        if (target) {
          const { runOnQueue } = await import('./queue.js');
          outcomes = await runOnQueue(target, sweep.name, runs.map((r) => ({ index: r.index, label: r.label, source: `${file} (run ${r.index}: ${r.label})`, doc: r.doc })), { ...flags, progress });
        } else {
          outcomes = await runLocally(runs, file, Math.min(jobs, runs.length), flags, progress);
        }
      } finally {
        progress.stop();
        process.removeListener('SIGINT', interrupted);
      }
      const doc = sweepDocument(sweep, runs, figures, outcomes);
      if (o.json) h.writeOutput(o.json, formatJson(doc) + '\n');
      if (o.csv) h.writeOutput(o.csv, sweepCsv(doc));
      for (const m of missingFigures(doc)) process.stderr.write(`balloonlab: sweep ${sweep.name}: figure ${m.name}: ${m.runs} of ${m.of} runs have no number there (empty in the CSV, null in the JSON)\n`);
      if (o.json !== '-' && o.csv !== '-') process.stdout.write(formatSweep(doc, figures));
      const dead = deadFigures(doc);
      if (dead.length) throw h.usageError(`${file}: figures[${dead[0]!.index}]: ${dead[0]!.name} reached no number in any run (${dead[0]!.why}); the outputs are written, with it empty`);
      if (outcomes.some((r) => !r.ok)) {
        const wrote = [o.json && o.json !== '-' ? o.json : null, o.csv && o.csv !== '-' ? o.csv : null].filter(Boolean).join(' and ');
        throw failureError(sweep.name, runs, outcomes, wrote ? `; ${wrote} hold${wrote.includes(' and ') ? '' : 's'} the others and each failure` : '');
      }
    });

  program.command('worker')
    .description('Take sweep runs off a Redis queue (balloonlab sweep --queue) and run them, several at a time, until interrupted; any number of workers on any machines.')
    .requiredOption('--queue <url>', 'the Redis the sweeps use: redis://[USER:PASSWORD@]HOST[:PORT][/DB], rediss:// for TLS')
    .option('--jobs <n>', `runs at once, each in a worker thread (default: the cores, ${availableParallelism()} here)`)
    .action(async (o: { queue: string; jobs?: string }) => {
      const target = parseQueueUrl('--queue', o.queue);
      const threads = o.jobs !== undefined ? h.parseIntOption('--jobs', o.jobs, 1, 256) : availableParallelism();
      const { runQueueWorker } = await import('./queue.js');
      await runQueueWorker(target, { threads, log: (line) => process.stdout.write(`${line}\n`) });
    });
}
