/**
 * `hgq report`: one self-contained HTML page for a run folder, drawn by Plotly (inlined, so the page works
 * offline): the Pareto front against EBOPs (and Yosys LUTs where synthesized), training curves, and for one
 * checkpoint per-layer bit-width heat maps, EBOPs, estimated LUTs and pruning. docs/report.md.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/fs.ts';
import { checkpointDetail, chooseCheckpoint, quality, readRun, type CheckpointDetail, type RunData } from './report-data.ts';

export { RunFolderError } from './report-data.ts';

export interface ReportOptions {
  /** output file (default RUN_DIR/report.html) */
  out?: string;
  /** checkpoint to detail: its path as in front.json, its folder, or its epoch (default: the best by metric) */
  checkpoint?: string;
  /** per-layer LUT estimates from a CSD trace of the checkpoint (default true) */
  estimateLuts?: boolean;
}

/** Plotly figures: data + layout, as Plotly.newPlot takes them. */
export interface Figure {
  id: string;
  title: string;
  data: Record<string, unknown>[];
  layout: Record<string, unknown>;
  /** shown under the plot */
  note?: string;
}

/** Writes the report; returns its path. */
export async function writeReport(runDir: string, opts: ReportOptions = {}): Promise<string> {
  const run = readRun(runDir);
  const chosen = chooseCheckpoint(run, opts.checkpoint);
  const detail = await checkpointDetail(chosen, { estimateLuts: opts.estimateLuts });
  const out = opts.out ?? join(run.dir, 'report.html');
  writeFileAtomic(out, renderReport(run, detail));
  return out;
}

/** The start of every page renderReport writes (the title follows): how a report hgq wrote is recognized. */
const PAGE_HEAD = '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>hgq report: ';

