/**
 * A real x86-64 Linux 6.1 guest under QEMU 10 (TCG), from the boot set that
 * scripts/real-guest/build-qemu-image.sh puts in the cache: the QEMU process (started
 * through bl-pdeathsig, so it dies with this one), its QMP monitor, and the guest's
 * command agent (bl-agent on ttyS1). Every read has a timeout; a QEMU that exits
 * early is reported with the last lines of its console and stderr.
 *
 * The protocols:
 * - QMP: one JSON object per line; the greeting, then `qmp_capabilities`; each
 *   command carries an `id` its answer echoes; events (`"event"`) are kept apart.
 * - bl-agent (scripts/real-guest/qemu/bl-agent.c): `READY\n` at start; `PING id` →
 *   `PONG id`; `RUN id n\n<n bytes>` → `OUT id status m\n<m bytes>`; `ERR id msg` for
 *   a bad frame.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createConnection, createServer, type Socket } from 'node:net';
import { closeSync, existsSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { QmpCommand, QmpResponse } from '../../host/qmp.js';
import type { ScratchPlan } from '../../actions/file_layout.js';

/** The default cache directory of build-qemu-image.sh (relative to the working directory). */
export const QEMU_CACHE_DEFAULT = '.cache/real-guest-qemu';

/** What build-qemu-image.sh wrote into manifest.json that a launcher needs. */
export type QemuManifest = {
  kernel: { release: string; image: string };
  qemu: { version: string; binary: string; datadir: string; env: { LD_LIBRARY_PATH: string[]; QEMU_MODULE_DIR: string }; args: string[]; pdeathsig: string };
  /** The scratch disk (boot sets from before it have none): the guest modules /init loads for it, the host's e2fsprogs. */
  scratch?: { modules: string[]; mount: string; mke2fs: string; e2fsck: string; e2fsprogs: string };
};

export type QemuImage = {
  dir: string;
  manifest: QemuManifest;
  bzImage: string;
  initrd: string;
  qemu: string;
  pdeathsig: string;
  env: Record<string, string>;
  args: string[];
};

/** An error starting or talking to QEMU or the guest (not the user's input). */
export class QemuError extends Error {}

/** The cached boot set, or what is missing (with `scratch`: a boot set that can attach the scratch disk). */
export function qemuImage(cacheDir: string = process.env.REAL_GUEST_QEMU_CACHE ?? QEMU_CACHE_DEFAULT, needs: { scratch?: boolean } = {}): QemuImage | { missing: string[] } {
  const dir = resolve(cacheDir);
  const mf = join(dir, 'manifest.json');
  if (!existsSync(mf)) return { missing: [mf] };
  const manifest = JSON.parse(readFileSync(mf, 'utf8')) as QemuManifest;
  const q = manifest.qemu;
  const img: QemuImage = {
    dir, manifest,
    bzImage: join(dir, manifest.kernel.image),
    initrd: join(dir, 'initrd.cpio'),
    qemu: join(dir, q.binary),
    pdeathsig: join(dir, q.pdeathsig),
    env: { LD_LIBRARY_PATH: q.env.LD_LIBRARY_PATH.map((p) => join(dir, p)).join(':'), QEMU_MODULE_DIR: join(dir, q.env.QEMU_MODULE_DIR) },
    args: q.args.map((a) => (a.startsWith('qemu/') ? join(dir, a) : a)),
  };
  const missing = [img.bzImage, img.initrd, img.qemu, img.pdeathsig].filter((p) => !existsSync(p));
  if (needs.scratch) {
    const sc = manifest.scratch;
    if (!sc) missing.push(`${mf} has no scratch disk support (a boot set from before it)`);
    else missing.push(...[sc.mke2fs, sc.e2fsck].filter((p) => !existsSync(p)));
  }
  return missing.length ? { missing } : img;
}

