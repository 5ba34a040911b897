/**
 * What the dashboard page and its model worker say to each other. Messages go by
 * postMessage; play/pause/step/speed and the QMP-shaped commands go through a
 * SharedArrayBuffer, because the worker runs the scenario in one synchronous call
 * (runScenario) and reads them between ticks, never returning to its event loop.
 *
 * Control block (Int32Array over `ctl`):
 *   [0] state: PAUSED, PLAYING, or STEP (run to the next tick, then pause)
 *   [1] command sequence written by the page, [2] sequence the worker has done
 *   [3] command op (CommandOp), [4..5] its argument as a float64 in the Float64Array view
 *   speed (virtual seconds per wall second; 0: as fast as possible) at Float64 index 4
 */
export const enum RunState { PAUSED = 0, PLAYING = 1, STEP = 2 }
export const enum CommandOp { BALLOON = 1, MIGRATE = 2, HINT_START = 3, HINT_STOP = 4, HINT_DONE = 5 }
export const CTL_BYTES = 64;
export const CTL_STATE = 0, CTL_CMD_SEQ = 1, CTL_CMD_DONE = 2, CTL_CMD_OP = 3;
/** Float64Array indexes (8-byte slots) of the control block. */
export const CTL_F_ARG = 3, CTL_F_SPEED = 4;

export type StartMessage = { type: 'start'; scenarioText: string; name: string; ctl: SharedArrayBuffer };

/** One frame: virtual time, the memory map's codes, the chart rows' values. */
export type FrameMessage = {
  type: 'frame';
  t_ns: number;
  end_ns: number;
  codes: Uint8Array;
  /** free pages per order 0..10 */
  freeByOrder: number[];
  balloonTarget: number;
  balloonActual: number;
  rssBytes: number;
  freePages: number;
  phase: string;
  /** The last migration's remaining and transferred bytes, when one was started. */
  migration: { remaining: number; transferred: number; iteration: number; status: string } | null;
  /** Wall ms the worker spent building this frame (the map walk). */
  build_ms: number;
};
export type EventMessage = { type: 'event'; text: string };
export type BootMessage = { type: 'boot'; memoryBytes: number; pageblocks: number; name: string; end_ns: number };
export type DoneMessage = { type: 'done'; duration_ns: number; events: number };
export type ErrorMessage = { type: 'error'; message: string };
export type WorkerMessage = FrameMessage | EventMessage | BootMessage | DoneMessage | ErrorMessage;
