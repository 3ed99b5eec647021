// Inline SVG charts drawn from the API's figures: horizontal bars, one row per label. No library.
const SVG = 'http://www.w3.org/2000/svg';

function node(tag, attrs = {}, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

/**
 * A horizontal bar chart. `rows`: [{label, value, text?}] (text: the value as shown, default the
 * number); `title`: what the chart shows (its accessible name). Returns an <svg role="img">, or a
 * paragraph when there is nothing to draw.
 */
export function barChart(rows, { title, max, alt = false } = {}) {
  if (!rows.length) {
    const p = document.createElement('p');
    p.className = 'muted';
    p.textContent = 'No data.';
    return p;
  }
  const labelW = 120;
  const valueW = 130;
  const barW = 200;
  const rowH = 26;
  const width = labelW + barW + valueW;
  const height = rows.length * rowH + 6;
  const top = max ?? Math.max(...rows.map((r) => r.value || 0), 1);
  const svg = node('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title || 'chart' });
  svg.append(node('title', {}, title || 'chart'));
  svg.append(node('desc', {}, rows.map((r) => `${r.label}: ${r.text ?? r.value}`).join('; ')));
  rows.forEach((r, i) => {
    const y = i * rowH + 4;
    const w = Math.max(0, ((r.value || 0) / top) * barW);
    const label = r.label.length > 16 ? r.label.slice(0, 15) + '…' : r.label;
    svg.append(node('text', { x: labelW - 8, y: y + 14, 'text-anchor': 'end' }, label));
    svg.append(node('rect', { class: alt ? 'bar alt' : 'bar', x: labelW, y, width: w.toFixed(1), height: rowH - 8, rx: 3 }));
    svg.append(node('text', { class: 'value', x: labelW + w + 6, y: y + 14 }, r.text ?? String(r.value)));
  });
  svg.append(node('line', { class: 'axis', x1: labelW, y1: 0, x2: labelW, y2: height }));
  return svg;
}