/** Waits for `ms`, as a promise. */
export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** A byte stream read by lines and by counts, each read bounded by a timeout. */
class StreamReader {
  private buf: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  constructor(readonly sock: Socket, private readonly what: string) {
    sock.on('data', (d: Buffer) => { this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d; this.wake(); });
    sock.on('close', () => { this.closed = true; this.wake(); });
    sock.on('error', () => { this.closed = true; this.wake(); });
  }
  private wake(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }
  private async more(deadline: number, waitingFor: string): Promise<void> {
    if (this.closed) throw new QemuError(`${this.what}: the connection closed while waiting for ${waitingFor}`);
    const left = deadline - performance.now();
    if (left <= 0) return;
    await new Promise<void>((res) => {
      const t = setTimeout(() => { this.waiters = this.waiters.filter((f) => f !== done); res(); }, left);
      const done = () => { clearTimeout(t); res(); };
      this.waiters.push(done);
    });
  }
  async line(timeoutMs: number, waitingFor: string): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const i = this.buf.indexOf(10);
      if (i >= 0) {
        const l = this.buf.subarray(0, i).toString('utf8');
        this.buf = this.buf.subarray(i + 1);
        return l.endsWith('\r') ? l.slice(0, -1) : l;
      }
      if (performance.now() >= deadline) throw new QemuError(`${this.what}: no ${waitingFor} within ${(timeoutMs / 1000).toFixed(0)} s`);
      await this.more(deadline, waitingFor);
    }
  }
  async bytes(n: number, timeoutMs: number, waitingFor: string): Promise<Buffer> {
    const deadline = performance.now() + timeoutMs;
    while (this.buf.length < n) {
      if (performance.now() >= deadline) throw new QemuError(`${this.what}: ${waitingFor} cut short (${this.buf.length} of ${n} bytes in ${(timeoutMs / 1000).toFixed(0)} s)`);
      await this.more(deadline, waitingFor);
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return Buffer.from(out);
  }
}

async function connectUnix(path: string, timeoutMs: number, alive: () => string | null): Promise<Socket> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const dead = alive();
    if (dead) throw new QemuError(dead);
    if (existsSync(path)) {
      try {
        return await new Promise<Socket>((res, rej) => {
          const s = createConnection(path);
          s.once('connect', () => { s.removeAllListeners('error'); res(s); });
          s.once('error', rej);
        });
      } catch { /* not listening yet */ }
    }
    if (performance.now() >= deadline) throw new QemuError(`no socket ${path} within ${(timeoutMs / 1000).toFixed(0)} s`);
    await delay(50);
  }
}

/** A QMP monitor connection. */
export class QmpClient {
  private reader: StreamReader;
  private nextId = 1;
  /** Events QEMU sent (SHUTDOWN, BALLOON_CHANGE, MIGRATION ...), in order. */
  readonly events: Array<Record<string, unknown>> = [];
  private chain: Promise<unknown> = Promise.resolve();
  constructor(sock: Socket, readonly what: string) { this.reader = new StreamReader(sock, what); }

  static async open(path: string, what: string, alive: () => string | null, timeoutMs = 30_000): Promise<QmpClient> {
    const c = new QmpClient(await connectUnix(path, timeoutMs, alive), what);
    const greet = await c.reader.line(timeoutMs, 'QMP greeting');
    if (!greet.includes('"QMP"')) throw new QemuError(`${what}: not a QMP greeting: ${greet.slice(0, 120)}`);
    const r = await c.execute({ execute: 'qmp_capabilities' });
    if ('error' in r) throw new QemuError(`${what}: qmp_capabilities: ${JSON.stringify(r)}`);
    return c;
  }

