/**
 * A small RFC 4180 CSV parser: quoted fields (with `""` for a quote, and commas and line breaks
 * inside quotes), CRLF or LF line ends, a UTF-8 byte-order mark, and the row number of every
 * record (the header is row 1) for error messages.
 *
 * @module
 */

/**
 * One parsed record: its fields and the line (1-based) where it starts.
 *
 * @example
 * ```ts
 * import { type CsvRecord, parseCsv } from "./csv.ts";
 * const rows: CsvRecord[] = parseCsv("a,b\n1,2\n");
 * rows[1].line; // 2
 * ```
 */
export interface CsvRecord {
  /** The fields, unquoted. */
  fields: string[];
  /** The line where the record starts (1-based; a quoted line break makes records span lines). */
  line: number;
}

/**
 * A CSV syntax error with its line.
 *
 * @example
 * ```ts
 * import { CsvSyntaxError, parseCsv } from "./csv.ts";
 * try {
 *   parseCsv('a\n"open\n');
 * } catch (e) {
 *   // 2 "unterminated quoted field"
 *   if (e instanceof CsvSyntaxError) console.error(e.line, e.message);
 * }
 * ```
 */
export class CsvSyntaxError extends Error {
  /** The line (1-based). */
  readonly line: number;
  /** An error at `line` (1-based) with `message`. */
  constructor(line: number, message: string) {
    super(message);
    this.name = "CsvSyntaxError";
    this.line = line;
  }
}

/**
 * Parses CSV text into records; blank lines are skipped. Throws {@link CsvSyntaxError} on an
 * unterminated quote or a stray character after a closing quote.
 *
 * @example
 * ```ts
 * import { parseCsv } from "./csv.ts";
 * parseCsv('name,mos\n"a, b.mp4",3.5\n');
 * // [{ fields: ["name", "mos"], line: 1 }, { fields: ["a, b.mp4", "3.5"], line: 2 }]
 * ```
 */
export function parseCsv(text: string, delimiter = ","): CsvRecord[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = "";
  let line = 1;
  let recordLine = 1;
  let i = 0;
  let quotedField = false;
  const n = text.length;
  const endRecord = () => {
    fields.push(field);
    const blank = fields.length === 1 && fields[0] === "" && !quotedField;
    if (!blank) records.push({ fields, line: recordLine });
    fields = [];
    field = "";
    quotedField = false;
  };
  while (i < n) {
    const c = text[i];
    if (c === '"' && field === "" && !quotedField) {
      quotedField = true;
      const start = line;
      i++;
      for (;;) {
        if (i >= n) throw new CsvSyntaxError(start, "unterminated quoted field");
        const q = text[i];
        if (q === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (q === "\n") line++;
        field += q;
        i++;
      }
      const next = text[i];
      if (i < n && next !== delimiter && next !== "\n" && next !== "\r") {
        throw new CsvSyntaxError(line, `unexpected ${JSON.stringify(next)} after a closing quote`);
      }
      continue;
    }
    if (c === delimiter) {
      fields.push(field);
      field = "";
      quotedField = false;
      i++;
    } else if (c === "\r" || c === "\n") {
      endRecord();
      if (c === "\r" && text[i + 1] === "\n") i++;
      i++;
      line++;
      recordLine = line;
    } else {
      field += c;
      i++;
    }
  }
  if (field !== "" || fields.length > 0 || quotedField) endRecord();
  return records;
}