/** Whether `path` is a report page hgq wrote (so `hgq report -o` may replace it; any other file it keeps). */
export function isReportFile(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const head = Buffer.alloc(PAGE_HEAD.length);
    const n = readSync(fd, head, 0, head.length, 0);
    return head.subarray(0, n).toString('utf8') === PAGE_HEAD;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The whole page. Pure: the same run and detail give the same bytes. */
export function renderReport(run: RunData, detail: CheckpointDetail): string {
  const figures = reportFigures(run, detail);
  const payload = JSON.stringify(figures).replace(/</g, '\\u003c');
  const title = `hgq report: ${run.name}`;
  return `${PAGE_HEAD}${escapeHtml(run.name)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
.plot{width:100%;height:420px} .heat{height:360px} .note{color:#555;font-size:.9em;margin:.2em 0 1em}
.partial{background:#fff3cd;border:1px solid #e0c36a;padding:.6em 1em} table{border-collapse:collapse;font-size:.9em}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right} th{background:#f5f5f5} td:first-child,th:first-child{text-align:left}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}
</style>
<script>${plotlyScript()}</script>
</head><body>
<h1>${escapeHtml(title)}</h1>
${run.complete ? '' : '<p class="partial"><b>Partial run</b>: training has not finished (or was stopped). The front shows the checkpoints kept so far with their training-time EBOPs; they are not calibrated yet.</p>'}
${summaryHtml(run, detail)}
<div id="figures"></div>
<script>
const figures = ${payload};
const root = document.getElementById('figures');
const sections = {};
for (const f of figures) {
  const section = f.id.split('-')[0];
  if (!sections[section]) {
    const h = document.createElement('h2');
    h.textContent = {front: 'Pareto front', curves: 'Training curves', layers: 'Layers of the chosen checkpoint', bits: 'Bit widths of the chosen checkpoint'}[section] || section;
    root.appendChild(h);
    sections[section] = document.createElement('div');
    if (section === 'bits') sections[section].className = 'grid';
    root.appendChild(sections[section]);
  }
  const box = document.createElement('div');
  const div = document.createElement('div');
  div.id = f.id;
  div.className = section === 'bits' ? 'plot heat' : 'plot';
  box.appendChild(div);
  if (f.note) { const p = document.createElement('p'); p.className = 'note'; p.textContent = f.note; box.appendChild(p); }
  sections[section].appendChild(box);
  Plotly.newPlot(div, f.data, Object.assign({title: {text: f.title}, margin: {t: 48}}, f.layout), {responsive: true, displaylogo: false});
}
</script>
</body></html>
`;
}

let plotlyCache: string | undefined;
function plotlyScript(): string {
  if (plotlyCache === undefined) {
    const path = createRequire(import.meta.url).resolve('plotly.js-cartesian-dist-min');
    // the bundle never contains "</script"; guard anyway, since it is inlined into a <script> element
    plotlyCache = readFileSync(path, 'utf8').replace(/<\/script/gi, '<\\/script');
  }
  return plotlyCache;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function fmt(v: number | undefined, digits = 4): string {
  return v === undefined ? '—' : Number.isInteger(v) ? v.toLocaleString('en-US') : v.toPrecision(digits);
}

function summaryHtml(run: RunData, d: CheckpointDetail): string {
  const c = d.checkpoint;
  const weights = d.layers.reduce((s, l) => s + l.weightCount, 0);
  const pruned = d.layers.reduce((s, l) => s + l.prunedWeights, 0);
  const rows = d.layers
    .map(
      (l) =>
        `<tr><td>${escapeHtml(l.name)}</td><td>${escapeHtml(l.className)}</td><td>${fmt(Math.round(l.ebops))}</td><td>${fmt(l.estimatedLut)}</td><td>${l.weightCount ? fmt(l.weightCount) : '—'}</td><td>${l.weightCount ? ((100 * l.prunedWeights) / l.weightCount).toFixed(1) + ' %' : '—'}</td></tr>`,
    )
    .join('\n');
  return `<p>${run.checkpoints.length} checkpoint(s) on the front, task ${escapeHtml(run.task)}, quality metric <b>${escapeHtml(run.metric)}</b> (${run.higherIsBetter ? 'higher' : 'lower'} is better), ${run.history.length} epoch(s) of history.</p>
<p>Chosen checkpoint: <code>${escapeHtml(c.path)}</code> (epoch ${c.epoch}), ${escapeHtml(run.metric)} ${fmt(quality(run, c))}, EBOPs ${fmt(Math.round(c.ebops))}${c.yosys_lut !== undefined ? `, ${fmt(c.yosys_lut)} Yosys LUTs` : ''}; ${weights ? `${((100 * pruned) / weights).toFixed(1)} % of ${fmt(weights)} weights pruned (0 bits)` : 'no weights'}.</p>
<table><tr><th>layer</th><th>class</th><th>EBOPs</th><th>est. LUTs</th><th>weights</th><th>pruned</th></tr>
${rows}
</table>
<p class="note">Estimated LUTs: ${escapeHtml(d.lutMethod)}.</p>`;
}

/** All figures of the page, in order; ids start with their section (front, curves, layers, bits). */
export function reportFigures(run: RunData, d: CheckpointDetail): Figure[] {
  return [...frontFigures(run, d), ...curveFigures(run), ...layerFigures(d), ...bitFigures(d)];
}

function metricLabel(run: RunData, split: 'test' | 'val'): string {
  return `${split === 'test' ? 'test' : 'validation'} ${run.metric}`;
}

function frontFigures(run: RunData, d: CheckpointDetail): Figure[] {
  const hover = (c: RunData['checkpoints'][number]) =>
    `${c.path}<br>epoch ${c.epoch}<br>EBOPs ${Math.round(c.ebops)}<br>${run.metric} ${fmt(quality(run, c))}${c.yosys_lut !== undefined ? `<br>${c.yosys_lut} LUT` : ''}`;
  const splits = (['test', 'val'] as const).filter((s) => run.checkpoints.some((c) => c[s][run.metric] !== undefined));
  const data: Record<string, unknown>[] = splits.map((s) => {
    const cs = run.checkpoints.filter((c) => c[s][run.metric] !== undefined);
    return {
      type: 'scatter',
      mode: 'lines+markers',
      name: metricLabel(run, s),
      x: cs.map((c) => c.ebops),
      y: cs.map((c) => c[s][run.metric]),
      text: cs.map(hover),
      hoverinfo: 'text',
      line: { shape: 'hv', dash: s === 'val' ? 'dot' : 'solid' },
    };
  });
  if (run.sweep) data.push(...trialMarkers(run, hover));
  const chosen = d.checkpoint;
  const yChosen = quality(run, chosen);
  if (yChosen !== undefined)
    data.push({
      type: 'scatter',
      mode: 'markers',
      name: 'chosen checkpoint',
      x: [chosen.ebops],
      y: [yChosen],
      text: [hover(chosen)],
      hoverinfo: 'text',
      marker: { size: 14, symbol: 'circle-open', color: '#d62728', line: { width: 2 } },
    });
  const figs: Figure[] = [
    {
      id: 'front-ebops',
      title: `${run.metric} against EBOPs${run.complete ? '' : ' (partial run: training-time EBOPs)'}`,
      data,
      layout: {
        xaxis: { title: { text: 'EBOPs (log scale)' }, type: 'log' },
        yaxis: { title: { text: run.metric } },
        hovermode: 'closest',
      },
    },
  ];
  const synthesized = run.checkpoints.filter((c) => c.yosys_lut !== undefined && quality(run, c) !== undefined);
  if (synthesized.length > 0)
    figs.push({
      id: 'front-lut',
      title: `${run.metric} against Yosys LUTs`,
      data: [
        {
          type: 'scatter',
          mode: 'lines+markers',
          name: 'synthesized checkpoints',
          x: synthesized.map((c) => c.yosys_lut),
          y: synthesized.map((c) => quality(run, c)),
          text: synthesized.map(hover),
          hoverinfo: 'text',
          line: { shape: 'hv' },
        },
      ],
      layout: {
        xaxis: { title: { text: 'Yosys LUTs (log scale)' }, type: 'log' },
        yaxis: { title: { text: run.metric } },
        hovermode: 'closest',
      },
    });
  return figs;
}

/** Sweeps: one marker trace per trial, so each trial's share of the merged front is visible (and in the legend). */
function trialMarkers(run: RunData, hover: (c: RunData['checkpoints'][number]) => string): Record<string, unknown>[] {
  const trials = [...new Set(run.checkpoints.map((c) => c.trial ?? '?'))].sort();
  return trials.map((t) => {
    const cs = run.checkpoints.filter((c) => (c.trial ?? '?') === t && quality(run, c) !== undefined);
    return {
      type: 'scatter',
      mode: 'markers',
      name: `trial ${t}`,
      legendgroup: 'trials',
      x: cs.map((c) => c.ebops),
      y: cs.map((c) => quality(run, c)),
      text: cs.map((c) => `trial ${t}<br>${hover(c)}`),
      hoverinfo: 'text',
      marker: { size: 9 },
    };
  });
}

function curveFigures(run: RunData): Figure[] {
  const h = run.history;
  if (h.length === 0) return [];
  const epochs = h.map((r) => r.epoch);
  const line = (name: string, y: (number | undefined)[], extra: Record<string, unknown> = {}) => ({
    type: 'scatter',
    mode: 'lines',
    name,
    x: epochs,
    y: y.map((v) => v ?? null),
    ...extra,
  });
  const metricNames = [...new Set(h.flatMap((r) => Object.keys(r.metrics ?? {})))].sort();
  const figs: Figure[] = [
    {
      id: 'curves-loss',
      title: 'Loss per epoch (training loss includes β·EBOPs)',
      data: [
        line(
          'training loss',
          h.map((r) => r.loss),
        ),
        ...(h.some((r) => r.val_loss !== undefined)
          ? [
              line(
                'validation loss',
                h.map((r) => r.val_loss),
                { line: { dash: 'dot' } },
              ),
            ]
          : []),
      ],
      layout: { xaxis: { title: { text: 'epoch' } }, yaxis: { title: { text: 'loss' }, type: 'log' } },
    },
  ];
  if (metricNames.length > 0)
    figs.push({
      id: 'curves-metrics',
      title: 'Metrics per epoch',
      data: metricNames.map((m) =>
        line(
          m,
          h.map((r) => r.metrics?.[m]),
        ),
      ),
      layout: { xaxis: { title: { text: 'epoch' } }, yaxis: { title: { text: 'value' } } },
    });
  figs.push({
    id: 'curves-ebops',
    title: 'EBOPs and β per epoch',
    data: [
      line(
        'EBOPs (training estimate)',
        h.map((r) => r.ebops),
      ),
      line(
        'β',
        h.map((r) => r.beta),
        { yaxis: 'y2', line: { dash: 'dash' } },
      ),
    ],
    layout: {
      xaxis: { title: { text: 'epoch' } },
      yaxis: { title: { text: 'EBOPs (log scale)' }, type: 'log' },
      // β spans decades of small values: powers of ten read better than SI prefixes (n, µ) at odd ticks
      yaxis2: {
        title: { text: 'β (log scale)' },
        type: 'log',
        overlaying: 'y',
        side: 'right',
        exponentformat: 'power',
        dtick: 1,
      },
      legend: { orientation: 'h', x: 0, y: 1.12 },
      margin: { r: 90 },
    },
  });
  return figs;
}

function layerFigures(d: CheckpointDetail): Figure[] {
  const names = d.layers.map((l) => l.name);
  const data: Record<string, unknown>[] = [{ type: 'bar', name: 'EBOPs', x: names, y: d.layers.map((l) => Math.round(l.ebops)) }];
  if (d.layers.some((l) => l.estimatedLut !== undefined))
    data.push({ type: 'bar', name: 'estimated LUTs', x: names, y: d.layers.map((l) => l.estimatedLut ?? null) });
  const withWeights = d.layers.filter((l) => l.weightCount > 0);
  return [
    {
      id: 'layers-cost',
      title: 'Per-layer EBOPs and estimated LUTs',
      data,
      layout: { barmode: 'group', yaxis: { title: { text: 'count' } } },
      note: `Estimated LUTs: ${d.lutMethod}.`,
    },
    {
      id: 'layers-pruned',
      title: 'Fraction of weights pruned (0 bits) per layer',
      data: [
        {
          type: 'bar',
          name: 'pruned',
          x: withWeights.map((l) => l.name),
          y: withWeights.map((l) => l.prunedWeights / l.weightCount),
          text: withWeights.map((l) => `${l.prunedWeights} of ${l.weightCount}`),
        },
      ],
      layout: { yaxis: { title: { text: 'fraction pruned' }, range: [0, 1], tickformat: '.0%' } },
    },
  ];
}

/** Pruned (0-bit) cells get their own colour: the scale runs grey at 0, then viridis from 1 bit up. */
function bitColorscale(maxBits: number): [number, string][] {
  if (maxBits <= 0)
    return [
      [0, '#d9d9d9'],
      [1, '#d9d9d9'],
    ];
  const edge = 0.5 / (maxBits + 0.5);
  const viridis = ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'];
  return [
    [0, '#d9d9d9'],
    [edge, '#d9d9d9'],
    ...viridis.map((c, j): [number, string] => [edge + ((1 - edge) * j) / (viridis.length - 1), c]),
  ];
}

function heatmap(id: string, title: string, m: NonNullable<CheckpointDetail['layers'][number]['weights']>): Figure {
  const z: (number | null)[][] = [];
  for (let r = 0; r < m.rows; r++) z.push(m.bits.slice(r * m.cols, (r + 1) * m.cols).map((b) => (Number.isNaN(b) ? null : b)));
  // a loop, not Math.max(...bits): a spread of a wide layer's bits (~10^5) overflows the call stack
  const max = m.bits.reduce((a, b) => (b > a ? b : a), 0);
  return {
    id,
    title,
    data: [
      {
        type: 'heatmap',
        z,
        zmin: -0.5,
        zmax: max + 0.5,
        colorscale: bitColorscale(max),
        colorbar: { title: { text: 'bits' } },
        hovertemplate: `${m.rowLabel} %{y}, ${m.colLabel} %{x}: %{z} bits<extra></extra>`,
      },
    ],
    layout: { xaxis: { title: { text: m.colLabel } }, yaxis: { title: { text: m.rowLabel }, autorange: 'reversed' } },
    note: 'grey: 0 bits (pruned)',
  };
}

function bitFigures(d: CheckpointDetail): Figure[] {
  const figs: Figure[] = [];
  for (const l of d.layers) {
    if (l.weights) figs.push(heatmap(`bits-${l.name}-weights`, `${l.name}: weight bits`, l.weights));
    if (l.activations) figs.push(heatmap(`bits-${l.name}-activations`, `${l.name}: input activation bits`, l.activations));
  }
  return figs;
}
