/**
 * Sweeps on a Redis queue (src/cli/queue.ts, docs/sweeps.md). The URL is checked before
 * anything connects (exit 2), an unreachable Redis is one line and exit 4 within the
 * connect timeout; and against a real redis-server (started here, on 127.0.0.1 on a free
 * port, in a temporary directory, nothing saved): a sweep of 8 runs with two `balloonlab
 * worker` processes, one killed (SIGKILL) in the middle of a run and the sweep itself
 * killed and started again, gives the bytes of `sweep --jobs 1`; the killed worker's run
 * is run again by the other; no finished run runs twice; a run that fails is reported
 * with its error; a job of another balloonlab version is refused.
 *
 * Without redis-server on PATH the Redis part skips, unless BALLOONLAB_QUEUE=1 (CI sets
 * it after installing Debian's redis-server), when it fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { parseQueueUrl } from '../../src/cli/queue_url.js';
import { QUEUE_NAME } from '../../src/cli/queue.js';
import { VERSION } from '../../src/version.js';
import { tempDir } from '../helpers/tmp.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'bin', 'balloonlab.js');

const haveRedis = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0;
const SKIP = haveRedis || process.env.BALLOONLAB_QUEUE === '1' ? false : 'queue: no redis-server on PATH (apt-get install redis-server; BALLOONLAB_QUEUE=1 makes this a failure)';

test('--queue URLs: redis:// and rediss://, credentials, port and database from the URL; anything else refused naming --queue', () => {
  assert.deepEqual(parseQueueUrl('--queue', 'redis://127.0.0.1:6390/3'), { host: '127.0.0.1', port: 6390, db: 3, tls: false, display: 'redis://127.0.0.1:6390/3' });
  assert.deepEqual(parseQueueUrl('--queue', 'rediss://sweeper:p%40ss@redis.lab'), { host: 'redis.lab', port: 6379, db: 0, tls: true, username: 'sweeper', password: 'p@ss', display: 'rediss://sweeper:***@redis.lab:6379/0' });
  assert.equal(parseQueueUrl('--queue', 'redis://:secret@[::1]:7000').password, 'secret');
  assert.equal(parseQueueUrl('--queue', 'redis://:secret@[::1]:7000').host, '::1');
  for (const [url, why] of [['http://h', /unknown scheme "http"/], ['localhost:6379', /unknown scheme "localhost"/], ['redis://', /not a URL|no host/], ['redis://h/x', /database "x" is not a number/], ['redis://h?tls=1', /no \?query/], ['nonsense', /is not a URL/]] as const) {
    assert.throws(() => parseQueueUrl('--queue', url), (e: Error) => e.name === 'QueueUrlError' && /^--queue: /.test(e.message) && why.test(e.message), url);
  }
});

/** A port nothing listens on (a moment ago). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

test('a bad --queue URL exits 2 and an unreachable Redis exits 4, each with one line and no hang', async () => {
  const dir = tempDir('balloonlab-queue-');
  writeFileSync(join(dir, 'g.yaml'), 'name: g\nguest: { memory: 128MiB }\ntimeline: []\n');
  writeFileSync(join(dir, 's.yaml'), 'sweep: s\nbase: g.yaml\nparameters: [ { path: seed, values: [1, 2] } ]\n');
  const port = await freePort();
  const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', timeout: 30_000 });
  const bad = run('sweep', join(dir, 's.yaml'), '--queue', 'http://127.0.0.1');
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /^balloonlab: --queue: unknown scheme "http" \(expected redis:\/\//);
  assert.equal(run('worker', '--queue', 'redis://h/db').status, 2);
  assert.equal(run('sweep', join(dir, 's.yaml'), '--queue', 'redis://h', '--jobs', '2').status, 2, '--jobs is the workers\' business');
  for (const cmd of [['sweep', join(dir, 's.yaml')], ['worker']]) {
    const t0 = Date.now();
    const r = run(...cmd, '--queue', `redis://127.0.0.1:${port}/0`);
    assert.equal(r.status, 4, r.stderr);
    assert.match(r.stderr, new RegExp(`^balloonlab: --queue: cannot use Redis at redis://127\\.0\\.0\\.1:${port}/0: .*ECONNREFUSED.*is redis-server running there`));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(Date.now() - t0 < 15_000, `${cmd[0]} gave up in ${Date.now() - t0} ms`);
  }
});

/** A child process whose output is kept, with waits on it. */
type Proc = { child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null>; waitFor: (re: RegExp, what: string, ms?: number) => Promise<RegExpMatchArray> };

