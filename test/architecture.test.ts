/**
 * The layers docs/architecture.md describes, checked on the source: guest and host
 * meet only at the virtio transport (neither imports the other; only machine/ knows
 * both), the core imports no Node API, and no module imports itself through others.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Every file's imports: relative ones resolved to files under src, and bare specifiers. */
function imports(): Map<string, { local: string[]; bare: string[] }> {
  const out = new Map<string, { local: string[]; bare: string[] }>();
  for (const f of sources(SRC)) {
    const text = readFileSync(f, 'utf8');
    const local: string[] = [], bare: string[] = [];
    for (const m of text.matchAll(/^(?:import|export)[^;]*?from '([^']+)'/gms)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) local.push(relative(SRC, resolve(dirname(f), spec.replace(/\.js$/, '.ts'))));
      else bare.push(spec);
    }
    out.set(relative(SRC, f), { local, bare });
  }
  return out;
}

const CORE = ['sim/', 'guest/', 'virtio/', 'host/', 'machine/', 'actions/', 'workloads/', 'scenario/', 'report/', 'index.ts', 'version.ts'];

test('guest and host do not import each other; only the machine layer (and what sits above it) knows both', () => {
  for (const [file, { local }] of imports()) {
    if (file.startsWith('host/')) assert.deepEqual(local.filter((d) => d.startsWith('guest/') || d.startsWith('machine/')), [], `${file} imports the guest`);
    if (file.startsWith('guest/')) assert.deepEqual(local.filter((d) => d.startsWith('host/') || d.startsWith('machine/')), [], `${file} imports the host`);
    if (file.startsWith('virtio/') || file.startsWith('sim/')) assert.deepEqual(local.filter((d) => !d.startsWith(file.split('/')[0]! + '/') && !d.startsWith('sim/')), [], `${file} reaches above its layer`);
  }
});

test('the core imports no Node API and nothing from cli/ or integrations/', () => {
  for (const [file, { local, bare }] of imports()) {
    if (!CORE.some((c) => file.startsWith(c))) continue;
    assert.deepEqual(bare.filter((b) => b.startsWith('node:')), [], `${file} imports Node`);
    assert.deepEqual(local.filter((d) => d.startsWith('cli/') || d.startsWith('integrations/')), [], `${file} imports an edge layer`);
  }
});

test('no import cycles', () => {
  const g = imports();
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 1);
    stack.push(f);
    for (const d of g.get(f)?.local ?? []) {
      if (state.get(d) === 1) assert.fail(`import cycle: ${[...stack.slice(stack.indexOf(d)), d].join(' -> ')}`);
      if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 2);
  };
  for (const f of g.keys()) if (!state.has(f)) visit(f);
});
