/**
 * `deno task convert`: a PyTorch checkpoint (torch.save, zip or legacy format) or a safetensors
 * file into `<out>.safetensors` (float32) and `<out>.json` beside it (the source file's name,
 * SHA-256, size and format, the key the state_dict was under, the prefix stripped, the entries
 * ignored, and every tensor's name, shape and original dtype).
 *
 * ```
 * deno task convert --input FAST-VQA-B.pth --out out/fastvqa [--key state_dict] [--overwrite]
 * ```
 *
 * The command runs in three steps: read the source ({@link readSource}: any format, into named
 * tensors with their dtypes), apply a mode (a {@link ConvertMode}: which tensors go out, under
 * which names; the only mode so far is `generic`, every tensor under its own name), then check
 * (integer tensors must be exact in float32, every value finite) and write both files
 * atomically. A mode that maps an author's names onto a model's parameters is added to
 * {@link MODES} with the flag that selects it.
 *
 * Every failure is one line; exit codes 0 done, 1 failure (an unreadable or refused source, a
 * tensor float32 cannot hold, an output that cannot be written or would replace files), 2 bad
 * usage.
 *
 * @module
 */

import { basename } from "path";
import { z } from "zod";
import { checkRegularFile, PathError } from "../_fs.ts";
import { commandLine, failLine, parseCommand, usageError } from "./_args.ts";
import { publishedVictimPair } from "../models/victims/mod.ts";
import { PUBLISHED_FAMILIES, type PublishedFamily } from "../models/victims/victim.ts";
import { prepareWeightsOutput } from "../io/checkpoint.ts";
import {
  checkFinite,
  decodeSafetensors,
  encodeSafetensors,
  SafetensorsError,
  type TensorData,
  writeFilesAtomic,
} from "../io/safetensors.ts";
import {
  decodeTorchCheckpoint,
  readCheckpointBytes,
  TorchCheckpointError,
  torchCheckpointFormat,
  type TorchDtype,
  type TorchTensor,
} from "../io/torch_checkpoint.ts";

const USAGE = `Usage: deno task convert --input <file> --out <stem> [options]
       deno task convert --victim <family> --weights <files> --out <stem> [--config <json>]

Reads a PyTorch checkpoint (torch.save: the zip format of torch >= 1.6 or the legacy
format) or a safetensors file, and writes its state_dict as <stem>.safetensors (float32)
and <stem>.json (the source's name, SHA-256 and format, the key used, and every tensor's
name, shape and original dtype). Nothing in a checkpoint is executed: pickled classes
other than a state_dict's are refused.

Options:
  -i, --input <file>   the checkpoint (.pt, .pth, .bin, ...) or .safetensors file
  -o, --out <stem>     output stem: <stem>.safetensors and <stem>.json
  --key <name>         the top-level key holding the state_dict (default: the top level
                       when it holds tensors, else the one of state_dict, model_state_dict,
                       model_state, model, net, network, params, weights that holds them)
  --keep-prefix        keep the 'module.' prefix every name of a DataParallel checkpoint
                       has (default: stripped)
  --overwrite          replace <stem>.safetensors / <stem>.json if they exist
  --victim <family>    a published victim (vsfa, mdtvsfa, simplevqa, fast-vqa, faster-vqa,
                       dover) from its authors' files: writes
                       the victim's weights pair (its parameters' names, and its JSON with
                       family and config), which every command takes as --victim <stem>
  --weights <files>    with --victim: the authors' files, comma-separated (e.g.
                       VSFA.pt,resnet50-19c8e357.pth); torch checkpoints or safetensors
  --config <json>      with --victim: config overrides, e.g. '{"output":"K","qMin":1,"qMax":5}'
  -h, --help           this text

Floating tensors become float32 (float64 rounded to nearest); integer and bool tensors
(BatchNorm's num_batches_tracked) are written as float32 when every value is exact, else
refused naming the tensor. NaN and infinite values are refused.

Exit codes: 0 done, 1 failure (an unreadable or refused checkpoint, a tensor float32
cannot hold, an output that cannot be written or would replace files), 2 bad usage.
`;

const ArgsSchema = z.object({
  input: z.string().min(1).optional(),
  out: z.string({ required_error: "required: the output stem" }).min(1),
  victim: z.enum(PUBLISHED_FAMILIES).optional(),
  weights: z.string().min(1).transform((s) => s.split(",").filter((f) => f.length > 0))
    .optional(),
  config: z.string().min(1).transform((s, ctx) => {
    try {
      const v = JSON.parse(s);
      if (typeof v === "object" && v !== null && !Array.isArray(v)) {
        return v as Record<string, unknown>;
      }
    } catch { /* reported below */ }
    ctx.addIssue({ code: "custom", message: "expected a JSON object" });
    return z.NEVER;
  }).optional(),
  key: z.string().min(1).optional(),
  "keep-prefix": z.boolean().default(false),
  overwrite: z.boolean().default(false),
}).strict();

/** One-letter aliases of the flags. */
const SHORT = { input: "i", out: "o" };

