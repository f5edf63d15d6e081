/**
 * Robustness evaluation (`deno task eval`): every method against every victim on each video
 * (`evaluateVideo`), one row per (video, victim, method) with the attack-strength measures
 * (Zhang et al.'s R, the MSU robustness score), the table per (victim, method) aggregated from
 * rows with its CSV and Markdown forms, the x264 round trip of an upload, and the cross-victim
 * (transfer) table.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { tableMarkdown, zhangR } from "./mod.ts";
 * // A score moved from 0.8 to 0.2 on [0, 1], median 0.5: the target is 0, and
 * // R = ln(|0.8 - 0| / |0.2 - 0.8|) = ln(0.8 / 0.6).
 * assert.equal(zhangR(0.8, 0.2, { qMin: 0, qMax: 1, median: 0.5 }).toFixed(3), "0.288");
 * assert.ok(tableMarkdown([]).startsWith("| victim | method |")); // the header of an empty table
 * ```
 * @module
 */

export {
  type Accuracy,
  buildTable,
  crossSource,
  EVAL_METHODS,
  type EvalMethod,
  type EvalRow,
  EvalRowSchema,
  type EvalRowSettings,
  EvalRowSettingsSchema,
  flattenRow,
  labelMedian,
  type ModelDigest,
  msuRobustness,
  rowKey,
  type ScoreRange,
  TABLE_COLUMNS,
  tableCsv,
  tableMarkdown,
  type TableRow,
  zhangR,
} from "./robustness.ts";
export {
  evaluateVideo,
  type EvaluateVideoOptions,
  type EvalVideo,
  quantizeLevels,
} from "./evaluate.ts";
export {
  compareLuma,
  parsePsnrStats,
  parseSsimYStats,
  ROUND_TRIP_CRF,
  roundTrip,
  type RoundTripResult,
  scoreVideoFile,
  writeReference,
} from "./roundtrip.ts";
export { attackWindows, evalWindow, victimBytesPerFrame, windowBytesPerFrame } from "./windows.ts";
export {
  evalMarkdown,
  readRowFiles,
  readRows,
  removeEvalOutputs,
  rowsFileName,
  writeTables,
} from "./rows.ts";
export { type EvalExample, EvalExampleSchema, readExamples, writeExample } from "./examples.ts";
export {
  type CrossCell,
  type CrossTable,
  crossVictimMarkdown,
  crossVictimTable,
  UPLOAD_COLUMNS,
  uploadMarkdown,
  type UploadRow,
  uploadRows,
} from "./transfer.ts";
export { resolveEvalVideos } from "./videos.ts";