function start(cmd: string, args: string[], cwd: string): Proc {
  const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { err += s; });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const waitFor = async (re: RegExp, what: string, ms = 60_000) => {
    const t0 = Date.now();
    for (;;) {
      const m = (out + err).match(re);
      if (m) return m;
      if (child.exitCode !== null || child.signalCode !== null) assert.fail(`${what}: the process ended (${child.exitCode ?? child.signalCode}) first:\n${out}${err}`);
      if (Date.now() - t0 > ms) assert.fail(`${what}: not within ${ms} ms:\n${out}${err}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  return { child, out: () => out, err: () => err, exited, waitFor };
}

const balloonlab = (args: string[], cwd: string) => start(process.execPath, [bin, ...args], cwd);

const base = `name: q
seed: 3
host: { memory: 1000MiB, swap: 64MiB }
guest: { memory: 256MiB, thp: never }
duration: 2m
vms:
  - name: idle
    count: 2
    min_memory: 128MiB
    timeline: [ { at: 0s, action: idle } ]
  - name: burst
    min_memory: 128MiB
    timeline:
      - { at: 5s, action: process_fault, pid: 100, size: 150MiB }
      - { at: 30s, action: process_exit, pid: 100 }
`;

test('a sweep on Redis with two workers, one killed mid-run and the sweep restarted, gives the bytes of --jobs 1; finished runs never run again', { skip: SKIP, timeout: 300_000 }, async () => {
  assert.ok(haveRedis, 'BALLOONLAB_QUEUE=1 but there is no redis-server on PATH');
  const dir = tempDir('balloonlab-queue-');
  writeFileSync(join(dir, 'q.yaml'), base);
  writeFileSync(join(dir, 's.yaml'), 'sweep: q\nbase: q.yaml\nparameters:\n  - { path: host.memory, range: { from: 400MiB, to: 1000MiB, step: 200MiB } }\n  - { path: host.policy, values: [none, proxmox] }\nfigures: [overcommit_logical_mean, host.peak_swap_used_bytes]\n');
  writeFileSync(join(dir, 'g.yaml'), 'name: g\nguest: { memory: 256MiB }\nduration: 2s\ntimeline:\n  - { at: 1s, action: process_fault, pid: 100, size: 64MiB }\n');
  writeFileSync(join(dir, 'f.yaml'), 'sweep: f\nbase: g.yaml\nparameters: [ { path: timeline.0.size, values: [32MiB, 8GiB, 64MiB] } ]\n');
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}/0`;
  const redis = start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], dir);
  const procs: Proc[] = [redis];
  try {
    await redis.waitFor(/Ready to accept connections/, 'redis-server ready', 20_000);
    const local = spawnSync(process.execPath, [bin, 'sweep', 's.yaml', '--reproducible', '--jobs', '1', '--json', 'local.json'], { cwd: dir, encoding: 'utf8' });
    assert.equal(local.status, 0, local.stderr);
    const want = readFileSync(join(dir, 'local.json'), 'utf8');
    assert.equal(JSON.parse(want).runs.length, 8);

    const sweep = ['sweep', 's.yaml', '--reproducible', '--queue', url, '--json', 'queue.json'];
    const s1 = balloonlab(sweep, dir);
    procs.push(s1);
    await s1.waitFor(/8 enqueued, 0 done before/, 'the sweep enqueued its runs');
    const a = balloonlab(['worker', '--queue', url, '--jobs', '1'], dir);
    const b = balloonlab(['worker', '--queue', url, '--jobs', '1'], dir);
    procs.push(a, b);
    const killed = Number((await a.waitFor(/run (\d+) of q \([^)]*\) started/, 'worker A took a run'))[1]);
    a.child.kill('SIGKILL');
    await a.exited;
    assert.doesNotMatch(a.out(), /done in/, 'worker A was killed in the middle of its run');
    await b.waitFor(/(done in[\s\S]*){2}/, 'worker B finished two runs');
    s1.child.kill('SIGKILL'); // the sweep dies too; the runs go on
    await s1.exited;

    const s2 = balloonlab(sweep, dir);
    procs.push(s2);
    assert.equal(await s2.exited, 0, s2.err());
    assert.equal(readFileSync(join(dir, 'queue.json'), 'utf8'), want, 'the queue gave the bytes of --jobs 1');
    assert.match(s2.err(), /: 0 enqueued, [2-8] done before/, 'the restarted sweep enqueued nothing and took the finished runs from Redis');
    assert.match(s2.err(), new RegExp(`run ${killed} \\([^)]*\\) lost its worker once and was run again`), 'the sweep says which run was retried');
    assert.match(b.out(), new RegExp(`run ${killed} of q \\([^)]*\\) started \\(start 2: its worker stopped once\\)`), 'worker B ran the killed worker\'s run');
    const started = (p: Proc) => [...p.out().matchAll(/run (\d+) of q \([^)]*\) started/g)].map((m) => Number(m[1]));
    const done = [...b.out().matchAll(/run (\d+) of q \([^)]*\) done in/g)].map((m) => Number(m[1]));
    assert.deepEqual([...done].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7], 'each run finished once');
    assert.equal(started(a).length + started(b).length, 9, 'eight runs, one of them twice (the killed one), nothing else again');

    // all done: the same command again takes every result from Redis and runs nothing
    const s3 = spawnSync(process.execPath, [bin, ...sweep, '--csv', 'queue.csv'], { cwd: dir, encoding: 'utf8' });
    assert.equal(s3.status, 0, s3.stderr);
    assert.match(s3.stderr, /0 enqueued, 8 done before/);
    assert.equal(readFileSync(join(dir, 'queue.json'), 'utf8'), want);
    assert.equal(readFileSync(join(dir, 'queue.csv'), 'utf8').split('\n')[0], 'index,host.memory,host.policy,seed,overcommit_logical_mean,host.peak_swap_used_bytes');
    assert.equal(started(b).length, 8, 'nothing ran for the third sweep');

    // a run that fails is reported as failed with its error, as a local run reports it
    const fl = spawnSync(process.execPath, [bin, 'sweep', 'f.yaml', '--reproducible', '--jobs', '1', '--json', 'f-local.json'], { cwd: dir, encoding: 'utf8' });
    const fq = spawnSync(process.execPath, [bin, 'sweep', 'f.yaml', '--reproducible', '--queue', url, '--json', 'f-queue.json'], { cwd: dir, encoding: 'utf8' });
    assert.equal(fl.status, 2, fl.stderr);
    assert.equal(fq.status, 2, fq.stderr);
    assert.match(fq.stderr, /run 1 \(timeline\.0\.size=8GiB\) failed: input: .*mmap of 8589934592 bytes failed: ENOMEM/);
    assert.match(fq.stderr, /balloonlab: sweep f: 1 of 3 runs failed \(run 1; f-queue\.json holds the others and each failure\)/);
    assert.equal(readFileSync(join(dir, 'f-queue.json'), 'utf8'), readFileSync(join(dir, 'f-local.json'), 'utf8'));
    await b.waitFor(/run 1 of f \(timeline\.0\.size=8GiB\) failed after/, 'worker B said the run failed', 10_000);

    // a job of another version is refused: it fails with a message naming both
    const q = new Queue(QUEUE_NAME, { connection: { host: '127.0.0.1', port, maxRetriesPerRequest: 1 } });
    try {
      const job = await q.add('other', { balloonlab: '0.0.1-other', sweep: 'x', index: 0, label: '', source: 'x', scenario: {}, check: false, reproducible: true }, { jobId: 'other-version-0' });
      const t0 = Date.now();
      while ((await q.getJobState(job.id!)) !== 'failed') {
        assert.ok(Date.now() - t0 < 30_000, 'the other version\'s job was not refused in time');
        await new Promise((r) => setTimeout(r, 100));
      }
      const failed = await q.getJob(job.id!);
      assert.equal(failed!.failedReason.replace(/\(.+?\)/, '(W)'), `refused: this worker (W) is balloonlab ${VERSION} and the run was enqueued by balloonlab 0.0.1-other: run workers of the sweep's version`);
      assert.equal(failed!.attemptsMade, 1, 'refused once, not retried');
    } finally {
      await q.close();
    }

    b.child.kill('SIGTERM');
    assert.equal(await b.exited, 0, b.err());
    assert.match(b.out(), /SIGTERM: stopping after the runs this worker holds\nstopped\n$/);
  } finally {
    for (const p of procs.reverse()) if (p.child.exitCode === null && p.child.signalCode === null) { p.child.kill('SIGTERM'); await p.exited; }
  }
});
