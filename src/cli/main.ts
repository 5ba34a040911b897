/**
 * The balloonlab command (CLI.md). The only layer, with server/, that touches the
 * file system, the terminal and the real clock.
 *
 * Exit codes: 0 success; 1 the model broke an invariant (a bug: please report it);
 * 2 bad input (one clear message on stderr naming what was wrong and what is allowed);
 * 3 a real guest did not do what a scenario asked; 4 a sweep's Redis queue could not be
 * used, or a run on it could not be run (docs/sweeps.md); 70 anything else (an internal
 * error: one line saying so; the stack trace only with BALLOONLAB_DEBUG=1).
 */
import { existsSync, readFileSync, writeFileSync, renameSync, rmSync, accessSync, statSync, openSync, writeSync, closeSync, constants as fsConstants } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { KERNEL_VERSIONS, type KernelVersion } from '../guest/mm/kernel_era.js';
import { availableParallelism } from 'node:os';
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { VariantTask, VariantOutcome, VariantProgress } from './variant_worker.js';
import { VERSION } from '../version.js';
import type { Scenario, ScenarioFile } from '../scenario/schema.js';
import { loadScenarioText, runScenario, scenarioEnd, type RunOptions, type ResultDocument } from '../scenario/runner.js';
import { UnitError, parseSize, parseTime, formatSize, formatTime } from '../scenario/units.js';
import { InvariantError } from '../guest/mm/check.js';
import { guestMemoryProblem } from '../guest/mm/layout.js';
import { defaultGuestConfig } from '../guest/guest.js';
import { defaultCompareRows, formatCompare, formatCompareGroups, formatEraDiff } from '../report/compare.js';
import { runWithinMemory, scenarioMemoryEstimate, memoryBudget } from './memory_gate.js';
import { formatJson } from '../report/json.js';
import { addPictureCommands } from './plot.js';
import { runHostScenario, isHostDocument, type HostResultDocument } from '../scenario/host_runner.js';
import { hostCompareRows, hostSummary } from '../report/host_compare.js';
import { addSweepCommands } from './sweep.js';
import { QueueError } from './queue_url.js';
import * as proc from '../report/proc.js';
import { kpageflags } from '../report/kpageflags.js';
import { memUsage, formatMemUsage, hibernationSaveable } from '../report/mem_usage.js';
import { type Vm, createVm, guestPageReadsZero, guestPageUnbacked } from '../machine/machine.js';
import { benchAlloc, DEFAULT_ALLOC_BENCH } from '../../bench/alloc.js';
import { realGuestImagePaths } from '../integrations/v86/boot.js';
import { checkV86Scenario, runV86Scenario } from '../integrations/v86/side.js';
import { formatRealReport, runModelSide, entryText, diffRows } from '../integrations/real/diff.js';
import type { RealEvent, RealRunResult } from '../integrations/real/runner.js';
import { qemuImage } from '../integrations/qemu/qemu.js';
import { type QemuRunResult, checkQemuScenario, runQemuScenario, qemuScratchPlan } from '../integrations/qemu/side.js';
import { actionsInfo, actionsMarkdown } from '../actions/index.js';
import { benchCompaction } from '../../bench/compaction.js';
import { benchMigration } from '../../bench/migration.js';
import { benchScenario } from '../../bench/scenario.js';
import { benchHost } from '../../bench/host.js';
import { benchVirtqueue, DEFAULT_VIRTQUEUE_BENCH } from '../../bench/virtqueue.js';
import { benchScale, DEFAULT_SCALE_SIZES } from '../../bench/scale.js';
import { InputError } from '../sim/errors.js';

/** Bad input: exit 2 with this message. */
class UsageError extends InputError {}

const PROC_FILES = ['vmstat', 'buddyinfo', 'pagetypeinfo', 'meminfo', 'zoneinfo', 'slabinfo', 'page-types', 'kpageflags', 'extfrag_index', 'unusable_index', 'mem-usage'] as const;
type ProcFile = (typeof PROC_FILES)[number];
const BENCHES = ['alloc', 'compaction', 'virtqueue', 'migration', 'scenario', 'host', 'scale'] as const;

/** A file's text, or a UsageError naming it and why it cannot be read. */
function readTextFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`${file}: cannot read ${what} (${code === 'ENOENT' ? `no such file${bundledHint(file)}` : code ?? String(e)})`);
  }
}

/** The package's own scenarios/ (next to dist/), for a hint when a path does not exist here. */
const BUNDLED_SCENARIOS = fileURLToPath(new URL('../../../scenarios/', import.meta.url));