  /** One command and its answer (commands are sent one at a time). */
  execute(cmd: QmpCommand, timeoutMs = 30_000): Promise<QmpResponse> {
    const run = async (): Promise<QmpResponse> => {
      const id = `bl${this.nextId++}`;
      this.reader.sock.write(JSON.stringify({ ...cmd, id }) + '\n');
      for (;;) {
        const line = await this.reader.line(timeoutMs, `an answer to ${cmd.execute}`);
        if (!line.trim()) continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ('event' in msg) { this.events.push(msg); continue; }
        if (msg.id !== id) continue;
        delete msg.id;
        return msg as QmpResponse;
      }
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  close(): void { this.reader.sock.destroy(); }
}

/** The guest's command agent on ttyS1. */
export class AgentClient {
  private reader: StreamReader;
  private nextId = 1;
  private chain: Promise<unknown> = Promise.resolve();
  constructor(sock: Socket, readonly what: string) { this.reader = new StreamReader(sock, what); }

  static async open(path: string, what: string, alive: () => string | null, timeoutMs = 30_000): Promise<AgentClient> {
    return new AgentClient(await connectUnix(path, timeoutMs, alive), what);
  }

  /** Waits for the agent's READY (the guest booted and started it). */
  async ready(timeoutMs: number): Promise<void> {
    for (;;) {
      const l = await this.reader.line(timeoutMs, 'READY from the guest agent (the guest did not boot)');
      if (l === 'READY') return;
    }
  }

  /** PING → PONG: the agent is there (after a migration, on the destination). */
  async ping(timeoutMs: number): Promise<void> {
    const id = `p${this.nextId++}`;
    this.reader.sock.write(`PING ${id}\n`);
    for (;;) if ((await this.reader.line(timeoutMs, `PONG ${id}`)) === `PONG ${id}`) return;
  }

  /** A shell command in the guest: its output (stdout+stderr) and exit status. */
  run(cmd: string, timeoutMs: number): Promise<{ output: string; status: number }> {
    const go = async () => {
      const id = `c${this.nextId++}`;
      const body = Buffer.from(cmd, 'utf8');
      this.reader.sock.write(`RUN ${id} ${body.length}\n`);
      this.reader.sock.write(body);
      for (;;) {
        const h = await this.reader.line(timeoutMs, `the output of "${cmd.slice(0, 60)}"`);
        const m = /^(OUT|ERR) (\S+) (.*)$/.exec(h);
        if (!m || m[2] !== id) continue;
        if (m[1] === 'ERR') throw new QemuError(`${this.what}: the agent refused "${cmd.slice(0, 60)}": ${m[3]}`);
        const [st, n] = m[3]!.split(' ').map(Number) as [number, number];
        const out = n > 0 ? await this.reader.bytes(n, Math.max(timeoutMs, 30_000), 'command output') : Buffer.alloc(0);
        return { output: out.toString('utf8'), status: st };
      }
    };
    const p = this.chain.then(go, go);
    this.chain = p.catch(() => undefined);
    return p;
  }

  close(): void { this.reader.sock.destroy(); }
}

/** How one QEMU is started. */
export type QemuLaunch = {
  memoryBytes: number;
  vcpus: number;
  /** `-device virtio-balloon-pci,…` properties (null: no balloon device). */
  balloon: Record<string, string> | null;
  /** An iothread for the balloon (free-page-hint needs one). */
  iothread: boolean;
  /** Extra words on the kernel command line. */
  cmdline: string[];
  /** -mem-prealloc. */
  memPrealloc: boolean;
  /** -incoming URI (a migration destination). */
  incoming?: string;
  /** A scratch virtio-blk disk with an ext4 made for this run (the kernel command line says bl.scratch=1). */
  scratch?: ScratchPlan;
};

/** The scratch disk image's name in the run's directory. */
export const SCRATCH_IMAGE = 'scratch.img';
/** Fixed UUID and directory hash seed of the scratch ext4 (the same file system every run). */
const SCRATCH_UUID = '6c1f2b7e-0000-4000-8000-000000000001', SCRATCH_HASH_SEED = '6c1f2b7e-0000-4000-8000-000000000002';

/** mke2fs's arguments for the scratch ext4 (4 KiB blocks, no reserved blocks, inode tables and journal zeroed now, not by ext4lazyinit in the guest). */
export function mke2fsArgs(plan: ScratchPlan, image: string, root: string | null): string[] {
  return ['-q', '-F', '-t', 'ext4', '-b', '4096', '-m', '0', '-N', String(plan.inodes), '-L', 'blscratch', '-U', SCRATCH_UUID,
    '-E', `lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0,hash_seed=${SCRATCH_HASH_SEED}`, ...(root ? ['-d', root] : []), image];
}

/**
 * Makes the scratch disk image in `dir`: a sparse file of plan.bytes with an ext4 made
 * by the host's mke2fs; the pages the timeline's reads will read are written into it
 * first (files `p<pid>.<n>` in its root, bytes 0x5a, holes elsewhere; mke2fs -d), and
 * e2fsck -D indexes the root directory as the kernel would have. Returns its path.
 */
export function makeScratchImage(img: QemuImage, plan: ScratchPlan, dir: string): string {
  const tools = img.manifest.scratch;
  if (!tools) throw new QemuError('the boot set has no scratch disk support: run scripts/real-guest/build-qemu-image.sh');
  const image = join(dir, SCRATCH_IMAGE);
  const fd = openSync(image, 'w');
  ftruncateSync(fd, plan.bytes);
  closeSync(fd);
  let root: string | null = null;
  if (plan.prepared.length) {
    root = join(dir, 'scratch-root');
    mkdirSync(root);
    const buf = Buffer.alloc(64 * 4096, 0x5a);
    for (const p of plan.prepared) {
      const path = join(root, p.name);
      // not 'a': positional writes to an O_APPEND file go to its end
      const f = openSync(path, existsSync(path) ? 'r+' : 'w');
      for (let done = 0; done < p.pages;) {
        const k = Math.min(64, p.pages - done);
        writeSync(f, buf, 0, k * 4096, (p.off + done) * 4096);
        done += k;
      }
      closeSync(f);
    }
  }
  try {
    const mk = spawnSync(tools.mke2fs, mke2fsArgs(plan, image, root), { encoding: 'utf8' });
    if (mk.status !== 0) throw new QemuError(`mke2fs of the scratch disk failed (${mk.error?.message ?? `exit ${mk.status}`}): ${(mk.stderr ?? '').trim().slice(0, 300)}`);
    if (root) {
      const ck = spawnSync(tools.e2fsck, ['-f', '-y', '-D', image], { encoding: 'utf8' });
      // 0: clean, 1: corrected (the directory optimized)
      if (ck.status !== 0 && ck.status !== 1) throw new QemuError(`e2fsck -D of the scratch disk failed (exit ${ck.status}): ${(ck.stdout + ck.stderr).trim().slice(-300)}`);
    }
  } finally {
    if (root) rmSync(root, { recursive: true, force: true });
  }
  return image;
}

/** The QEMU command line (without the binary), for a launch in a directory. */
export function qemuArgs(img: QemuImage, l: QemuLaunch, dir: string): string[] {
  const a = [
    ...img.args,
    '-accel', 'tcg', '-m', `${Math.round(l.memoryBytes / 2 ** 20)}M`, '-smp', String(l.vcpus),
    '-nographic', '-monitor', 'none', '-nic', 'none', '-no-reboot',
    '-kernel', img.bzImage, '-initrd', img.initrd, '-append', ['console=ttyS0', 'panic=-1', ...l.cmdline].join(' '),
    '-chardev', `file,id=con0,path=${join(dir, 'console.log')}`, '-serial', 'chardev:con0',
    '-chardev', `socket,id=agent0,path=${join(dir, 'ttyS1.sock')},server=on,wait=off`, '-serial', 'chardev:agent0',
    '-chardev', `socket,id=qmp0,path=${join(dir, 'qmp.sock')},server=on,wait=off`, '-mon', 'chardev=qmp0,mode=control',
  ];
  if (l.memPrealloc) a.push('-mem-prealloc');
  if (l.iothread) a.push('-object', 'iothread,id=iot0');
  if (l.balloon) {
    const props = Object.entries({ id: 'balloon0', ...l.balloon, ...(l.iothread ? { iothread: 'iot0' } : {}) }).map(([k, v]) => `${k}=${v}`);
    a.push('-device', ['virtio-balloon-pci', ...props].join(','));
  }
  // after the balloon, so that the balloon stays virtio0
  if (l.scratch) a.push('-drive', `file=${join(dir, SCRATCH_IMAGE)},if=none,format=raw,id=d0,cache=unsafe`, '-device', 'virtio-blk-pci,drive=d0,id=scratch0');
  if (l.incoming) a.push('-incoming', l.incoming);
  return a;
}

/** A running QEMU with its monitor and the guest's agent. */
export class QemuVm {
  exited: string | null = null;
  qmp!: QmpClient;
  agent!: AgentClient;
  private stderr = '';
  private constructor(readonly child: ChildProcess, readonly dir: string, readonly what: string, private readonly ownsDir: boolean) {
    child.stderr?.on('data', (d: Buffer) => { this.stderr = (this.stderr + d.toString('utf8')).slice(-4000); });
    child.on('exit', (code, sig) => { this.exited = `QEMU (${what}) exited (${sig ?? `status ${code}`})${this.tail()}`; });
  }

  /** The last lines of QEMU's stderr and the guest console, for an error message. */
  tail(lines = 8): string {
    const con = existsSync(join(this.dir, 'console.log')) ? readFileSync(join(this.dir, 'console.log'), 'utf8') : '';
    const last = (s: string) => s.trimEnd().split('\n').slice(-lines).join(' | ');
    return `${this.stderr.trim() ? `; qemu: ${last(this.stderr)}` : ''}${con.trim() ? `; console: ${last(con)}` : ''}`;
  }

  get pid(): number { return this.child.pid ?? -1; }

  /** Starts QEMU; with `incoming` it waits for the monitor only, otherwise for the agent's READY too. */
  static async start(img: QemuImage, l: QemuLaunch, what: string, opts: { bootTimeoutMs?: number; dir?: string } = {}): Promise<QemuVm> {
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'balloonlab-qemu-'));
    if (l.scratch) {
      try { makeScratchImage(img, l.scratch, dir); } catch (e) { if (opts.dir === undefined) rmSync(dir, { recursive: true, force: true }); throw e; }
    }
    const child = spawn(img.pdeathsig, [img.qemu, ...qemuArgs(img, l, dir)], {
      env: { ...process.env, ...img.env, LD_LIBRARY_PATH: [img.env.LD_LIBRARY_PATH, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const vm = new QemuVm(child, dir, what, opts.dir === undefined);
    await new Promise<void>((res, rej) => { child.once('spawn', res); child.once('error', (e) => rej(new QemuError(`cannot start ${img.qemu}: ${e.message}`))); });
    const alive = () => vm.exited;
    try {
      vm.qmp = await QmpClient.open(join(dir, 'qmp.sock'), `QMP (${what})`, alive);
      vm.agent = await AgentClient.open(join(dir, 'ttyS1.sock'), `guest agent (${what})`, alive);
      if (!l.incoming) await Promise.race([vm.agent.ready(opts.bootTimeoutMs ?? 120_000), vm.watchExit()]);
    } catch (e) {
      vm.kill();
      throw e instanceof QemuError ? new QemuError(`${e.message}${vm.exited ? '' : vm.tail()}`) : e;
    }
    return vm;
  }

  /** Rejects when QEMU exits (for racing against a wait). */
  private watchExit(): Promise<never> {
    return new Promise((_res, rej) => {
      const check = () => { if (this.exited) rej(new QemuError(this.exited)); else setTimeout(check, 100).unref(); };
      check();
    });
  }

  /** The guest RAM mapping's resident size, bytes (the largest anonymous mapping of QEMU), or null. */
  guestRamRssBytes(memoryBytes: number): number | null {
    if (this.exited) return null;
    let text: string;
    try { text = readFileSync(`/proc/${this.pid}/smaps`, 'utf8'); } catch { return null; }
    let best = -1, size = 0;
    for (const block of text.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
      const sz = /\nSize:\s+(\d+) kB/.exec(block), rss = /\nRss:\s+(\d+) kB/.exec(block);
      if (!sz || !rss) continue;
      const s = Number(sz[1]) * 1024;
      if (s >= memoryBytes && (best < 0 || s < size)) { best = Number(rss[1]) * 1024; size = s; }
    }
    return best < 0 ? null : best;
  }

  /** Ends QEMU: `quit` over QMP, then SIGKILL if it lingers; removes its directory. */
  async stop(): Promise<void> {
    if (!this.exited) {
      try { await this.qmp?.execute({ execute: 'quit' }, 5000); } catch { /* it may be gone */ }
      for (let i = 0; i < 50 && !this.exited; i++) await delay(100);
    }
    this.kill();
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
    this.qmp?.close();
    this.agent?.close();
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A free TCP port on 127.0.0.1 (for a migration destination). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}
