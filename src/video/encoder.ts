/**
 * An encoder fed chunk by chunk: `openVideoEncoder` starts {@link writeVideo} on a queue that
 * holds at most one chunk ahead, so a streamed attack or evaluation keeps memory bounded by the
 * chunk while ffmpeg encodes the previous one. Chunks are tensors (freed once written) or packed
 * rgb24 bytes (`Rgb24Frames`, sent as they are). A failed encode makes the next `push` (or
 * `close`) throw with its error; `abort` stops ffmpeg and leaves no file.
 *
 * @module
 */

import { Tensor } from "../tensor/tensor.ts";
import type { Rgb24Frames } from "./rgb24.ts";
import { writeVideo, type WriteVideoOptions, type WriteVideoResult } from "./write.ts";

/** A chunk for the encoder: frames `[t,3,H,W]` as a tensor, or packed rgb24 bytes. */
export type EncoderChunk = Tensor | Rgb24Frames;

/** What {@link openVideoEncoder} returns. */
export interface VideoEncoder {
  /**
   * Queues the next chunk (a tensor is taken over: freed once written, or when dropped) and
   * waits while one chunk is still queued.
   */
  push(chunk: EncoderChunk): Promise<void>;
  /** No more chunks: waits for the file to be complete. */
  close(): Promise<WriteVideoResult>;
  /** Stops the encoder (no file is left) and drops what is queued; safe after `close`. */
  abort(): Promise<void>;
}

/** Thrown to the feeding side when the encoder stopped first. */
class EncoderStopped extends Error {}

const drop = (x: EncoderChunk) => {
  if (x instanceof Tensor) x.dispose();
};

/** The queue between the producer and `writeVideo` (one chunk ahead at most). */
class Feed implements AsyncIterable<EncoderChunk> {
  #queue: EncoderChunk[] = [];
  #closed = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;

  #notify(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  #waitChange(): Promise<void> {
    return new Promise((resolve) => {
      const prev = this.#wake;
      this.#wake = () => {
        prev?.();
        resolve();
      };
    });
  }

  async put(x: EncoderChunk): Promise<void> {
    while (!this.#error && this.#queue.length >= 1) await this.#waitChange();
    if (this.#error) {
      drop(x);
      throw new EncoderStopped(`the encoder stopped: ${this.#error.message}`);
    }
    this.#queue.push(x);
    this.#notify();
  }

  close(): void {
    this.#closed = true;
    this.#notify();
  }

  fail(e: Error): void {
    this.#error ??= e;
    for (const x of this.#queue) drop(x);
    this.#queue = [];
    this.#notify();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<EncoderChunk> {
    let done = false;
    try {
      for (;;) {
        while (!this.#error && !this.#queue.length && !this.#closed) await this.#waitChange();
        if (this.#error) throw this.#error;
        const x = this.#queue.shift();
        if (x === undefined) break;
        this.#notify();
        yield x;
      }
      done = true;
    } finally {
      // The encoder stopped early (its own error): the producer must not wait for it.
      if (!done) this.fail(new EncoderStopped("the encoder stopped"));
    }
  }
}

/**
 * Starts `writeVideo(file, ...)` on chunks that come one after another (`disposeInput` is set:
 * each pushed tensor is freed once written). See the module documentation.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu, tensor } from "../../mod.ts";
 * import { openVideoEncoder } from "./encoder.ts";
 * import { rgb24Frames } from "./rgb24.ts";
 * await initGpu();
 * const dir = await Deno.makeTempDir();
 * const enc = openVideoEncoder(`${dir}/a.mkv`, { codec: "ffv1" });
 * await enc.push(tensor(new Float32Array(3 * 16 * 16).fill(0.5), [1, 3, 16, 16]));
 * await enc.push(rgb24Frames(new Float32Array(3 * 16 * 16).fill(0.5), 1, 16, 16));
 * assert.equal((await enc.close()).frames, 2);
 * ```
 */
export function openVideoEncoder(file: string, options: WriteVideoOptions = {}): VideoEncoder {
  const feed = new Feed();
  const ac = new AbortController();
  const done = writeVideo(file, feed, { ...options, disposeInput: true, signal: ac.signal });
  let failure: Error | null = null;
  done.catch((e) => {
    failure = e as Error;
    feed.fail(e as Error);
  });
  return {
    async push(chunk) {
      try {
        await feed.put(chunk);
      } catch (e) {
        if (e instanceof EncoderStopped && failure) throw failure;
        throw e;
      }
    },
    close() {
      feed.close();
      return done;
    },
    async abort() {
      feed.fail(new EncoderStopped("aborted"));
      ac.abort();
      await done.catch(() => {});
    },
  };
}
