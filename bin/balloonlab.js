#!/usr/bin/env node
// The balloonlab command: a thin launcher for the compiled CLI (npm install builds dist/).
import { setFlagsFromString } from 'node:v8';

// NOTE: the allocator's hot path is many small functions (the page map's accessors,
// the free lists, the pcp lists); with V8's default cumulative inlining budget (920
// bytes of bytecode per optimized function) a simulation loop runs out of budget before
// they are all inlined. A larger budget, set before any model code is compiled, is
// worth ~20% of `bench alloc` (docs/architecture.md, "Performance").
setFlagsFromString('--max-inlined-bytecode-size-cumulative=3000');

// A reader that stops early (`balloonlab proc kpageflags | head -c 100`) closes the
// pipe: that ends the command quietly, as it ends cat.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

const { main, reportError } = await import('../dist/src/cli/main.js');
main(process.argv).then(
  (code) => { process.exitCode = process.exitCode ?? code; if (code !== 0) process.exitCode = code; },
  (err) => { process.exitCode = reportError(err); },
);
