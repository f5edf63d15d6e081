/**
 * Building blocks of the self-contained HTML reports: escaping, the page shell (inline CSS, no
 * external resources), tables, and inline SVG charts (a line chart of per-frame series and a
 * grouped bar chart). Everything returns strings; nothing here touches files.
 *
 * @module
 */

/**
 * Escapes text for HTML content and attribute values.
 *
 * @example
 * ```ts
 * import { escapeHtml } from "./html.ts";
 * escapeHtml(`<a href="x">&</a>`); // "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
 * ```
 */
export function escapeHtml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&#39;");
}

/** Colours of chart series, in order (colour-blind-safe Okabe-Ito palette). */
export const SERIES_COLOURS = [
  "#0072b2",
  "#d55e00",
  "#009e73",
  "#cc79a7",
  "#e69f00",
  "#56b4e9",
  "#000000",
  "#f0e442",
] as const;

const CSS = `
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1280px;padding:0 16px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto;max-width:100%}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}td.l{white-space:nowrap}
.panels{display:grid;gap:6px;align-items:start}
figure{margin:0}figcaption{font-size:12px;color:#555}
img.frame{image-rendering:pixelated;width:100%;height:auto;border:1px solid #ccc}
.charts{display:flex;flex-wrap:wrap;gap:18px}
.note{color:#555;font-size:13px}
svg text{font:11px system-ui,sans-serif}
`;

/**
 * A whole HTML page: `<!doctype html>`, a title, inline CSS, `body` as given, and a tiny inline
 * script that decodes every image into a canvas on load, storing the sum of its RGB bytes on the
 * image (`data-sum`) and on `<body data-images>` how many decoded (`"ok/total"`), so a headless
 * browser can check them.
 *
 * @example
 * ```ts
 * import { htmlPage } from "./html.ts";
 * const html = htmlPage("Attack report", "<h1>Attack report</h1>");
 * ```
 */
export function htmlPage(title: string, body: string): string {
  // On load: each image is drawn to a canvas and the sum of its RGB bytes stored in
  // data-sum ("error" when it cannot be decoded); <body data-images> counts the decoded ones.
  const script = `addEventListener("load",()=>{const i=[...document.images];let ok=0;` +
    `for(const x of i){try{const c=document.createElement("canvas");c.width=x.naturalWidth;` +
    `c.height=x.naturalHeight;const g=c.getContext("2d");g.drawImage(x,0,0);` +
    `const d=g.getImageData(0,0,c.width,c.height).data;let s=0;` +
    `for(let k=0;k<d.length;k++)if((k&3)!==3)s+=d[k];x.dataset.sum=s;` +
    `if(x.complete&&x.naturalWidth>0)ok++}catch(e){x.dataset.sum="error"}}` +
    `document.body.dataset.images=ok+"/"+i.length})`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title><style>${CSS}</style></head>
<body>
${body}
<script>${script}</script>
</body></html>
`;
}

/** A table cell: text (escaped), or a number shown with `digits` decimals (`-` for null). */
export type Cell = string | number | null;

/**
 * An HTML table; the first column left-aligned, numbers right-aligned.
 *
 * @example
 * ```ts
 * import { htmlTable } from "./html.ts";
 * htmlTable(["method", "SRCC"], [["fgsm", 0.41]], { id: "table", digits: 3 });
 * ```
 */
export function htmlTable(
  head: readonly string[],
  rows: readonly (readonly Cell[])[],
  options: { id?: string; digits?: number | readonly number[] } = {},
): string {
  const digitsOf = (k: number) =>
    typeof options.digits === "number" ? options.digits : options.digits?.[k] ?? 3;
  const cell = (v: Cell, k: number) => {
    const text = v === null ? "-" : typeof v === "number" ? v.toFixed(digitsOf(k)) : v;
    return `<td${typeof v === "string" ? ' class="l"' : ""}>${escapeHtml(text)}</td>`;
  };
  const id = options.id ? ` id="${escapeHtml(options.id)}"` : "";
  const left = (k: number) => k === 0 || typeof rows[0]?.[k] === "string";
  return `<div class="scroll"><table${id}><thead><tr>${
    head.map((h, k) => `<th${left(k) ? ' class="l"' : ""}>${escapeHtml(h)}</th>`).join("")
  }</tr></thead><tbody>${
    rows.map((r) => `<tr>${r.map(cell).join("")}</tr>`).join("")
  }</tbody></table></div>`;
}

function niceRange(lo: number, hi: number): [number, number] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (hi - lo < 1e-9) return [lo - 0.5, hi + 0.5];
  const pad = 0.05 * (hi - lo);
  return [lo - pad, hi + pad];
}

function ticks(lo: number, hi: number, n = 5): number[] {
  const step0 = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? step0;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) {
    out.push(Math.abs(v) < 1e-12 ? 0 : v);
  }
  return out;
}

const fmtTick = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : String(+v.toFixed(3)));

/** The opening of a chart: the svg element, its title, and the horizontal grid with y ticks. */
function chartStart(
  o: { id?: string; title?: string },
  size: { W: number; H: number; left: number; right: number },
  range: { lo: number; hi: number; y: (v: number) => number },
): string[] {
  const { W, H, left, right } = size;
  const id = o.id ? ` id="${escapeHtml(o.id)}"` : "";
  const parts = [
    `<svg${id} xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img">`,
  ];
  if (o.title) {
    parts.push(`<text x="${left}" y="14" font-weight="bold">${escapeHtml(o.title)}</text>`);
  }
  for (const v of ticks(range.lo, range.hi)) {
    const yv = range.y(v);
    parts.push(
      `<line x1="${left}" x2="${W - right}" y1="${yv}" y2="${yv}" stroke="#eee"/>`,
      `<text x="${left - 5}" y="${yv + 4}" text-anchor="end">${fmtTick(v)}</text>`,
    );
  }
  return parts;
}

