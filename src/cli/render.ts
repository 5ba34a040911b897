/**
 * Renders the charts of src/report/charts.ts: Vega-Lite compiled to Vega (vega-lite),
 * drawn headless to SVG by Vega's own renderer (no browser, no canvas), and SVG to PNG
 * by resvg (@resvg/resvg-js). resvg draws text only with a font it has: it loads the
 * system's fonts and falls back to DejaVu Sans, which the charts ask for (Debian's
 * fonts-dejavu-core; docs/pictures.md).
 */
import { compile } from 'vega-lite';
import * as vega from 'vega';
import { Resvg, type ResvgRenderOptions } from '@resvg/resvg-js';
import { existsSync } from 'node:fs';
import type { Chart } from '../report/charts.js';

/** One chart as SVG text. */
export async function chartSvg(chart: Chart): Promise<string> {
  const vg = compile(chart.spec).spec;
  const view = new vega.View(vega.parse(vg), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Where Debian keeps DejaVu Sans (fonts-dejavu-core), when it is there. */
const FONT_FILES = ['/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf'];

/** resvg's options: white background, the system's fonts and DejaVu Sans, `scale` PNG pixels per SVG pixel. */
export function resvgOptions(scale = 1): ResvgRenderOptions {
  return {
    fitTo: scale === 1 ? { mode: 'original' } : { mode: 'zoom', value: scale },
    background: 'white',
    font: { loadSystemFonts: true, fontFiles: FONT_FILES.filter((f) => existsSync(f)), defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  };
}

/** SVG text to PNG bytes, at `scale` (2: twice the SVG's pixel size, for sharp text). */
export function svgToPng(svg: string, scale = 1): Uint8Array {
  return new Resvg(svg, resvgOptions(scale)).render().asPng();
}
