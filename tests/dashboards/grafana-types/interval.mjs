// Grafana's own frontend interval calculation (rangeUtil.calculateInterval of the pinned
// @grafana/data), for tests/dashboards/test_dashboards_grafana_step.py.
// stdin: JSON [[rangeMs, maxDataPoints, lowLimitInterval], ...]
// stdout: JSON [{intervalMs, interval}, ...]
import { register } from 'node:module';
import { readFileSync } from 'node:fs';

register('./lodash-shim.mjs', import.meta.url);
const modules = process.env.PANTAU_NODE_MODULES;
const datetime = `${modules}/@grafana/data/dist/esm/datetime`;
const { calculateInterval } = await import(`${datetime}/rangeutil.js`);
const { dateTime } = await import(`${datetime}/moment_wrapper.js`);

const cases = JSON.parse(readFileSync(0, 'utf8'));
const to = dateTime(Date.UTC(2026, 0, 1));
const out = cases.map(([rangeMs, maxDataPoints, lowLimit]) => {
  const from = dateTime(to.valueOf() - rangeMs);
  return calculateInterval({ from, to, raw: { from, to } }, maxDataPoints, lowLimit);
});
process.stdout.write(JSON.stringify(out));
