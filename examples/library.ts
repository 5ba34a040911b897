// The README's library example, compiled and run by the tests (test/library.test.ts),
// so it cannot drift from the API. Outside this repository, import from 'balloonlab'.
import {
  loadScenarioText, runScenario, eventsOfKind, procBuddyinfo, createVm, defaultGuestConfig, qmpExecute, simRunUntil,
  type RunResult,
} from '../src/index.js';

// 1. A scenario from YAML text, run on the model; the result document is typed.
const file = loadScenarioText(`
name: shrink
guest: { memory: 1GiB }
timeline:
  - { at: 0s, action: balloon, value: 768MiB, wait: 60s }
  - { at: 0s, action: snapshot, label: shrunk }
`, 'shrink.yaml');
const { doc, guest }: RunResult = runScenario(file);     // doc: the --json document, typed
const snap = eventsOfKind(doc.events, 'snapshot', 'shrunk')[0]!;
console.log(`balloon ${snap.balloon_actual_pages} pages, ${snap.nr_free_pages} pages free`);
process.stdout.write(procBuddyinfo(guest));            // /proc/buddyinfo of the guest at the end

// 2. A machine driven by hand: QMP to its host side, the clock run forward.
const vm = createVm({ guest: defaultGuestConfig({ memoryBytes: 2 ** 30 }), balloon: { device: {}, driver: {} }, memPrealloc: false });
qmpExecute(vm.host, { execute: 'balloon', arguments: { value: 512 * 2 ** 20 } });
simRunUntil(vm.sim, 5e9);                              // 5 s of virtual time
console.log(JSON.stringify(qmpExecute(vm.host, { execute: 'query-balloon' })));   // {"return":{"actual":536870912}}
