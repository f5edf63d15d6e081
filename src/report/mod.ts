/**
 * The self-contained HTML reports, rendered from data the layers below made: report.html of
 * one attacked video (`attackReportHtml`, from its report.json and frame panels) and of an eval
 * run (`evalReportHtml`, from its table). Nothing here computes on the GPU or writes files.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { evalReportHtml } from "./mod.ts";
 * const html = evalReportHtml([], { title: "No rows yet" });
 * assert.ok(html.startsWith("<!doctype html>"));
 * assert.ok(html.includes("No rows yet"));
 * ```
 * @module
 */

export { attackReportFiles, attackReportHtml, framePanelsHtml } from "./attack_html.ts";
export { evalReportHtml, type EvalReportOptions } from "./eval_html.ts";
