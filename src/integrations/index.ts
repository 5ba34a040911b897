/**
 * balloonlab's Node-only parts, as `import ... from 'balloonlab/real-guest'`: a real
 * Linux guest in v86 with balloonlab's balloon device, the scenario runner for real
 * guests and the differential report. (The main entry, `balloonlab`, is the model core:
 * it runs in a browser worker as well as in Node, so it cannot carry these.)
 */
export { bootRealGuest, realGuestImagePaths, type RealGuest, type BootRealGuestOptions, type CommandResult } from './v86/boot.js';
export { attachBalloonlabBalloon, type BalloonBridge, type BalloonBridgeOptions } from './v86/bridge.js';
export { runV86Scenario, checkV86Scenario, v86Context, V86_MEMORY_MIN, V86_MEMORY_MAX, type V86RunResult, type V86RunOptions } from './v86/side.js';
export { runRealTimeline, type RealRunResult, type RealTimelineResult, type RealEvent, type ErrorEvent, type RealGuestState } from './real/runner.js';
export { runModelSide, diffRows, formatRealReport, formatRealSide, entryText, type ModelSide, type DiffRow } from './real/diff.js';
