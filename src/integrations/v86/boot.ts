/**
 * Boot a real Debian i386 Linux guest in the v86 emulator under Node and talk
 * to its busybox shell over the first serial port.
 *
 * This sits outside the model core (it reads files, keeps wall-clock timers and
 * drives an emulator that runs on its own): tsconfig.core.json does not include
 * src/integrations. The boot set (BIOS, kernel, initramfs) comes from
 * scripts/real-guest/build-image.sh, which builds it from Debian's packages into
 * .cache/real-guest/; see ../shared/docs/REAL-GUEST.md for how it was chosen.
 *
 * v86 publishes typings for its public API (V86, V86Options, its events) but
 * not for its internals (the CPU, guest memory, the PCI bus): the few internals
 * used here are typed locally below, as far as this file needs them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { V86 } from 'v86';
import type { V86Options } from 'v86';

/** The kernel command line that boots fastest (REAL-GUEST.md). */
export const REAL_GUEST_CMDLINE =
  'console=ttyS0 tsc=reliable mitigations=off cryptomgr.notests noisapnp pnpbios=off edd=off';

/** The shell prompt the image's /init sets (PS1). */
export const REAL_GUEST_PROMPT = 'guest# ';

/** What /init prints just before it starts the shell. */
const INIT_READY = 'init: ready';

const DEFAULT_CACHE_DIR = '.cache/real-guest';
const DEFAULT_MEMORY_BYTES = 128 * 2 ** 20;
const DEFAULT_BOOT_TIMEOUT_MS = 120_000;
const DEFAULT_RUN_TIMEOUT_MS = 30_000;
/** How much serial output an error message quotes. */
const TAIL_CHARS = 800;

/**
 * v86's CPU, as far as this integration knows it (v86 src/cpu.js; not in the
 * package's typings).
 */
export type V86Cpu = {
  /** The wasm memory that holds guest RAM (and v86's own state). */
  wasm_memory: { readonly buffer: ArrayBuffer };
  /**
   * Guest RAM. NOTE: a Proxy that builds a fresh Uint8Array over
   * wasm_memory.buffer on every property access (it survives memory.grow):
   * slow per element; use guestMemory() for a plain view.
   */
  mem8: Uint8Array;
  /** memory_size[0]: guest RAM in bytes. Also a Proxy over wasm memory. */
  memory_size: Uint32Array;
  /** Named devices: pci (the bus), virtio_balloon (when the option is set), ... */
  devices: { [name: string]: object | undefined };
};

/** The V86 starter's internal `v86` field (v86 src/main.js). */
export type V86Internals = { v86: { cpu: V86Cpu } };

/** The emulator handed out: v86's public class plus the internals above. */
export type RealGuestEmulator = V86 & V86Internals;

export type BootRealGuestOptions = {
  /** Where build-image.sh put the boot set; default .cache/real-guest (from the cwd). */
  cacheDir?: string;
  /** Guest RAM; default 128 MiB. */
  memoryBytes?: number;
  /** Boot to the shell prompt; default 120 s. */
  timeoutMs?: number;
  /** Extra v86 options (e.g. { virtio_balloon: true } for v86's own device). */
  v86Options?: Partial<V86Options>;
  /**
   * Called once the emulator is built and before its CPU first runs (the BIOS
   * has not enumerated PCI yet): the place to register a device.
   */
  beforeBoot?: (emulator: RealGuestEmulator) => void;
};

export type CommandResult = {
  /** What the command wrote, with CRs and terminal escape sequences removed. */
  output: string;
  /** Its exit status ($?). */
  status: number;
};

export type RealGuest = {
  emulator: RealGuestEmulator;
  /** Wall-clock milliseconds from starting the CPU to the shell prompt. */
  bootMs: number;
  /** Runs a shell command in the guest; resolves with its output (see exec). */
  run(cmd: string, timeoutMs?: number): Promise<string>;
  /** Runs a shell command in the guest; resolves with its output and exit status. */
  exec(cmd: string, timeoutMs?: number): Promise<CommandResult>;
  /** Everything the guest has written to the serial port so far. */
  serialLog(): string;
  /** Stops and frees the emulator; pending commands are rejected. */
  stop(): void;
};

/** The boot set's paths in a cache directory. */
export function realGuestImagePaths(cacheDir: string): { bios: string; bzimage: string; initrd: string; manifest: string } {
  return {
    bios: join(cacheDir, 'bios.bin'),
    bzimage: join(cacheDir, 'bzImage'),
    initrd: join(cacheDir, 'initrd.cpio'),
    manifest: join(cacheDir, 'manifest.json'),
  };
}

/**
 * Guest RAM as a plain Uint8Array over v86's wasm memory (guest-physical
 * address 0 at index 0). NOTE: a wasm memory.grow detaches the old buffer;
 * callers that keep the view should re-take it when `view.buffer !==
 * cpu.wasm_memory.buffer`.
 */
export function guestMemory(emulator: V86Internals): Uint8Array {
  const cpu = emulator.v86.cpu;
  return new Uint8Array(cpu.wasm_memory.buffer, cpu.mem8.byteOffset, cpu.memory_size[0]);
}

function readImage(path: string): { buffer: ArrayBuffer } {
  const b = readFileSync(path);
  return { buffer: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer };
}

/** The package's wasm file, next to its Node build (v86 otherwise looks under the cwd). */
function v86WasmPath(): string {
  return fileURLToPath(new URL('v86.wasm', import.meta.resolve('v86')));
}