/** `; the bundled one is …/scenarios/x.yaml` when `file` names a bundled scenario that is not in the working directory. */
function bundledHint(file: string): string {
  const rel = file.replace(/^(\.\/)?scenarios\//, '');
  const bundled = join(BUNDLED_SCENARIOS, rel);
  return rel.endsWith('.yaml') && existsSync(bundled) && bundled !== join(process.cwd(), file) ? `; the bundled one is ${bundled}` : '';
}

function readScenarioFile(file: string): ReturnType<typeof loadScenarioText> {
  return loadScenarioText(readTextFile(file, 'scenario file'), file);
}

function parseIntOption(name: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`${name}: expected a whole number, got "${v}"`);
  const n = Number(v);
  if (n < min || n > max) throw new UsageError(`${name}: must be from ${min} to ${max}, got ${n}`);
  return n;
}

/** Parses an option's value; a UnitError becomes a message naming the option. */
function optionValue<T>(name: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof UnitError) throw new UsageError(`${name}: ${e.message}`);
    throw e;
  }
}

/**
 * Refuses, before any work, an output path that cannot be written: its directory must
 * exist and be writable, and the path must not be a directory.
 */
function checkOutputPath(option: string, target: string | undefined): void {
  if (target === undefined || target === '-') return;
  const dir = dirname(target);
  try {
    if (existsSync(target) && statSync(target).isDirectory()) throw new UsageError(`${option}: ${target} is a directory`);
    accessSync(dir, fsConstants.W_OK);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`${option}: cannot write ${target}: ${code === 'ENOENT' ? `no directory ${dir}` : code === 'EACCES' ? `${dir} is not writable` : code ?? String(e)}`);
  }
}

/** The scenario of a file, or the variant named (--variant). */
function pickVariant(sf: ScenarioFile, file: string, name: string | undefined): Scenario {
  if (name === undefined) return sf.base;
  const v = sf.variants.find((x) => x.name === name);
  if (!v) throw new UsageError(`--variant: ${file} has no variant "${name}" (${sf.variants.length ? `its variants: ${sf.variants.map((x) => x.name).join(', ')}` : 'it has no variants'})`);
  return v.scenario;
}