/** A source file read into named tensors, whatever its format. */
export interface SourceCheckpoint {
  /** The file's name (without its folder). */
  file: string;
  /** SHA-256 of its bytes, 64 hex digits. */
  sha256: string;
  /** Its size in bytes. */
  bytes: number;
  /** `zip` / `legacy` (torch.save) or `safetensors`. */
  format: "zip" | "legacy" | "safetensors";
  /** The top-level key the state_dict was under (torch formats), or undefined. */
  key: string | undefined;
  /** The prefix stripped from every name, or undefined. */
  strippedPrefix: string | undefined;
  /** Entries of the state_dict that are not tensors. */
  ignored: string[];
  /** The tensors by name, with their original dtypes. */
  tensors: Record<string, TorchTensor>;
}

/** What a mode makes of a source: the tensors to write and what to add to the JSON. */
export interface ModeResult {
  /** Output tensors by name (float32 values; their dtypes for the JSON). */
  tensors: Record<string, TorchTensor>;
  /** Extra fields for the JSON (e.g. which source name each output came from). */
  record?: Record<string, unknown>;
}

/**
 * A conversion mode: maps a source's tensors onto the output's. It may rename, select or
 * refuse (throwing an Error whose message names the file and the tensors at fault).
 */
export interface ConvertMode {
  /** The mode's name, recorded in the JSON. */
  name: string;
  /** The output tensors of `source`. */
  map(source: SourceCheckpoint, path: string): ModeResult;
}

/** Every tensor under its own name. */
const GENERIC: ConvertMode = {
  name: "generic",
  map: (source) => ({ tensors: source.tensors }),
};

/** The modes by name; a flag such as `--victim <name>` picks another one. */
const MODES: Record<string, ConvertMode> = { generic: GENERIC };

const INTEGER_DTYPES: ReadonlySet<TorchDtype> = new Set([
  "int64",
  "int32",
  "int16",
  "int8",
  "uint8",
  "bool",
]);

