#!/usr/bin/env node
// The balloonlab command: a thin launcher for the compiled CLI (npm install builds dist/).
import { main } from '../dist/src/cli/main.js';

main(process.argv).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(err instanceof Error ? (err.stack ?? err.message) : String(err)); process.exitCode = 1; },
);
