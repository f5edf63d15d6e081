/**
 * Private zod helpers: one way of turning validation issues into text (`path.to.field: message`
 * for each issue), and schemas for numbers given as command-line strings that reject anything
 * that is not one, naming the value.
 *
 * @module
 */

import { z } from "zod";

/**
 * A validator of untrusted values: the type of the zod schemas this package exports for its
 * files (report.json, manifests, model configs), so that their public type names no zod
 * internals. `parse` throws on a bad value; `safeParse` returns the issues.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { AttackRunSchema } from "../mod.ts";
 * const r = AttackRunSchema.safeParse({ mode: "sideways" });
 * assert.equal(r.success, false);
 * if (!r.success) assert.deepEqual(r.error.issues[0].path, ["mode"]);
 * ```
 */
export interface Schema<T> {
  /** `value` checked and typed; throws an error that lists every issue otherwise. */
  parse(value: unknown): T;
  /** `value` checked: `{ success: true, data }`, or `{ success: false, error }`. */
  safeParse(value: unknown): SchemaResult<T>;
}

/**
 * `true` when `A` and `B` are assignable to each other, else `false`: the check that a documented
 * interface and the output of the zod object behind its {@link Schema} describe the same record
 * (typing the schema `Schema<Interface>` checks one direction only: a field optional in the
 * interface but required by the schema, or missing from the interface, would pass).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { z } from "zod";
 * import type { SameShape, Schema } from "./_zod.ts";
 * interface Point {
 *   x: number;
 *   label?: string;
 * }
 * const point = z.object({ x: z.number(), label: z.string().optional() }).strict();
 * const PointSchema: Schema<Point> = point;
 * const same: SameShape<Point, z.output<typeof point>> = true; // `false` would not compile
 * assert.equal(PointSchema.safeParse({ x: 1, label: 2 }).success, false);
 * ```
 */
export type SameShape<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/** What {@link Schema.safeParse} returns. */
export type SchemaResult<T> =
  | { success: true; data: T; error?: undefined }
  | { success: false; data?: undefined; error: SchemaError };

/** Why a value failed a {@link Schema}: its issues (`message` lists them). */
export interface SchemaError extends Error {
  /** One entry per problem found. */
  issues: SchemaIssue[];
}

/** One problem of a value that failed a {@link Schema}. */
export interface SchemaIssue {
  /** The kind of problem, e.g. `invalid_type`. */
  code: string;
  /** Where in the value: the keys and indices from its root (empty for the value itself). */
  path: (string | number)[];
  /** The problem in words. */
  message: string;
}

/** Options of {@link formatZodError} and {@link formatZodIssue}. */
export interface FormatZodOptions {
  /**
   * What to call the value itself, for issues with an empty path (e.g. "options"). Default:
   * nothing, the message stands alone.
   */
  root?: string;
  /** Put before every field path, e.g. "--" for command-line options. Default "". */
  prefix?: string;
  /** Between issues. Default "; ". */
  separator?: string;
}

/**
 * The message of one issue (a zod issue, or a {@link SchemaIssue}). A wrong type reads
 * `expected number, got string` (zod's default wording is rewritten; custom messages are kept).
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { zodIssueMessage } from "./_zod.ts";
 * const r = z.object({ n: z.number() }).safeParse({ n: "x" });
 * if (!r.success) zodIssueMessage(r.error.issues[0]); // "expected number, got string"
 * ```
 */
export function zodIssueMessage(issue: SchemaIssue): string {
  // zod's invalid_type issues carry `expected` and `received` beyond what SchemaIssue names.
  const { expected, received } = issue as { expected?: unknown; received?: unknown };
  if (
    issue.code === z.ZodIssueCode.invalid_type && received !== "undefined" &&
    issue.message === `Expected ${expected}, received ${received}`
  ) {
    return `expected ${expected}, got ${received}`;
  }
  return issue.message;
}

/**
 * One issue as `path.to.field: message` (the message alone, or `root: message`, when the issue
 * is about the whole value).
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { formatZodIssue } from "./_zod.ts";
 * const r = z.object({ a: z.object({ b: z.number().int() }) }).safeParse({ a: { b: 1.5 } });
 * if (!r.success) formatZodIssue(r.error.issues[0]); // "a.b: expected integer, got float"
 * ```
 */
export function formatZodIssue(issue: SchemaIssue, options: FormatZodOptions = {}): string {
  const where = issue.path.length ? `${options.prefix ?? ""}${issue.path.join(".")}` : options.root;
  const message = zodIssueMessage(issue);
  return where ? `${where}: ${message}` : message;
}

/**
 * Every issue of a zod error (or of a {@link SchemaError}, which is one) as
 * `path.to.field: message`, joined by "; " (or `separator`).
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { formatZodError } from "./_zod.ts";
 * const r = z.object({ n: z.number(), s: z.string() }).safeParse({ n: "x" });
 * if (!r.success) formatZodError(r.error); // "n: expected number, got string; s: Required"
 * if (!r.success) formatZodError(r.error, { prefix: "--", separator: "\n" });
 * ```
 */
export function formatZodError(
  error: { readonly issues: readonly SchemaIssue[] },
  options: FormatZodOptions = {},
): string {
  return error.issues.map((i) => formatZodIssue(i, options)).join(options.separator ?? "; ");
}

const INTEGER = /^[+-]?\d+$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * A command-line value that must be a whole number (optionally signed decimal digits, nothing
 * else), as a number. Anything else is an issue `must be a whole number, got "1.5"`; chain
 * `.pipe(z.number()...)` for the range.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { formatZodError, integerArg } from "./_zod.ts";
 * const Args = z.object({ frames: integerArg().pipe(z.number().positive()).optional() });
 * const r = Args.safeParse({ frames: "abc" });
 * if (!r.success) formatZodError(r.error, { prefix: "--" }); // '--frames: must be a whole number, got "abc"'
 * ```
 */
export function integerArg(): z.ZodEffects<z.ZodString, number, string> {
  return z.string().transform((s, ctx) => {
    if (!INTEGER.test(s)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `must be a whole number, got ${JSON.stringify(s)}`,
      });
      return z.NEVER;
    }
    return Number(s);
  });
}

/**
 * A command-line value that must be a finite decimal number (`12`, `-0.5`, `1e3`), as a number.
 * Anything else (empty, `abc`, `0x10`, `Infinity`) is an issue `must be a number, got "abc"`.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { numberArg } from "./_zod.ts";
 * z.object({ gain: numberArg().pipe(z.number().positive()) }).parse({ gain: "2.5" }); // { gain: 2.5 }
 * ```
 */
export function numberArg(): z.ZodEffects<z.ZodString, number, string> {
  return z.string().transform((s, ctx) => {
    if (!NUMBER.test(s) || !Number.isFinite(Number(s))) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `must be a number, got ${JSON.stringify(s)}`,
      });
      return z.NEVER;
    }
    return Number(s);
  });
}