/**
 * Terminal escape sequences busybox's line editor writes (e.g. ESC[6n after
 * each prompt, ESC[J while redrawing), and OSC strings.
 */
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

export function stripTerminalEscapes(s: string): string {
  return s.replace(ESCAPES, '');
}

function tail(s: string): string {
  const t = stripTerminalEscapes(s);
  return t.length > TAIL_CHARS ? '...' + t.slice(-TAIL_CHARS) : t;
}

type Waiter = { test(log: string): boolean; resolve(): void; reject(e: Error): void };

/**
 * Boots the cached real guest and resolves once its shell prompt is up.
 */
export async function bootRealGuest(opts: BootRealGuestOptions = {}): Promise<RealGuest> {
  const cacheDir = resolve(opts.cacheDir ?? DEFAULT_CACHE_DIR);
  const paths = realGuestImagePaths(cacheDir);
  for (const p of [paths.bios, paths.bzimage, paths.initrd]) {
    if (!existsSync(p)) {
      throw new Error(`real guest image missing: ${p}; run scripts/real-guest/build-image.sh first`);
    }
  }
  const memoryBytes = opts.memoryBytes ?? DEFAULT_MEMORY_BYTES;
  const bootTimeoutMs = opts.timeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS;

  const emulator = new V86({
    wasm_path: v86WasmPath(),
    bios: readImage(paths.bios),
    bzimage: readImage(paths.bzimage),
    initrd: readImage(paths.initrd),
    cmdline: REAL_GUEST_CMDLINE,
    memory_size: memoryBytes,
    vga_memory_size: 2 * 2 ** 20,
    autostart: false,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
    ...opts.v86Options,
  }) as RealGuestEmulator;

  // Serial output, kept whole: commands are framed by markers found in it.
  let log = '';
  let stopped = false;
  const waiters = new Set<Waiter>();
  const check = (): void => {
    for (const w of waiters) {
      if (w.test(log)) {
        waiters.delete(w);
        w.resolve();
      }
    }
  };
  emulator.add_listener('serial0-output-byte', (byte: number) => {
    log += String.fromCharCode(byte);
    // The prompt and markers end lines or prompts; skip the scan mid-line.
    if (byte === 10 || byte === 32) check();
  });

  /** Resolves when test(log) holds; rejects after timeoutMs or on stop. */
  const waitFor = (test: (log: string) => boolean, timeoutMs: number, what: string): Promise<void> =>
    new Promise<void>((res, rej) => {
      if (stopped) return rej(new Error(`real guest stopped before ${what}`));
      if (test(log)) return res();
      const timer = setTimeout(() => {
        waiters.delete(w);
        rej(new Error(`real guest: timed out after ${timeoutMs} ms waiting for ${what}; serial output ends:\n${tail(log)}`));
      }, timeoutMs);
      const w: Waiter = {
        test,
        resolve: () => { clearTimeout(timer); res(); },
        reject: (e) => { clearTimeout(timer); rej(e); },
      };
      waiters.add(w);
    });

  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    for (const w of waiters) w.reject(new Error('real guest stopped'));
    waiters.clear();
    void emulator.destroy().catch(() => undefined);
  };

  await new Promise<void>((res) => emulator.add_listener('emulator-loaded', () => res()));
  opts.beforeBoot?.(emulator);
  const t0 = performance.now();
  await emulator.run();
  try {
    await waitFor((l) => {
      const i = l.indexOf(INIT_READY);
      return i >= 0 && l.indexOf(REAL_GUEST_PROMPT, i) >= 0;
    }, bootTimeoutMs, 'the shell prompt');
  } catch (e) {
    stop();
    throw e;
  }
  const bootMs = performance.now() - t0;

  let seq = 0;
  let queue: Promise<unknown> = Promise.resolve();
  const exec = (cmd: string, timeoutMs = DEFAULT_RUN_TIMEOUT_MS): Promise<CommandResult> => {
    const job = queue.then(async (): Promise<CommandResult> => {
      if (stopped) throw new Error('real guest stopped');
      const id = `${process.pid.toString(36)}x${(++seq).toString(36)}`;
      // One input line, so the tty has echoed all of it before the command
      // runs and nothing it echoes lands inside the output. The quotes split
      // each marker in that echo: only the shell's own output has it whole.
      // eval keeps a trailing comment or '&' in cmd from eating the end marker.
      const begin = `@@B${id}@@`;
      const endRe = new RegExp(`@@E${id}:(\\d+)@@`);
      const from = log.length;
      const quoted = `'${cmd.replace(/'/g, `'\\''`)}'`;
      emulator.serial0_send(`echo "@@B""${id}@@"; eval ${quoted}; echo "@@E""${id}:$?@@"\n`);
      await waitFor((l) => endRe.test(l.slice(from)), timeoutMs, `the output of ${JSON.stringify(cmd)}`);
      const seen = log.slice(from);
      const end = endRe.exec(seen);
      const b = seen.indexOf(begin);
      if (end === null || b < 0 || b > end.index) throw new Error(`real guest: unframed output for ${JSON.stringify(cmd)}:\n${tail(seen)}`);
      let body = stripTerminalEscapes(seen.slice(b + begin.length, end.index)).replace(/\r/g, '');
      if (body.startsWith('\n')) body = body.slice(1);
      return { output: body, status: Number(end[1]) };
    });
    queue = job.catch(() => undefined);
    return job;
  };

  return {
    emulator,
    bootMs,
    run: async (cmd, timeoutMs) => (await exec(cmd, timeoutMs)).output,
    exec,
    serialLog: () => log,
    stop,
  };
}
