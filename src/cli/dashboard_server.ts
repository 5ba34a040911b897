/**
 * `balloonlab dashboard`: a local HTTP server that only serves files — the page, its
 * script and the model worker (bundled by esbuild from the compiled dist/ on the
 * first request, kept in memory, never written to the tree) and the bundled
 * scenarios' text. The model runs in the browser (web/worker.ts).
 *
 * Every response carries COOP/COEP so the page is cross-origin isolated: the worker
 * and the page share a SharedArrayBuffer (play/pause/step and the QMP controls).
 */
import { createServer, type Server } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { build } from 'esbuild';

const WEB_DIR = fileURLToPath(new URL('../dashboard/web/', import.meta.url));
const SCENARIO_DIR = fileURLToPath(new URL('../../../scenarios/', import.meta.url));

export type DashboardOptions = { host: string; port: number; scenarioFile?: string; scenarioText?: string };

/** The bundled scenarios by name (file name without .yaml). */
export function bundledScenarios(): string[] {
  return readdirSync(SCENARIO_DIR).filter((f) => f.endsWith('.yaml')).map((f) => f.replace(/\.yaml$/, '')).sort();
}

let bundles: Promise<{ app: string; worker: string }> | null = null;

/** app.js and worker.js, bundled once per process (IIFE, for the browser, minified). */
export function dashboardBundles(): Promise<{ app: string; worker: string }> {
  bundles ??= (async () => {
    const one = async (entry: string) => {
      const r = await build({ entryPoints: [join(WEB_DIR, entry)], bundle: true, write: false, format: 'iife', platform: 'browser', target: 'es2022', minify: true, legalComments: 'none', logLevel: 'silent' });
      return r.outputFiles[0]!.text;
    };
    const [app, worker] = await Promise.all([one('app.js'), one('worker.js')]);
    return { app, worker };
  })();
  return bundles;
}

const PAGE = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>balloonlab dashboard</title>
<style>
body { font-family: "DejaVu Sans", system-ui, sans-serif; margin: 0; color: #222; font-size: 14px; }
header { background: #2b2b3a; color: #fff; padding: 8px 12px; display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
header h1 { font-size: 16px; margin: 0 12px 0 0; } header button, header select { font-size: 13px; }
main { display: grid; grid-template-columns: 680px 1fr; gap: 12px; padding: 12px; }
section h2 { font-size: 14px; margin: 4px 0; }
#legend .key { display: inline-block; margin: 2px 8px 2px 0; font-size: 12px; } #legend i { display: inline-block; width: 11px; height: 11px; margin-right: 4px; vertical-align: -1px; }
#log { height: 220px; overflow: auto; background: #f6f6f6; font-size: 11px; padding: 6px; margin: 0; white-space: pre-wrap; }
#text { width: 100%; height: 120px; font-family: monospace; font-size: 11px; }
.controls { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin: 6px 0; }
#clock, #fps { font-family: monospace; }
</style></head>
<body>
<header><h1>balloonlab dashboard</h1>
<select id="scenario"></select><button id="run">run</button>
<label>or open <input id="file" type="file" accept=".yaml,.yml"></label>
<button id="play">play</button><button id="step">step</button>
<label>speed <select id="speed"><option value="0.1">0.1×</option><option value="1" selected>1×</option><option value="10">10×</option><option value="100">100×</option><option value="0">as fast as possible</option></select></label>
<label><input id="start-paused" type="checkbox"> start paused</label>
<span id="clock"></span><span id="fps"></span>
</header>
<main>
<section><h2>Memory map</h2><div id="map-scale"></div><canvas id="map" width="640" height="64"></canvas><div id="legend"></div>
<h2>QMP</h2>
<div class="controls"><label>balloon: guest size <input id="target" type="number" min="1" step="1" style="width:7em"> MiB</label><button id="set-target">balloon</button>
<button id="migrate">migrate</button>
<span>free page hint: <button id="hint-start">start</button><button id="hint-stop">stop</button><button id="hint-done">done</button></span></div>
<h2>Scenario</h2><textarea id="text" spellcheck="false"></textarea><div class="controls"><button id="run-text">run this text</button></div>
</section>
<section><div id="chart-balloon"></div><div id="chart-migration" style="display:none"></div><div id="chart-free"></div><h2>Events</h2><pre id="log"></pre></section>
</main>
<script src="/app.js"></script>
</body></html>
`;

const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cross-Origin-Resource-Policy': 'same-origin', 'Cache-Control': 'no-store' };

/** Starts the server; resolves once it listens, with its URL. */
export function startDashboard(o: DashboardOptions): Promise<{ server: Server; url: string }> {
  const initialName = o.scenarioFile ? 'your scenario' : null;
  const server = createServer((req, res) => {
    const send = (code: number, type: string, body: string) => { res.writeHead(code, { 'Content-Type': type, ...ISOLATION }); res.end(body); };
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET') return send(405, 'text/plain', 'GET only\n');
    if (url.pathname === '/') return send(200, 'text/html; charset=utf-8', PAGE);
    if (url.pathname === '/app.js' || url.pathname === '/worker.js') {
      dashboardBundles().then((b) => send(200, 'text/javascript; charset=utf-8', url.pathname === '/app.js' ? b.app : b.worker),
        (e: unknown) => send(500, 'text/plain', `bundling failed: ${e instanceof Error ? e.message : String(e)}\n`));
      return;
    }
    if (url.pathname === '/api/scenarios') {
      const list = bundledScenarios();
      return send(200, 'application/json', JSON.stringify({ scenarios: initialName ? [initialName, ...list] : list, initial: initialName ?? 'balloon-basic' }));
    }
    if (url.pathname === '/api/scenario') {
      const name = url.searchParams.get('name') ?? '';
      if (initialName && name === initialName) return send(200, 'text/yaml; charset=utf-8', o.scenarioText ?? '');
      if (!bundledScenarios().includes(name)) return send(404, 'text/plain', `no bundled scenario "${name}"\n`);
      return send(200, 'text/yaml; charset=utf-8', readFileSync(join(SCENARIO_DIR, `${name}.yaml`), 'utf8'));
    }
    if (url.pathname === '/favicon.ico') { res.writeHead(204, ISOLATION); res.end(); return; }
    return send(404, 'text/plain', 'not found\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      const a = server.address();
      const port = typeof a === 'object' && a ? a.port : o.port;
      resolve({ server, url: `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}/` });
    });
  });
}
