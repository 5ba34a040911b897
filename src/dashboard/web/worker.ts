/**
 * The dashboard's model worker: the model core, run in a browser Web Worker. It loads
 * the scenario the page sends, runs it with runScenario, and at every sample tick
 * paces virtual time to the page's speed, waits while paused, applies the QMP-shaped
 * command the page left in the shared control block, and posts a frame (the memory
 * map's codes and the chart figures) at most every FRAME_MS of wall time.
 */
import { loadScenarioText, runScenario, scenarioEnd } from '../../scenario/runner.js';
import type { Vm } from '../../machine/machine.js';
import { memoryMapCodes } from '../../report/memory_map.js';
import { MAX_ORDER } from '../../guest/mm/memmap.js';
import { qmpExecute } from '../../host/qmp.js';
import { virtioBalloonFreePageStart, virtioBalloonFreePageStop, virtioBalloonFreePageDone } from '../../host/virtio_balloon.js';
import { ramRssBytes } from '../../host/ram.js';
import { formatTime } from '../../scenario/units.js';
import {
  type StartMessage, type WorkerMessage, RunState, CommandOp, CTL_STATE, CTL_CMD_SEQ, CTL_CMD_DONE, CTL_CMD_OP, CTL_F_ARG, CTL_F_SPEED,
} from './protocol.js';

type WorkerScope = { postMessage(m: WorkerMessage, transfer?: ArrayBuffer[]): void; onmessage: ((e: { data: StartMessage }) => void) | null };
const scope = self as unknown as WorkerScope;

/** Wall time between two frames at most (a frame is also posted at every pause and at the end). */
const FRAME_MS = 16;

function post(m: WorkerMessage, transfer: ArrayBuffer[] = []): void {
  scope.postMessage(m, transfer);
}

function frame(vm: Vm, now: number, end: number, phase: string): void {
  const t0 = performance.now();
  const codes = memoryMapCodes(vm.guest);
  const freeByOrder: number[] = new Array<number>(MAX_ORDER).fill(0);
  for (const z of vm.guest.pgdat.zones) for (let o = 0; o < MAX_ORDER; o++) freeByOrder[o] = freeByOrder[o]! + z.nrFree[o]! * (1 << o);
  const dev = vm.host.balloon, m = vm.host.migration;
  post({
    type: 'frame', t_ns: now, end_ns: end, codes, freeByOrder, phase,
    balloonTarget: dev?.numPages ?? 0, balloonActual: dev?.actual ?? 0, rssBytes: ramRssBytes(vm.host.ram),
    freePages: freeByOrder.reduce((a, b) => a + b, 0), build_ms: performance.now() - t0,
    migration: m ? { remaining: m.dirtyPages * 4096, transferred: m.transferred, iteration: m.iterations, status: m.status } : null,
  }, [codes.buffer as ArrayBuffer]);
}

function runCommand(vm: Vm, i32: Int32Array, f64: Float64Array): void {
  const op = i32[CTL_CMD_OP]! as CommandOp;
  const arg = f64[CTL_F_ARG]!;
  const t = formatTime(vm.sim.now);
  const dev = vm.host.balloon;
  if (op === CommandOp.BALLOON) {
    const r = qmpExecute(vm.host, { execute: 'balloon', arguments: { value: arg } });
    post({ type: 'event', text: `${t}  QMP balloon value=${arg} -> ${JSON.stringify(r)}` });
  } else if (op === CommandOp.MIGRATE) {
    const r = qmpExecute(vm.host, { execute: 'migrate', arguments: { uri: 'model:' } });
    post({ type: 'event', text: `${t}  QMP migrate -> ${JSON.stringify(r)}` });
  } else if (!dev) {
    post({ type: 'event', text: `${t}  free page hint: no balloon device` });
  } else if (op === CommandOp.HINT_START) {
    post({ type: 'event', text: `${t}  free page hint start -> ${virtioBalloonFreePageStart(dev) ? 'started' : 'FREE_PAGE_HINT not negotiated (balloon.free_page_hint: true)'}` });
  } else if (op === CommandOp.HINT_STOP) {
    virtioBalloonFreePageStop(dev);
    post({ type: 'event', text: `${t}  free page hint stop` });
  } else if (op === CommandOp.HINT_DONE) {
    virtioBalloonFreePageDone(dev);
    post({ type: 'event', text: `${t}  free page hint done` });
  }
}