async function sha256Of(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Reads `path` as a torch.save checkpoint (recognised by its first bytes) or, otherwise, as a
 * safetensors file.
 *
 * @throws {TorchCheckpointError} or {SafetensorsError}, naming `path`.
 * @example
 * ```ts
 * import { readSource } from "./convert.ts";
 * const source = await readSource("tests/fixtures/torch_ckpt/wrapped.pt");
 * console.log(source.format, source.key, source.sha256); // "zip" "state_dict" "..."
 * ```
 */
export async function readSource(
  path: string,
  options: { key?: string; keepPrefix?: boolean } = {},
): Promise<SourceCheckpoint> {
  const bytes = await readCheckpointBytes(path, "file");
  const about = {
    file: basename(path),
    sha256: await sha256Of(bytes),
    bytes: bytes.length,
  };
  if (torchCheckpointFormat(bytes)) {
    const c = decodeTorchCheckpoint(bytes, { name: path, ...options });
    return {
      ...about,
      format: c.format,
      key: c.key,
      strippedPrefix: c.strippedPrefix,
      ignored: c.ignored,
      tensors: c.tensors,
    };
  }
  if (options.key !== undefined) {
    throw new SafetensorsError(path, "--key applies to torch checkpoints, not safetensors files");
  }
  let contents;
  try {
    contents = decodeSafetensors(bytes);
  } catch (e) {
    if (e instanceof SafetensorsError && e.file === undefined) {
      throw new SafetensorsError(
        path,
        `neither a PyTorch checkpoint nor a safetensors file (${e.detail})`,
        { cause: e },
      );
    }
    throw e;
  }
  const tensors: Record<string, TorchTensor> = {};
  for (const [name, t] of Object.entries(contents.tensors)) {
    tensors[name] = { ...t, dtype: "float32" };
  }
  return {
    ...about,
    format: "safetensors",
    key: undefined,
    strippedPrefix: undefined,
    ignored: [],
    tensors,
  };
}

/**
 * The float32 tensors to write: integer tensors only when float32 holds every value exactly
 * (else one error naming each such tensor and its first inexact value), every value finite.
 */
function float32Tensors(
  tensors: Record<string, TorchTensor>,
  path: string,
): Record<string, TensorData> {
  const inexact = Object.entries(tensors).filter(([, t]) =>
    INTEGER_DTYPES.has(t.dtype) && t.rounded
  );
  if (inexact.length) {
    const list = inexact.map(([name, t]) =>
      `${name} (${t.dtype}: ${t.rounded!.value} at index ${t.rounded!.index})`
    );
    throw new SafetensorsError(
      path,
      `integer tensor(s) float32 cannot hold exactly: ${list.join(", ")}; refused`,
    );
  }
  const out: Record<string, TensorData> = {};
  for (const [name, t] of Object.entries(tensors)) out[name] = { shape: t.shape, data: t.data };
  checkFinite(out, path);
  return out;
}

/** The JSON written beside the weights. */
function record(
  source: SourceCheckpoint,
  mode: ConvertMode,
  result: ModeResult,
  command: string,
): string {
  const json = {
    source: {
      file: source.file,
      sha256: source.sha256,
      bytes: source.bytes,
      format: source.format,
      key: source.key ?? null,
      strippedPrefix: source.strippedPrefix ?? null,
      ignored: source.ignored,
    },
    mode: mode.name,
    command,
    date: new Date().toISOString(),
    ...result.record,
    tensors: [],
  };
  // One line per tensor: a checkpoint has hundreds.
  const lines = Object.entries(result.tensors).map(([name, t]) =>
    `    ${JSON.stringify({ name, shape: t.shape, dtype: t.dtype })}`
  );
  const text = JSON.stringify(json, null, 2);
  const tail = `"tensors": []\n}`;
  return `${text.slice(0, -tail.length)}"tensors": [\n${lines.join(",\n")}\n  ]\n}\n`;
}

/**
 * Runs `convert` with its arguments (after the command name); returns the exit code.
 *
 * @example
 * ```ts
 * import { convertCommand } from "./convert.ts";
 * const code = await convertCommand(["--input", "FAST-VQA-B.pth", "--out", "out/fastvqa"]);
 * ```
 */
export async function convertCommand(args: string[]): Promise<number> {
  const parsed = parseCommand(args, {
    usage: USAGE,
    name: "deno task convert",
    short: SHORT,
    schema: ArgsSchema,
  });
  if (!parsed.ok) return parsed.code;
  const o = parsed.values;
  const misuse = o.victim
    ? (o.input
      ? "--input: with --victim, give the files in --weights"
      : o.weights?.length
      ? o.key || o["keep-prefix"] ? "--key/--keep-prefix: not used with --victim" : undefined
      : "--weights: required with --victim (the authors' files, comma-separated)")
    : o.weights || o.config
    ? "--weights/--config: only with --victim"
    : o.input
    ? undefined
    : "--input: required (the checkpoint to convert)";
  if (misuse) return usageError(misuse, { usage: USAGE, name: "deno task convert" });
  if (o.victim) return await convertVictim(o.victim, o.weights!, o, args);
  const input = o.input!;
  const mode = MODES.generic;
  try {
    // The input, then the outputs, are checked before a large file is read.
    await checkRegularFile(input, "file");
    const out = await prepareWeightsOutput(o.out, { overwrite: o.overwrite });
    const source = await readSource(input, { key: o.key, keepPrefix: o["keep-prefix"] });
    const result = mode.map(source, input);
    const tensors = float32Tensors(result.tensors, input);
    const metadata = {
      source: source.file,
      source_sha256: source.sha256,
      source_format: source.format,
    };
    await writeFilesAtomic([
      { path: out.weights, data: encodeSafetensors(tensors, metadata) },
      { path: out.json, data: record(source, mode, result, commandLine("convert", args)) },
    ]);
    const n = Object.keys(tensors).length;
    const from = source.key === undefined ? "" : ` (under '${source.key}')`;
    console.log(
      `${input}: ${source.format} format, ${n} tensor(s)${from}` +
        (source.strippedPrefix ? `, prefix '${source.strippedPrefix}' stripped` : "") +
        (source.ignored.length ? `, ${source.ignored.length} non-tensor entries ignored` : ""),
    );
    console.log(`wrote ${out.display.weights} and ${out.display.json}`);
    return 0;
  } catch (e) {
    if (
      e instanceof TorchCheckpointError || e instanceof SafetensorsError || e instanceof PathError
    ) {
      return failLine("convert", e.message, 1);
    }
    throw e;
  }
}

/** `--victim`: a published victim's weights pair from its authors' files. */
async function convertVictim(
  family: PublishedFamily,
  files: string[],
  o: { out: string; overwrite: boolean; config?: Record<string, unknown> },
  args: string[],
): Promise<number> {
  try {
    for (const f of files) await checkRegularFile(f, "file");
    const out = await prepareWeightsOutput(o.out, { overwrite: o.overwrite });
    const sources = [];
    for (const f of files) {
      const bytes = await readCheckpointBytes(f, "file");
      const format = torchCheckpointFormat(bytes) ?? "safetensors";
      sources.push({
        file: basename(f),
        sha256: await sha256Of(bytes),
        bytes: bytes.length,
        format,
      });
    }
    const pair = await publishedVictimPair(family, files, {
      config: o.config,
      extra: {
        converted: {
          sources,
          command: commandLine("convert", args),
          date: new Date().toISOString(),
        },
      },
    });
    await writeFilesAtomic([
      { path: out.weights, data: pair.weights },
      { path: out.json, data: JSON.stringify(pair.json, null, 2) + "\n" },
    ]);
    console.log(`${family}: ${pair.tensors} tensors from ${files.join(", ")}`);
    console.log(`wrote ${out.display.weights} and ${out.display.json}`);
    return 0;
  } catch (e) {
    if (e instanceof Error && !(e instanceof TypeError)) {
      return failLine("convert", e.message, 1);
    }
    throw e;
  }
}