/** Writes output to a file atomically (temp file + rename), or to stdout for "-". */
function writeOutput(target: string, text: string): void {
  if (target === '-') {
    process.stdout.write(text);
    return;
  }
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new UsageError(`${target}: cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

/** A progress bar on stderr when both stdout and stderr are terminals and not --quiet. */
function makeProgress(quiet: boolean, label: string): { update: RunOptions['onProgress']; stop: () => void } {
  if (quiet || !process.stderr.isTTY || !process.stdout.isTTY) return { update: undefined, stop: () => {} };
  const bar = new cliProgress.SingleBar({
    format: `${label} [{bar}] {percentage}% | virtual {now} of {end} {phase}`,
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: true,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update: (now, end, phase) => {
      const total = Math.max(1, end);
      if (!started) { bar.start(total, 0, { now: formatTime(0), end: formatTime(end), phase: '' }); started = true; }
      bar.update(Math.min(now, total), { now: formatTime(now), end: formatTime(end), phase: phase ? `| ${phase}` : '' });
    },
    stop: () => { if (started) bar.stop(); },
  };
}

/**
 * Runs the variants on a piscina pool of `jobs` worker threads (variant_worker.ts) and
 * returns their documents in the variants' order, whatever order they finish in. One
 * progress bar per variant when the terminal shows them; a failed variant fails the
 * command with its own error (exit 2 for bad input, 1 for a broken invariant).
 */
async function runVariantsInWorkers(tasks: Array<{ scenario: Scenario; source: string; label: string }>, jobs: number, o: { seed: number | undefined; check: boolean; reproducible: boolean; quiet: boolean }): Promise<AnyDocument[]> {
  const pool = new Piscina<VariantTask, VariantOutcome>({ filename: new URL('./variant_worker.js', import.meta.url).href, minThreads: jobs, maxThreads: jobs, idleTimeout: 1000 });
  const showBars = !o.quiet && process.stderr.isTTY && process.stdout.isTTY;
  const bars = showBars ? new cliProgress.MultiBar({ format: '{label} [{bar}] {percentage}% | virtual {now} of {end} {phase}', stream: process.stderr, hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic) : null;
  try {
    // at most `jobs` at once, and no more than fit in memory (a 2 TiB guest holds ~16 GiB)
    const outcomes = await runWithinMemory(tasks.length, jobs, (i) => scenarioMemoryEstimate(tasks[i]!.scenario), memoryBudget(), (i) => {
      const t = tasks[i]!;
      const { port1, port2 } = new MessageChannel();
      const bar = bars?.create(1, 0, { label: t.label, now: formatTime(0), end: '?', phase: '' }) ?? null;
      port1.on('message', (p: VariantProgress) => {
        if (!bar) return;
        bar.setTotal(Math.max(1, p.end));
        bar.update(Math.min(p.now, Math.max(1, p.end)), { label: t.label, now: formatTime(p.now), end: formatTime(p.end), phase: p.phase ? `| ${p.phase}` : '' });
      });
      const task: VariantTask = { scenario: t.scenario, source: t.source, check: o.check, reproducible: o.reproducible, port: port2, ...(o.seed !== undefined ? { seed: o.seed } : {}) };
      return pool.run(task, { transferList: [port2] }).finally(() => port1.close());
    });
    return outcomes.map((r) => {
      if (r.ok) return r.doc;
      if (r.kind === 'input') throw new InputError(r.message);
      if (r.kind === 'invariant') throw new InvariantError(r.message);
      const e = new Error(r.message);
      e.name = r.name;
      if (r.stack !== undefined) e.stack = r.stack;
      throw e;
    });
  } finally {
    bars?.stop();
    await pool.destroy();
  }
}

function wallClock(): number {
  return performance.now();
}

/** One event field as text: arrays of numbers space-separated, objects (and arrays holding them) as JSON. */
function fieldText(v: unknown): string {
  if (Array.isArray(v)) return v.every((x) => typeof x !== 'object' || x === null) ? `[${v.join(' ')}]` : JSON.stringify(v);
  if (typeof v === 'object' && v !== null) return JSON.stringify(v);
  return String(v);
}

function summary(doc: ResultDocument): string {
  const lines: string[] = [];
  lines.push(`scenario ${doc.scenario}  seed ${doc.seed}  guest ${formatSize(doc.guest.memory_bytes)} ${doc.guest.vcpus} vcpu(s)`);
  lines.push(`simulated ${formatTime(doc.duration_ns)} in ${doc.wall_ms.toFixed(0)} ms wall`);
  for (const e of doc.events) {
    const { t_ns, kind, label, ...rest } = e;
    const fields = Object.entries(rest).map(([k, v]) => `${k}=${fieldText(v)}`);
    lines.push(`  ${formatTime(t_ns).padStart(9)}  ${kind}${label ? ` (${label})` : ''}  ${fields.join('  ')}`);
  }
  const v = doc.vmstat;
  lines.push(`nr_free_pages ${v.nr_free_pages}  pgalloc_dma32 ${v.pgalloc_dma32}  pgalloc_normal ${v.pgalloc_normal}  pgfree ${v.pgfree}`);
  const b = doc.balloon;
  if (b.features.length || b.inflated) {
    // One unit per figure, and the balloon's size named apart from the guest's logical size (QMP's `actual`).
    const pages = (n: number) => `${n} pages (${formatSize(n * 4096)})`;
    lines.push(`balloon size ${pages(b.actual_pages)}  target ${pages(b.target_pages)}  guest logical size (query-balloon actual) ${formatSize(doc.guest.memory_bytes - b.actual_pages * 4096)}`);
    lines.push(`balloon_inflate ${b.inflated}  balloon_deflate ${b.deflated}  balloon_migrate ${b.migrated} pages  features ${b.features.join(',') || '-'}`);
  }
  if (v.oom_kill) lines.push(`oom_kill ${v.oom_kill} (the events with oom_kills=N set them off; workloads' kills count here too)`);
  const h = doc.host;
  lines.push(`host rss ${(h.rss_bytes / 2 ** 20).toFixed(1)} MiB  first touches ${h.first_touches}  refaults ${h.refaults}  discarded ${h.discarded_pages} pages`);
  return lines.join('\n') + '\n';
}

type AnyDocument = ResultDocument | HostResultDocument;

/** runOne for any scenario: a host scenario (vms:) runs on runHostScenario. */
function runAnyOne(s: Scenario, opts: { seed?: number; check?: boolean; quiet?: boolean; reproducible?: boolean; label: string; source: string }): AnyDocument {
  if (!s.vms) return runOne(s, opts).doc;
  const progress = makeProgress(opts.quiet ?? false, opts.label);
  try {
    return runHostScenario(s, {
      source: opts.source,
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
      check: opts.check ?? false,
      ...(progress.update ? { onProgress: progress.update } : {}),
      ...(opts.reproducible ? {} : { wallClock }),
    }).doc;
  } finally {
    progress.stop();
  }
}

/** The comparison table of a set of documents: the host rows for host scenarios, the single-guest rows otherwise. */
function compareText(scenario: string, names: string[], docs: AnyDocument[]): string {
  const host = docs.filter(isHostDocument);
  if (host.length === docs.length) return formatCompare(scenario, names, host, hostCompareRows());
  if (host.length > 0) throw new UsageError(`${scenario}: variants mix host scenarios (vms:) and single-guest ones; compare one kind at a time`);
  return formatCompareGroups(scenario, names, docs as ResultDocument[], defaultCompareRows(docs as ResultDocument[]));
}

/**
 * The model's tracepoints into FILE (run --trace), as the kernel's trace buffer prints
 * them: the task, its vCPU, the virtual time in seconds, the event and its fields.
 */
function traceWriter(file: string): { onBoot: (vm: Vm) => void; close: () => void } {
  const fd = openSync(file, 'w');
  let buf = '# tracer: balloonlab (the model\'s tracepoints; time is the guest\'s virtual time)\n#           TASK  CPU    TIMESTAMP  FUNCTION\n';
  const flush = () => { if (buf.length > 0) { writeSync(fd, buf); buf = ''; } };
  return {
    onBoot: (vm) => {
      const pg = vm.guest.pgdat;
      pg.trace = (comm, event, fields) => {
        buf += `${comm.padStart(16)} [${String(pg.tasks.cpu).padStart(3, '0')}] ${(pg.nowNs() / 1e9).toFixed(6).padStart(12)}: ${event}: ${fields}\n`;
        if (buf.length > 1 << 16) flush();
      };
    },
    close: () => { flush(); closeSync(fd); },
  };
}

function runOne(s: Scenario, opts: { seed?: number; check?: boolean; quiet?: boolean; reproducible?: boolean; label: string; until?: number; source: string; onBoot?: (vm: Vm) => void }) {
  const progress = makeProgress(opts.quiet ?? false, opts.label);
  try {
    return runScenario(s, {
      ...(opts.onBoot !== undefined ? { onBoot: opts.onBoot } : {}),
      source: opts.source,
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
      ...(opts.until !== undefined ? { until: opts.until } : {}),
      check: opts.check ?? false,
      ...(progress.update ? { onProgress: progress.update } : {}),
      ...(opts.reproducible ? {} : { wallClock }),
    });
  } finally {
    progress.stop();
  }
}

/** The two variants --era-diff compares: named "a,b", or the first two whose kernels differ. */
function eraDiffPair(variants: Array<{ name: string; kernel: string }>, arg: string | boolean): [number, number] {
  if (typeof arg === 'string') {
    const parts = arg.split(',');
    const idx = parts.map((p) => variants.findIndex((v) => v.name === p.trim()));
    if (parts.length !== 2 || idx.some((i) => i < 0)) throw new UsageError(`--era-diff: expected two variant names as a,b (variants: ${variants.map((v) => v.name).join(', ')}), got "${arg}"`);
    return [idx[0]!, idx[1]!];
  }
  for (let i = 0; i < variants.length; i++) for (let j = i + 1; j < variants.length; j++) if (variants[i]!.kernel !== variants[j]!.kernel) return [i, j];
  throw new UsageError(`--era-diff: every variant runs Linux ${variants[0]?.kernel ?? '6.1'}; name two variants (--era-diff a,b) or give variants different guest.kernel`);
}

function procText(vm: Vm, file: ProcFile, pageOwner = false): string | Uint8Array {
  const g = vm.guest;
  switch (file) {
    case 'vmstat': return proc.procVmstat(g);
    case 'buddyinfo': return proc.procBuddyinfo(g);
    case 'pagetypeinfo': return proc.procPagetypeinfo(g, { mixed: pageOwner });
    case 'meminfo': return proc.procMeminfo(g);
    case 'zoneinfo': return proc.procZoneinfo(g);
    case 'slabinfo': return proc.procSlabinfo(g);
    case 'page-types': return proc.pageTypes(g);
    case 'kpageflags': return kpageflags(g);
    case 'extfrag_index': return proc.procExtfragIndex(g);
    case 'unusable_index': return proc.procUnusableIndex(g);
    case 'mem-usage': return memUsageText(vm);
  }
}

/**
 * makedumpfile --mem-usage's table, then what a `-d 31` dump would write with the
 * balloon's pages known as PageOffline (Linux 4.20 on) and without (PG_balloon
 * kernels, or a makedumpfile before 1.6.5), and what reading them costs the host.
 */
function memUsageText(vm: Vm): string {
  const zero = guestPageReadsZero(vm), unbacked = guestPageUnbacked(vm);
  const offline = vm.guest.pgdat.balloonPageType === 'offline';
  // the table as this guest's kernel and makedumpfile see it; then the other naming
  const u = memUsage(vm.guest, zero, unbacked, offline), other = memUsage(vm.guest, zero, unbacked, !offline);
  const [known, unknown] = offline ? [u, other] : [other, u];
  const mib = (pages: number) => `${(pages * 4096 / 2 ** 20).toFixed(1)} MiB`;
  return formatMemUsage(u) +
    `\n# balloonlab: balloon pages are ${vm.guest.pgdat.balloonPageType === 'none' ? 'unmarked (Linux 3.x has no page flag for them)' : `PG_${vm.guest.pgdat.balloonPageType}`}; a -d 31 dump writes ${u.kernData} pages (${mib(u.kernData)}) before compression, and its zero check reads ${u.readDiscarded} pages the host holds no memory for (${mib(u.readDiscarded)} faulted back in on the host)\n` +
    `# balloonlab: PageOffline known (Linux 4.20 on): ${known.offline} balloon pages skipped, ${known.readDiscarded} such reads; PG_balloon (before): the balloon pages read like kernel data, ${unknown.readDiscarded} such reads\n` +
    `# balloonlab: hibernation image (saveable pages, before image_size shrinking): ${hibernationSaveable(vm.guest, offline)} pages (${mib(hibernationSaveable(vm.guest, offline))}); ${hibernationSaveable(vm.guest, true)} skipping PageOffline, ${hibernationSaveable(vm.guest, false)} saving the balloon's pages\n`;
}

function buildProgram(): Command {
  const program = new Command();
  program
    .name('balloonlab')
    .description('An executable model of memory ballooning in virtual machines: guest mm, virtio-balloon, the virtio wire and the hypervisor.')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .showHelpAfterError(false);

  program.command('run')
    .description('Run a scenario and print a summary (or the JSON result document).')
    .argument('<scenario>', 'scenario file (YAML)')
    .option('--seed <n>', 'override the scenario\'s seed')
    .option('--json <file>', 'write the result document as JSON to FILE, or - for stdout')
    .option('--check', 'run the invariant checker after every step; stop at the first violation')
    .option('--quiet', 'no progress bar')
    .option('--reproducible', 'leave wall-clock time out (wall_ms 0) so runs are byte-identical')
    .option('--variant <name>', 'run this variant of the scenario (its variants: list) instead of the base')
    .option('--trace <file>', 'write the guest\'s compaction and reclaim tracepoints (mm_compaction_begin/end, _deferred, mm_vmscan_kswapd_wake, ...) to FILE in the kernel\'s trace format')
    .action((file: string, o: { seed?: string; json?: string; check?: boolean; quiet?: boolean; reproducible?: boolean; variant?: string; trace?: string }) => {
      checkOutputPath('--json', o.json);
      checkOutputPath('--trace', o.trace);
      if (o.trace === '-') throw new UsageError('--trace: give a file (stdout has the summary)');
      const sf = readScenarioFile(file);
      const s = pickVariant(sf, file, o.variant);
      const seed = o.seed !== undefined ? parseIntOption('--seed', o.seed, 0, Number.MAX_SAFE_INTEGER) : undefined;
      if (o.trace !== undefined && s.vms) throw new UsageError('--trace: single-guest scenarios only (this one has vms:)');
      const tw = o.trace !== undefined ? traceWriter(o.trace) : null;
      let doc: AnyDocument;
      try {
        doc = tw === null
          ? runAnyOne(s, { seed, check: o.check, quiet: o.quiet || o.json === '-', reproducible: o.reproducible, label: o.variant ?? s.name, source: file })
          : runOne(s, { seed, check: o.check, quiet: o.quiet || o.json === '-', reproducible: o.reproducible, label: o.variant ?? s.name, source: file, onBoot: tw.onBoot }).doc;
      } finally {
        tw?.close();
      }
      if (o.json) writeOutput(o.json, formatJson(doc) + '\n');
      if (o.json !== '-') process.stdout.write(isHostDocument(doc) ? hostSummary(doc, formatTime) : summary(doc));
    });

  program.command('compare')
    .description('Run every variant of a scenario and print them side by side (mmtests compare-kernels layout).')
    .argument('<scenario>', 'scenario file with a variants: list')
    .option('--seed <n>', 'override the scenario\'s seed for every variant')
    .option('--json <file>', 'write { scenario, variants: [{ name, result }] } to FILE, or - for stdout')
    .option('--check', 'run the invariant checker after every step')
    .option('--quiet', 'no progress bar')
    .option('--reproducible', 'leave wall-clock time out so runs are byte-identical')
    .option('--jobs <n>', `variants run at once, each in a worker thread (default: the cores, ${availableParallelism()} here; 1: one after another in this thread)`)
    .option('--era-diff [a,b]', 'after the table, name the kernel mechanisms that differ between two variants (default: the first two that run different kernels) and how often each acted')
    .action(async (file: string, o: { seed?: string; json?: string; check?: boolean; quiet?: boolean; reproducible?: boolean; jobs?: string; eraDiff?: string | boolean }) => {
      checkOutputPath('--json', o.json);
      const jobs = o.jobs !== undefined ? parseIntOption('--jobs', o.jobs, 1, 256) : availableParallelism();
      const sf = readScenarioFile(file);
      if (sf.variants.length === 0) throw new UsageError(`${file}: variants: the scenario has no variants to compare (add a variants: list of { name, ...overrides })`);
      const seed = o.seed !== undefined ? parseIntOption('--seed', o.seed, 0, Number.MAX_SAFE_INTEGER) : undefined;
      const pair = o.eraDiff === undefined ? null : eraDiffPair(sf.variants.map((v) => ({ name: v.name, kernel: v.scenario.guest.kernel })), o.eraDiff);
      const quiet = o.quiet || o.json === '-';
      const tasks = sf.variants.map((v) => ({ scenario: v.scenario, source: `${file} (variant ${v.name})`, label: v.name }));
      const docs = Math.min(jobs, tasks.length) <= 1
        ? tasks.map((t) => runAnyOne(t.scenario, { seed, check: o.check, quiet, reproducible: o.reproducible, label: t.label, source: t.source }))
        : await runVariantsInWorkers(tasks, Math.min(jobs, tasks.length), { seed, check: o.check ?? false, reproducible: o.reproducible ?? false, quiet });
      const names = sf.variants.map((v) => v.name);
      if (o.json) writeOutput(o.json, formatJson({ scenario: sf.base.name, variants: names.map((name, i) => ({ name, result: docs[i] })) }) + '\n');
      if (o.json !== '-') process.stdout.write(compareText(sf.base.name, names, docs));
      if (pair && o.json !== '-') {
        const [a, b] = [docs[pair[0]]!, docs[pair[1]]!];
        if (isHostDocument(a) || isHostDocument(b)) throw new UsageError('--era-diff: a host scenario has a kernel per VM; compare single-guest variants');
        process.stdout.write('\n' + formatEraDiff({ name: names[pair[0]]!, doc: a }, { name: names[pair[1]]!, doc: b }));
      }
    });

  addSweepCommands(program, { usageError: (msg) => new UsageError(msg), readTextFile, checkOutputPath, writeOutput, parseIntOption });

  program.command('proc')
    .description('Print a guest /proc file exactly as the kernel formats it.')
    .addArgument(new Command().createArgument('<file>', `one of: ${PROC_FILES.join(', ')}`))
    .option('--memory <size>', 'guest memory of a freshly booted guest, e.g. 4GiB', '1GiB')
    .option('--vcpus <n>', 'vcpus of a freshly booted guest', '1')
    .option('--seed <n>', 'seed (boot layout: KASLR, allocation order)')
    .option('--scenario <file>', 'run this scenario first and show the guest at its end (or at --at)')
    .option('--at <time>', 'with --scenario: stop at this virtual time, e.g. 30s')
    .option('--variant <name>', 'with --scenario: that variant of the scenario')
    .option('--kernel <version>', 'the freshly booted guest\'s kernel: 6.1 or 3.6', '6.1')
    .option('--page-owner', 'pagetypeinfo as a page_owner=on kernel prints it: with the "Number of mixed blocks" table')
    .action((file: string, o: { memory: string; vcpus: string; seed?: string; scenario?: string; at?: string; variant?: string; kernel: string; pageOwner?: boolean }) => {
      if (!(PROC_FILES as readonly string[]).includes(file)) throw new UsageError(`proc: unknown file "${file}" (allowed: ${PROC_FILES.join(', ')})`);
      const seed = o.seed !== undefined ? parseIntOption('--seed', o.seed, 0, Number.MAX_SAFE_INTEGER) : undefined;
      let vm: Vm;
      if (o.scenario) {
        const sf = readScenarioFile(o.scenario);
        const s = pickVariant(sf, o.scenario, o.variant);
        if (s.vms) throw new UsageError(`--scenario: ${o.scenario} runs a host with ${s.vms.length} VMs (vms:); proc shows one guest's files (run it with balloonlab run --json for every VM's figures)`);
        const until = o.at !== undefined ? optionValue('--at', () => parseTime(o.at!)) : undefined;
        if (until !== undefined && until > scenarioEnd(s)) throw new UsageError(`--at: ${o.at} is past the scenario's end (${formatTime(scenarioEnd(s))})`);
        vm = runOne(s, { seed, quiet: true, label: s.name, until, source: o.scenario }).vm;
      } else {
        if (o.at !== undefined) throw new UsageError('--at: only with --scenario');
        if (o.variant !== undefined) throw new UsageError('--variant: only with --scenario');
        const memoryBytes = optionValue('--memory', () => parseSize(o.memory));
        if (!(KERNEL_VERSIONS as readonly string[]).includes(o.kernel)) throw new UsageError(`--kernel: "${o.kernel}" is not a modelled kernel (allowed: ${KERNEL_VERSIONS.join(', ')})`);
        vm = createVm({ guest: defaultGuestConfig({ memoryBytes, vcpus: parseIntOption('--vcpus', o.vcpus, 1, 256), seed: seed ?? 1, kernel: o.kernel as KernelVersion }), balloon: null, memPrealloc: false });
      }
      const out = procText(vm, file as ProcFile, o.pageOwner ?? false);
      if (typeof out === 'string') process.stdout.write(out);
      else process.stdout.write(out);
    });

  program.command('real-guest')
    .description('Run a scenario on a real Linux guest and print what it did; --diff runs it on the model too, side by side. Engines: v86 (Debian\'s i386 6.1 in v86, driving balloonlab\'s balloon device) and qemu (Debian\'s x86-64 6.1 cloud kernel under QEMU 10 with QEMU\'s own virtio-balloon).')
    .argument('<scenario>', 'scenario file (scenarios/real/ has the bundled ones)')
    .option('--engine <engine>', 'the real guest: v86 or qemu', 'v86')
    .option('--json <file>', 'write { real, model?, diff? } as JSON to FILE, or - for stdout')
    .option('--diff', 'also run the scenario on the model guest and print both side by side')
    .option('--variant <name>', 'run this variant of the scenario (its variants: list) instead of the base')
    .option('--cache-dir <dir>', 'where the image script put the boot set (v86: scripts/real-guest/build-image.sh, .cache/real-guest; qemu: scripts/real-guest/build-qemu-image.sh, .cache/real-guest-qemu)')
    .option('--trace <prefix>', 'qemu: record the guest kernel\'s compaction and reclaim tracepoints over the timeline into PREFIX.real.txt (with --diff, the model\'s into PREFIX.model.txt)')
    .action(async (file: string, o: { engine: string; json?: string; diff?: boolean; cacheDir?: string; variant?: string; trace?: string }) => {
      checkOutputPath('--json', o.json);
      if (o.trace !== undefined) {
        checkOutputPath('--trace', o.trace + '.real.txt');
        if (o.engine !== 'qemu') throw new UsageError('--trace: the qemu engine only (v86\'s kernel has no tracefs here)');
      }
      if (o.engine !== 'v86' && o.engine !== 'qemu') throw new UsageError(`--engine: unknown engine "${o.engine}" (allowed: v86, qemu)`);
      const text = readTextFile(file, 'scenario file');
      if (/^steps:/m.test(text) && !/^timeline:/m.test(text)) {
        throw new UsageError(`${file}: this is an old real-guest script (steps:); real-guest now runs scenarios (timeline:). The standard script became scenarios/real/v86-standard.yaml`);
      }
      const sc = pickVariant(loadScenarioText(text, file), file, o.variant);
      const live = o.json !== '-';
      const onEntry = (i: number, ev: RealEvent) => { if (live) process.stderr.write(`${o.engine}: [${i}] ${ev.kind} ${entryText(ev)}\n`); };
      let real: RealRunResult;
      if (o.engine === 'v86') {
        checkV86Scenario(sc, file);
        const cacheDir = o.cacheDir ?? '.cache/real-guest';
        const paths = realGuestImagePaths(cacheDir);
        const missing = [paths.bios, paths.bzimage, paths.initrd].filter((p) => !existsSync(p));
        if (missing.length) throw new UsageError(`real guest image missing (${missing.join(', ')}): run scripts/real-guest/build-image.sh first`);
        real = await runV86Scenario(sc, { cacheDir, onEntry });
      } else {
        checkQemuScenario(sc, file);
        const img = qemuImage(o.cacheDir, { scratch: qemuScratchPlan(sc) !== null });
        if ('missing' in img) throw new UsageError(`qemu real guest image missing (${img.missing.join(', ')}): run scripts/real-guest/build-qemu-image.sh first`);
        if (live) process.stderr.write(`qemu: booting ${img.manifest.kernel.release} under ${img.manifest.qemu.version.replace(/^QEMU emulator version /, 'QEMU ')} (TCG), ${formatSize(sc.guest.memory)}, ${sc.guest.vcpus} vcpu(s)\n`);
        real = await runQemuScenario(sc, img, { onEntry, ...(o.trace !== undefined ? { trace: true } : {}) });
        if (o.trace !== undefined) writeOutput(o.trace + '.real.txt', (real as QemuRunResult).trace ?? '');
      }
      let model: ReturnType<typeof runModelSide> | undefined;
      if (o.diff) {
        const tw = o.trace !== undefined ? traceWriter(o.trace + '.model.txt') : null;
        try { model = runModelSide(sc, tw === null ? undefined : tw.onBoot); } finally { tw?.close(); }
      }
      if (o.json) writeOutput(o.json, JSON.stringify(model ? { real, model, diff: diffRows(real, model) } : { real }, null, 2) + '\n');
      if (live) process.stdout.write(formatRealReport(real, model));
      if (!real.timeline.ok) process.exitCode = EXIT_REAL_GUEST;
    });

  program.command('actions')
    .description('List every scenario action with its fields (units, defaults, bounds) and the sides that can run it.')
    .option('--json', 'print the list as JSON')
    .option('--markdown', 'print the table docs/CLI.md holds')
    .action((o: { json?: boolean; markdown?: boolean }) => {
      if (o.json) { process.stdout.write(JSON.stringify(actionsInfo(), null, 2) + '\n'); return; }
      if (o.markdown) { process.stdout.write(actionsMarkdown()); return; }
      for (const a of actionsInfo()) {
        process.stdout.write(`${a.name}  [${a.sides.join(', ')}]\n  ${a.doc}\n`);
        for (const f of a.fields) {
          const type = f.kind === 'enum' ? (f.values ?? []).join('|') : f.kind;
          const dflt = f.required ? 'required' : f.default_text !== undefined ? `default ${f.default_text}` : 'optional';
          process.stdout.write(`    ${f.name.padEnd(18)} ${`${type}, ${dflt}`.padEnd(40)} ${f.doc}\n`);
        }
      }
    });

  addPictureCommands(program, {
    usageError: (msg) => new UsageError(msg),
    readScenarioFile, readTextFile, checkOutputPath, writeOutput,
    runScenario: (s, label, source) => runOne(s, { label, source }).doc,
    runHostScenario: (s, label, source) => { const d = runAnyOne(s, { label, source }); if (!isHostDocument(d)) throw new UsageError(`${source}: not a host scenario`); return d; },
  });

  program.command('bench')
    .description('Run a benchmark and print one JSON object with its figures.')
    .argument('<name>', `one of: ${BENCHES.join(', ')}`)
    .option('--json', 'print JSON (the only format; accepted for the CLI.md contract)')
    .addOption(new Option('--runs <n>', 'runs to take the median of (default 5; 1 for scenario)'))
    .option('--sizes <list>', 'bench scale: guest sizes, comma-separated (default 64GiB,256GiB,2TiB)')
    .action(async (name: string, o: { runs?: string; sizes?: string }) => {
      if (!(BENCHES as readonly string[]).includes(name)) throw new UsageError(`bench: unknown benchmark "${name}" (available: ${BENCHES.join(', ')})`);
      const runs = o.runs !== undefined ? parseIntOption('--runs', o.runs, 1, 100) : name === 'scenario' ? 1 : 5;
      if (name === 'scale') {
        if (o.runs !== undefined) throw new UsageError('--runs: bench scale runs each size once (a 2 TiB run takes minutes); use --sizes to choose them');
        const sizes = o.sizes === undefined ? DEFAULT_SCALE_SIZES : o.sizes.split(',').map((x) => optionValue('--sizes', () => parseSize(x.trim())));
        for (const b of sizes) {
          const bad = guestMemoryProblem(b);
          if (bad) throw new UsageError(`--sizes: ${formatSize(b)}: guest memory ${bad}`);
        }
        process.stderr.write(`bench scale: ${sizes.map((b) => formatSize(b)).join(', ')}, each in its own process (the JSON follows on stdout)\n`);
        process.stdout.write(JSON.stringify(await benchScale(sizes, (line) => process.stderr.write(line + '\n'))) + '\n');
        return;
      }
      if (o.sizes !== undefined) throw new UsageError('--sizes: only bench scale takes sizes');
      process.stderr.write(name === 'host' ? 'bench host: four variants of scenarios/host-overcommit.yaml on two worker threads, once (the JSON follows on stdout)\n' : name === 'scenario' ? `bench scenario: each experiment's variants on ${availableParallelism()} worker threads as compare runs them, ${runs} run${runs > 1 ? 's' : ''} (the JSON follows on stdout)\n` : `bench ${name}: ${runs} run${runs > 1 ? 's' : ''} (the JSON follows on stdout)\n`);
      const result = name === 'alloc' ? benchAlloc({ ...DEFAULT_ALLOC_BENCH, runs })
        : name === 'virtqueue' ? benchVirtqueue({ ...DEFAULT_VIRTQUEUE_BENCH, runs })
        : name === 'migration' ? benchMigration(runs)
        : name === 'scenario' ? { ...(await benchScenario(new URL('../../../', import.meta.url), runs, undefined, undefined, (line) => process.stderr.write(line + '\n'))), host: await benchHost(new URL('../../../', import.meta.url), 2, undefined, (line) => process.stderr.write(line + '\n')) }
        : name === 'host' ? await benchHost(new URL('../../../', import.meta.url), 2, undefined, (line) => process.stderr.write(line + '\n'))
        : benchCompaction(runs);
      process.stdout.write(JSON.stringify(result) + '\n');
    });

  return program;
}

/** Exit codes (see the file's header). */
export const EXIT_OK = 0, EXIT_INVARIANT = 1, EXIT_USAGE = 2, EXIT_REAL_GUEST = 3, EXIT_QUEUE = 4, EXIT_INTERNAL = 70;

/** What an error thrown out of a command ends as: its exit code, after one message on stderr. */
export function reportError(e: unknown): number {
  if (e instanceof CommanderError) {
    if (e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT_OK;
    return EXIT_USAGE; // commander already printed its one-line message
  }
  if (e instanceof InputError) {
    process.stderr.write(`balloonlab: ${e.message}\n`);
    return EXIT_USAGE;
  }
  if (e instanceof QueueError) {
    process.stderr.write(`balloonlab: ${e.message}\n`);
    return EXIT_QUEUE;
  }
  if (e instanceof InvariantError) {
    process.stderr.write(`balloonlab: INVARIANT VIOLATED — the model is corrupt (please report this with the scenario and seed)\n${e.message}\n`);
    return EXIT_INVARIANT;
  }
  const what = e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e);
  process.stderr.write(`balloonlab: internal error: ${what} (a bug in balloonlab: please report it with the command line; BALLOONLAB_DEBUG=1 prints the stack)\n`);
  if (process.env.BALLOONLAB_DEBUG === '1' && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  return EXIT_INTERNAL;
}

/** Runs the CLI with argv (as process.argv); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  if (argv.length <= 2) {
    process.stderr.write(program.helpInformation());
    process.stderr.write('balloonlab: no command given (try: balloonlab run scenarios/boot.yaml)\n');
    return EXIT_USAGE;
  }
  try {
    await program.parseAsync(argv);
    return EXIT_OK;
  } catch (e) {
    return reportError(e);
  }
}
