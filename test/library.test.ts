/** The library as a user meets it: the README's example runs and prints what it says. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

test('the README library example (examples/library.ts) runs and prints the balloon, buddyinfo and query-balloon', () => {
  const script = fileURLToPath(new URL('../examples/library.js', import.meta.url));
  const out = execFileSync(process.execPath, [script], { encoding: 'utf8' });
  assert.match(out, /^balloon 65536 pages, \d+ pages free$/m);
  assert.match(out, /^Node 0, zone    DMA32 /m);
  assert.match(out, /\{"return":\{"actual":536870912\}\}/);
});

test('README shows examples/library.ts as it is (importing from balloonlab)', () => {
  const root = new URL('../../', import.meta.url);
  const example = readFileSync(new URL('examples/library.ts', root), 'utf8');
  const code = example.slice(example.indexOf('import {')).replace("from '../src/index.js';", "from 'balloonlab';");
  const readme = readFileSync(new URL('README.md', root), 'utf8');
  assert.ok(readme.includes('```ts\n' + code + '```'), 'README.md\'s library block differs from examples/library.ts');
});