scope.onmessage = (e) => {
  const msg = e.data;
  const i32 = new Int32Array(msg.ctl), f64 = new Float64Array(msg.ctl);
  try {
    const sf = loadScenarioText(msg.scenarioText, msg.name);
    const s = sf.base;
    // ticks (pacing, commands, frames) every ~1/5000 of the run, 1-100 ms of virtual time
    s.sample ??= { interval: Math.min(100e6, Math.max(1e6, Math.round(scenarioEnd(s) / 5000))) };
    let vm: Vm | null = null;
    let lastFrame = -Infinity;
    // pacing: virtual time `virt0` was reached at wall time `wall0` at the current speed
    let wall0 = performance.now(), virt0 = 0, speed = f64[CTL_F_SPEED]!;
    const { doc } = runScenario(s, {
      source: msg.name,
      onBoot: (v) => {
        vm = v;
        post({ type: 'boot', memoryBytes: s.guest.memory, pageblocks: v.guest.pgdat.map.nrPages >>> 9, name: s.name, end_ns: scenarioEnd(s) });
      },
      onEntry: (_i, ev) => {
        const { t_ns, kind, label, ...rest } = ev as { t_ns: number; kind: string; label?: string } & Record<string, unknown>;
        const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join('  ');
        post({ type: 'event', text: `${formatTime(t_ns)}  ${kind}${label ? ` (${label})` : ''}  ${fields.slice(0, 400)}` });
      },
      onProgress: (now, end, phase) => {
        if (!vm) return;
        if (Atomics.load(i32, CTL_CMD_SEQ) !== Atomics.load(i32, CTL_CMD_DONE)) {
          runCommand(vm, i32, f64);
          Atomics.store(i32, CTL_CMD_DONE, Atomics.load(i32, CTL_CMD_SEQ));
        }
        const wall = performance.now();
        if (wall - lastFrame >= FRAME_MS || now >= end) { frame(vm, now, end, phase); lastFrame = performance.now(); }
        // speed changed: restart the pacing from here
        if (f64[CTL_F_SPEED] !== speed) { speed = f64[CTL_F_SPEED]!; wall0 = wall; virt0 = now; }
        let state = Atomics.load(i32, CTL_STATE);
        if (state === RunState.STEP) { Atomics.store(i32, CTL_STATE, RunState.PAUSED); state = RunState.PAUSED; frame(vm, now, end, phase); lastFrame = performance.now(); }
        if (state === RunState.PAUSED) {
          while (Atomics.load(i32, CTL_STATE) === RunState.PAUSED) {
            Atomics.wait(i32, CTL_STATE, RunState.PAUSED, 100);
            // commands act while paused too
            if (Atomics.load(i32, CTL_CMD_SEQ) !== Atomics.load(i32, CTL_CMD_DONE)) {
              runCommand(vm, i32, f64);
              Atomics.store(i32, CTL_CMD_DONE, Atomics.load(i32, CTL_CMD_SEQ));
            }
          }
          wall0 = performance.now(); virt0 = now; speed = f64[CTL_F_SPEED]!;
          return;
        }
        if (speed > 0) {
          const due = wall0 + (now - virt0) / 1e6 / speed;
          const wait = due - performance.now();
          if (wait > 1) Atomics.wait(i32, CTL_STATE, RunState.PLAYING, Math.min(wait, 1000));
        }
      },
    });
    post({ type: 'done', duration_ns: doc.duration_ns, events: doc.events.length });
  } catch (err) {
    post({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  }
};