/** A named series of a line chart. */
export interface LineSeries {
  name: string;
  values: readonly number[];
  /** Dashed line (e.g. for a constant reference). */
  dashed?: boolean;
}

/**
 * An inline SVG line chart of series over their index (frames), with axes, ticks and a legend.
 *
 * @example
 * ```ts
 * import { svgLineChart } from "./html.ts";
 * const svg = svgLineChart([{ name: "clean", values: [3.1, 3.2, 3.0] }], {
 *   title: "per-frame score",
 *   xLabel: "frame",
 * });
 * ```
 */
export function svgLineChart(
  series: readonly LineSeries[],
  options: {
    title?: string;
    xLabel?: string;
    yLabel?: string;
    width?: number;
    height?: number;
    id?: string;
  } = {},
): string {
  const W = options.width ?? 560, H = options.height ?? 260;
  const m = { l: 52, r: 12, t: 26, b: 40 };
  const all = series.flatMap((s) => s.values).filter(Number.isFinite);
  const [lo, hi] = niceRange(Math.min(...all), Math.max(...all));
  const n = Math.max(1, ...series.map((s) => s.values.length));
  const x = (i: number) => m.l + (n === 1 ? 0.5 : i / (n - 1)) * (W - m.l - m.r);
  const y = (v: number) => H - m.b - ((v - lo) / (hi - lo)) * (H - m.t - m.b);
  const parts = chartStart(options, { W, H, left: m.l, right: m.r }, { lo, hi, y });
  for (const i of ticks(0, n - 1, Math.min(8, n - 1 || 1))) {
    if (!Number.isInteger(i)) continue;
    parts.push(`<text x="${x(i)}" y="${H - m.b + 15}" text-anchor="middle">${i}</text>`);
  }
  parts.push(
    `<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#444"/>`,
    `<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#444"/>`,
  );
  if (options.xLabel) {
    parts.push(
      `<text x="${(m.l + W - m.r) / 2}" y="${H - 6}" text-anchor="middle">${
        escapeHtml(options.xLabel)
      }</text>`,
    );
  }
  if (options.yLabel) {
    parts.push(
      `<text transform="translate(12 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${
        escapeHtml(options.yLabel)
      }</text>`,
    );
  }
  series.forEach((s, k) => {
    const colour = SERIES_COLOURS[k % SERIES_COLOURS.length];
    const pts = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    const dash = s.dashed ? ' stroke-dasharray="5 4"' : "";
    parts.push(
      `<polyline class="series" data-name="${
        escapeHtml(s.name)
      }" fill="none" stroke="${colour}" stroke-width="2"${dash} points="${pts}"/>`,
    );
    if (s.values.length === 1) {
      parts.push(`<circle cx="${x(0)}" cy="${y(s.values[0])}" r="3" fill="${colour}"/>`);
    }
    const lx = m.l + 8 + k * 130;
    parts.push(
      `<rect x="${lx}" y="${m.t - 2}" width="12" height="3" fill="${colour}"/>`,
      `<text x="${lx + 16}" y="${m.t + 3}">${escapeHtml(s.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("");
}

/** A group of bars (e.g. one victim), one bar per series (e.g. method); null draws no bar. */
export interface BarGroup {
  label: string;
  values: readonly (number | null)[];
}

/**
 * An inline SVG grouped bar chart, with a zero line (bars may be negative), value labels and a
 * legend of the series.
 *
 * @example
 * ```ts
 * import { svgBarChart } from "./html.ts";
 * const svg = svgBarChart(["random", "fgsm"], [{ label: "vsfa-mini", values: [0.55, -0.24] }], {
 *   title: "SRCC after attack",
 * });
 * ```
 */
export function svgBarChart(
  series: readonly string[],
  groups: readonly BarGroup[],
  options: { title?: string; width?: number; height?: number; digits?: number; id?: string } = {},
): string {
  const W = options.width ?? 560, H = options.height ?? 260;
  // The legend: as many 120-pixel items per row as fit, rows 14 pixels apart.
  const perRow = Math.max(1, Math.floor((W - 58) / 120));
  const legendRows = Math.ceil(series.length / perRow);
  const m = { l: 48, r: 10, t: 26 + 14 * legendRows, b: 28 };
  const vals = groups.flatMap((g) => g.values).filter((v): v is number => v !== null);
  const [lo, hi] = niceRange(Math.min(0, ...vals), Math.max(0, ...vals));
  const y = (v: number) => H - m.b - ((v - lo) / (hi - lo)) * (H - m.t - m.b);
  const gw = (W - m.l - m.r) / Math.max(1, groups.length);
  const bw = (gw * 0.8) / Math.max(1, series.length);
  const digits = options.digits ?? 2;
  const parts = chartStart(options, { W, H, left: m.l, right: m.r }, { lo, hi, y });
  groups.forEach((g, gi) => {
    const x0 = m.l + gi * gw + gw * 0.1;
    g.values.forEach((v, si) => {
      if (v === null || !Number.isFinite(v)) return;
      const colour = SERIES_COLOURS[si % SERIES_COLOURS.length];
      const top = y(Math.max(0, v)), bottom = y(Math.min(0, v));
      const bx = x0 + si * bw;
      parts.push(
        `<rect class="bar" data-series="${escapeHtml(series[si] ?? "")}" data-value="${v}" x="${
          bx.toFixed(1)
        }" y="${top.toFixed(1)}" width="${(bw * 0.92).toFixed(1)}" height="${
          Math.max(0.5, bottom - top).toFixed(1)
        }" fill="${colour}"><title>${
          escapeHtml(`${g.label} ${series[si]}: ${v.toFixed(digits)}`)
        }</title></rect>`,
      );
      if (bw >= 22) {
        parts.push(
          `<text x="${(bx + bw * 0.46).toFixed(1)}" y="${
            (v >= 0 ? top - 3 : bottom + 11).toFixed(1)
          }" text-anchor="middle" font-size="9">${v.toFixed(digits)}</text>`,
        );
      }
    });
    parts.push(
      `<text x="${(m.l + (gi + 0.5) * gw).toFixed(1)}" y="${H - 8}" text-anchor="middle">${
        escapeHtml(g.label)
      }</text>`,
    );
  });
  parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(0)}" y2="${y(0)}" stroke="#444"/>`);
  series.forEach((s, k) => {
    const lx = m.l + (k % perRow) * 120, ly = 22 + 14 * Math.floor(k / perRow);
    parts.push(
      `<rect x="${lx}" y="${ly}" width="10" height="10" fill="${
        SERIES_COLOURS[k % SERIES_COLOURS.length]
      }"/>`,
      `<text x="${lx + 13}" y="${ly + 9}">${escapeHtml(s)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("");
}
