/**
 * `costs:` in a scenario file: cost-table entries overridden by name, routed through
 * the machine's config into the one table both sides charge from, echoed in the result
 * document; an unknown name is bad input naming the field and the names allowed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadScenarioText, runScenario, scenarioVmConfig } from '../../src/scenario/runner.js';
import { ScenarioError } from '../../src/scenario/schema.js';
import { eventsOfKind } from '../../src/actions/index.js';
import { COSTS, COST_NAMES, costTable, defaultCostTable } from '../../src/sim/cost.js';

import { tempDir } from '../helpers/tmp.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'bin', 'balloonlab.js');

const fragmentAndCompact = (costs: string) => `name: costs
guest: { memory: 256MiB, thp: never }
${costs}timeline:
  - { at: 0s, action: process_fault, pid: 1, size: 160MiB }
  - { at: 1s, action: process_free, pid: 1, fraction: 0.5, pick: alternate }
  - { at: 2s, action: compact_memory }
`;

test('an override changes the figure that depends on it, and only that: compact_memory cost_ns without migratePage', () => {
  const plain = runScenario(loadScenarioText(fragmentAndCompact(''), 'a.yaml'));
  const free = runScenario(loadScenarioText(fragmentAndCompact('costs: { migratePage: 0 }\n'), 'b.yaml'));
  const [c0] = eventsOfKind(plain.doc.events, 'compact_memory');
  const [c1] = eventsOfKind(free.doc.events, 'compact_memory');
  assert.ok(c0 && c1 && c0.pgmigrate_success > 1000, 'compaction migrated pages');
  assert.equal(c1.pgmigrate_success, c0.pgmigrate_success, 'the same work was done');
  const scanned = c0.compact_migrate_scanned + c0.compact_free_scanned;
  assert.equal(c0.cost_ns, scanned * COSTS.compactScanPage.ns + c0.pgmigrate_success * COSTS.migratePage.ns);
  assert.equal(c1.cost_ns, scanned * COSTS.compactScanPage.ns, 'migrations cost nothing now');
  // one table for the machine, the guest and the host
  assert.equal(free.vm.costs.migratePage, 0);
  assert.equal(free.vm.guest.pgdat.costs.migratePage, 0);
  assert.equal(free.vm.host.costs.migratePage, 0);
  assert.equal(free.vm.costs.clearPage, COSTS.clearPage.ns, 'the rest keep their defaults');
  // echoed next to the guest in the result document, only when the scenario has overrides
  assert.deepEqual(free.doc.costs, { migratePage: 0 });
  assert.ok(!('costs' in plain.doc));
  assert.deepEqual(Object.keys(free.doc).slice(0, 5), ['balloonlab', 'scenario', 'seed', 'guest', 'costs']);
});

test('the machine config carries the overrides; costTable applies them over the defaults', () => {
  const s = loadScenarioText(fragmentAndCompact('costs: { virtqueueKick: 12000, oomKill: 0 }\n'), 'c.yaml').base;
  assert.deepEqual(scenarioVmConfig(s, 1).costs, { virtqueueKick: 12000, oomKill: 0 });
  assert.deepEqual(costTable({ virtqueueKick: 12000, oomKill: 0 }), { ...defaultCostTable(), virtqueueKick: 12000, oomKill: 0 });
  assert.deepEqual(costTable(), defaultCostTable());
  // variants merge onto the base's costs
  const f = loadScenarioText(fragmentAndCompact('costs: { virtqueueKick: 12000 }\n') + 'variants:\n  - name: a\n  - name: b\n    costs: { oomKill: 5 }\n', 'v.yaml');
  assert.deepEqual(f.variants.map((v) => v.scenario.costs), [{ virtqueueKick: 12000 }, { virtqueueKick: 12000, oomKill: 5 }]);
});

function refusal(costs: string): string {
  try {
    loadScenarioText(fragmentAndCompact(costs), 's.yaml');
  } catch (e) {
    assert.ok(e instanceof ScenarioError, String(e));
    return e.message;
  }
  assert.fail('expected a ScenarioError');
}

test('bad costs name the field: unknown names list the valid ones; values are finite ns at least 0', () => {
  assert.equal(refusal('costs: { migrateThePage: 1 }\n'), `s.yaml: costs.migrateThePage: unknown cost "migrateThePage" (allowed: ${COST_NAMES.join(', ')})`);
  assert.match(refusal('costs: { migratePage: -1 }\n'), /^s\.yaml: costs\.migratePage: expected nanoseconds per unit, a finite number at least 0, got -1$/);
  assert.match(refusal('costs: { migratePage: 2us }\n'), /^s\.yaml: costs\.migratePage: expected nanoseconds per unit.*got "2us"$/);
  assert.match(refusal('costs: { migratePage: .inf }\n'), /^s\.yaml: costs\.migratePage: expected nanoseconds per unit/);
  assert.match(refusal('costs: 5\n'), /^s\.yaml: costs: /);
});

test('through the CLI an unknown cost name exits 2 with one line', () => {
  const dir = tempDir('balloonlab-');
  const file = join(dir, 'bad-costs.yaml');
  writeFileSync(file, fragmentAndCompact('costs: { pageAllocFast: 150, nope: 3 }\n'));
  const r = spawnSync(process.execPath, [bin, 'run', file, '--quiet'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /bad-costs\.yaml: costs\.nope: unknown cost "nope" \(allowed: pageAllocFast, pageAllocBuddy, /);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});
