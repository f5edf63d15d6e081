// Correlation metrics against scipy (fixtures from tests/fixtures/make_metric_fixtures.py) and
// hand-worked values, ties and degenerate inputs included.

import { assertClose } from "./_helpers.ts";
import {
  correlationReport,
  fitLogistic4,
  krcc,
  logistic4,
  plcc,
  rankAverage,
  rmse,
  srcc,
} from "../src/metrics/correlation.ts";

interface Case {
  name: string;
  x: number[];
  y: number[];
  srcc: number;
  krcc: number;
  plcc_raw: number;
  rmse_raw: number;
  plcc_fit: number;
  rmse_fit: number;
  sse_fit: number;
}

const fixtures: { cases: Case[] } = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/metric_fixtures.json", import.meta.url)),
);

for (const c of fixtures.cases) {
  Deno.test(`metrics match scipy: ${c.name}`, () => {
    assertClose([srcc(c.x, c.y)], [c.srcc], { rtol: 1e-12, atol: 1e-12, what: "srcc" });
    assertClose([krcc(c.x, c.y)], [c.krcc], { rtol: 1e-12, atol: 1e-12, what: "krcc" });
    assertClose([plcc(c.x, c.y)], [c.plcc_raw], { rtol: 1e-12, atol: 1e-12, what: "plcc" });
    assertClose([rmse(c.x, c.y)], [c.rmse_raw], { rtol: 1e-12, atol: 1e-12, what: "rmse" });
    // The logistic fit is an optimisation: ours must fit at least as well as scipy's curve_fit
    // (to 1e-6 relative), and the metrics after the fit must agree closely.
    const b = fitLogistic4(c.x, c.y);
    const sse = c.x.reduce((s, v, i) => s + (logistic4(b, v) - c.y[i]) ** 2, 0);
    if (sse > c.sse_fit * (1 + 1e-6) + 1e-12) {
      throw new Error(`${c.name}: logistic SSE ${sse} is worse than scipy's ${c.sse_fit}`);
    }
    const r = correlationReport(c.x, c.y);
    assertClose([r.plcc], [c.plcc_fit], { rtol: 1e-5, atol: 1e-6, what: "plcc after fit" });
    assertClose([r.rmse], [c.rmse_fit], { rtol: 1e-5, atol: 1e-6, what: "rmse after fit" });
  });
}

Deno.test("average ranks of ties", () => {
  assertClose(rankAverage([10, 20, 20, 5]), [2, 3.5, 3.5, 1], { rtol: 0, atol: 0 });
  assertClose(rankAverage([3, 3, 3]), [2, 2, 2], { rtol: 0, atol: 0 });
});

Deno.test("hand-worked SRCC and KRCC", () => {
  // Ranks of y: 1 3 2 4; d = 0 -1 1 0; rho = 1 - 6*2/(4*15) = 0.8.
  assertClose([srcc([1, 2, 3, 4], [10, 30, 20, 40])], [0.8], { rtol: 1e-12, atol: 1e-12 });
  // 6 pairs: 5 concordant, 1 discordant: tau = 4/6.
  assertClose([krcc([1, 2, 3, 4], [10, 30, 20, 40])], [4 / 6], { rtol: 1e-12, atol: 1e-12 });
  // tau-b with a tie in x: x = 1 1 2, y = 1 2 3: pair (0,1) tied in x only, (0,2) and (1,2)
  // concordant: tau-b = 2 / sqrt((2 + 0) * (2 + 1)) = 0.8165.
  assertClose([krcc([1, 1, 2], [1, 2, 3])], [2 / Math.sqrt(6)], { rtol: 1e-12, atol: 1e-12 });
});

Deno.test("constant inputs give NaN, not a crash", () => {
  for (const f of [srcc, krcc, plcc]) {
    if (!Number.isNaN(f([1, 1, 1], [1, 2, 3]))) {
      throw new Error(`${f.name} of a constant is not NaN`);
    }
    if (!Number.isNaN(f([1, 2, 3], [4, 4, 4]))) {
      throw new Error(`${f.name} of a constant is not NaN`);
    }
  }
  if (rmse([1, 1], [1, 1]) !== 0) throw new Error("rmse of equal arrays");
});

Deno.test("bad inputs get errors naming the problem", () => {
  const cases: [() => unknown, string][] = [
    [() => srcc([1, 2], [1, 2, 3]), "differ in length"],
    [() => plcc([1], [1]), "at least 2"],
    [() => krcc([1, NaN], [1, 2]), "element 1 is not finite"],
  ];
  for (const [fn, text] of cases) {
    let message = "";
    try {
      fn();
    } catch (e) {
      message = (e as Error).message;
    }
    if (!message.includes(text)) throw new Error(`expected "${text}", got "${message}"`);
  }
});
