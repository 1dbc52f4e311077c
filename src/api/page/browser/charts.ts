// The run's charts: one series a chart, each with its own y axis; x runs
// from the run's start to its end (or now), at the resolution the api chose
// for its length. uPlot is the classic script the page loads before this one
// (/assets/uplot.js): a global here, absent if it failed to load.
import { byId } from './page.js';
import type { Series, SeriesPoint } from './replies.js';

declare global {
  interface Window {
    /** The charts, for the page's tests to read what they draw. */
    __charts?: Record<string, uPlot>;
  }
}

const charts: Record<string, uPlot> = {};
const CHARTS: [id: string, title: string, label: string, stroke: string, pick: (p: SeriesPoint) => number | null][] = [
  ['chart-rate', 'orgs finished per second', 'orgs/s', '#4a8af4', (p) => p.orgs_per_s],
  ['chart-dark', 'orgs dark at once (most in each interval)', 'orgs dark', '#d33', (p) => p.dark_max],
  ['chart-p99', 'dark time p99 so far (s)', 'p99 (s)', '#8a4af4', (p) => (p.dark_p99_ms === null ? null : p.dark_p99_ms / 1000)],
];
const chartWidth = (box: HTMLElement) => Math.max(240, Math.min(box.clientWidth || 480, 1200));

export function drawSeries(series: Series) {
  if (typeof uPlot === 'undefined') return;
  for (const [id, title, label, stroke] of CHARTS)
    if (!charts[id]) {
      const box = byId(id);
      charts[id] = new uPlot(
        {
          title,
          width: chartWidth(box),
          height: 160,
          scales: { x: { time: true } },
          series: [{}, { label, stroke, width: 2, points: { show: true, size: 4 } }],
        },
        [[], []],
        box,
      );
    }
  window.__charts = charts;
  const pts = series.points || [];
  const xs = pts.map((p) => Date.parse(p.at) / 1000);
  for (const [id, , , , pick] of CHARTS) charts[id].setData([xs, pts.map(pick)]);
  byId('resolution').textContent = series.run_id
    ? 'one point every ' + (series.bucket_s < 60 ? `${series.bucket_s} s` : `${Math.round(series.bucket_s / 60)} min`)
    : '';
  if (!series.started_at) return;
  // A point stands for its bucket, which may start before the run did: the axis takes in the first bucket and the last.
  const min = Math.min(Date.parse(series.started_at) / 1000, xs.length ? xs[0] : Infinity);
  const max = Math.max(
    min + 10,
    (series.finished_at ? Date.parse(series.finished_at) : Date.now()) / 1000,
    xs.length ? xs[xs.length - 1] + series.bucket_s : 0,
  );
  for (const [id] of CHARTS) charts[id].setScale('x', { min, max });
}

window.addEventListener('resize', () => {
  for (const [id] of CHARTS) if (charts[id]) charts[id].setSize({ width: chartWidth(byId(id)), height: 160 });
});
