#!/usr/bin/env bash
# The package as a user gets it: `npm pack` this checkout, install the tarball in an
# empty directory, and run the CLI on a scenario the package bundles, then both library
# entry points. Fails on any missing file (a `files` entry forgotten, an import of
# something not shipped). Used by .ci/run; takes about a minute (the install).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/balloonlab-pack.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cd "$repo"
tarball="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
echo "pack-test: $tarball ($(du -h "$work/$tarball" | cut -f1))"
tar -tzf "$work/$tarball" > "$work/contents"
for must in package/bin/balloonlab.js package/dist/src/index.js package/dist/src/integrations/index.js \
            package/dist/bench/scale_child.js package/scenarios/boot.yaml package/docs/library.md; do
  grep -qx "$must" "$work/contents" || { echo "pack-test: $must is not in the package" >&2; exit 1; }
done
if grep -q '^package/dist/test/' "$work/contents"; then echo "pack-test: the package ships the tests" >&2; exit 1; fi

cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --silent "./$tarball"

out="$(npx --no-install balloonlab run node_modules/balloonlab/scenarios/boot.yaml --quiet)"
echo "$out" | head -n 2
echo "$out" | grep -q '^scenario boot  seed 1  guest 1GiB 1 vcpu(s)$' || { echo "pack-test: unexpected run output" >&2; exit 1; }
npx --no-install balloonlab run node_modules/balloonlab/scenarios/boot.yaml --json - --reproducible | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    const doc = JSON.parse(s);
    if (doc.scenario !== "boot" || !doc.final || doc.wall_ms !== 0) { console.error("pack-test: bad result document"); process.exit(1); }
  });'

cat > check.mjs <<'JS'
import { loadScenarioText, runScenario, procBuddyinfo, VERSION } from 'balloonlab';
import { runV86Scenario, formatRealReport } from 'balloonlab/real-guest';
const { doc, guest } = runScenario(loadScenarioText('name: t\nguest: { memory: 256MiB }\ntimeline: []\n', 't.yaml'));
if (!/^Node 0, zone +DMA32/m.test(procBuddyinfo(guest)) || doc.scenario !== 't') throw new Error('library run');
if (typeof runV86Scenario !== 'function' || typeof formatRealReport !== 'function') throw new Error('real-guest entry');
console.log(`pack-test: library ${VERSION} ok`);
JS
node check.mjs
echo "pack-test: ok"
