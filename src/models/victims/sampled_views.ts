/**
 * Views sampled across a whole video (FAST-VQA's fragments, DOVER's resized frames): each view
 * takes some frames, by index, and makes one image of each; the model scores the images. The
 * same views serve a whole clip ({@link viewImages}, differentiable) and a clip pushed chunk by
 * chunk ({@link SampledViewStream}), which keeps only the images, not the frames: since the
 * indices spread over the whole video, the stream needs the video's frame count up front.
 *
 * @module
 */

import { concat, slice } from "../../nn/mod.ts";
import { noGrad, type Tensor, tidy } from "../../tensor/tensor.ts";
import {
  asBatch,
  checkStreamChunk,
  type StreamOptions,
  type VictimStream,
  type VictimStreamResult,
} from "./victim.ts";

/** One view of a video: the frames it samples and how it makes an image of each. */
export interface SampledView {
  /** Sampled frame indices, in the view's order (repeats allowed). */
  indices: number[];
  /** What the images of one frame are cut from (e.g. the frame upsampled), `[1,3,H,W]` in. */
  prepare(frame: Tensor): Tensor;
  /** The image of sampled position `n` from its frame's {@link SampledView.prepare}. */
  image(prepared: Tensor, n: number): Tensor;
}

/**
 * The images `[N, 3, h, w]` of a view of frames `[T, 3, H, W]` (each frame prepared once).
 * Differentiable.
 *
 * @example
 * ```ts
 * import { initGpu, nn, tensor } from "../../../mod.ts";
 * import { viewImages } from "./sampled_views.ts";
 * await initGpu();
 * const frames = tensor(new Float32Array(4 * 3 * 8 * 8).fill(0.5), [4, 3, 8, 8]);
 * const view = {
 *   indices: [0, 2, 2],
 *   prepare: (f: typeof frames) => f,
 *   image: (f: typeof frames) => nn.slice(f, { axis: 2, end: 4 }),
 * };
 * console.log(viewImages(frames, view).shape); // [3, 3, 4, 8]
 * ```
 */
export function viewImages(frames: Tensor, view: SampledView): Tensor {
  const t = frames.shape[0];
  const prepared = new Map<number, Tensor>();
  const images = view.indices.map((index, n) => {
    if (!Number.isInteger(index) || index < 0 || index >= t) {
      throw new RangeError(`sampled view: frame ${index} outside the clip's ${t} frames`);
    }
    let p = prepared.get(index);
    if (!p) {
      p = view.prepare(slice(frames, { axis: 0, start: index, end: index + 1 }));
      prepared.set(index, p);
    }
    return view.image(p, n);
  });
  return images.length === 1 ? images[0] : concat(images, 0);
}

/** What a {@link SampledViewStream} needs from its model. */
export interface SampledViewModel {
  /** The model's name, for messages. */
  who: string;
  /** The views of a `t`-frame video of `height x width`. */
  views(t: number, height: number, width: number): SampledView[];
  /** The clip score `[1]` from each view's images (in the views' order). */
  score(images: Tensor[]): Tensor;
}

/**
 * A {@link VictimStream} for a model of sampled views: it is told the video's frame count, keeps
 * the images of the frames its views sample as they pass (a few hundred small images, whatever
 * the video's size and length) and scores them at `finish()`. `frameScores` is empty (these
 * models have no per-frame score). Forward only.
 *
 * @example
 * ```ts ignore
 * const stream = new SampledViewStream(model, 240); // a model implementing SampledViewModel
 * ```
 */
export class SampledViewStream implements VictimStream {
  #model: SampledViewModel;
  #total: number;
  #frames = 0;
  #views: SampledView[] | null = null;
  /** Per view, the images made so far, by position. */
  #images: (Tensor | undefined)[][] = [];
  /** Per view, the positions of each frame index. */
  #at: Map<number, number[]>[] = [];
  #size: [number, number] | null = null;
  #closed: string | null = null;

  /** A stream for a video of `total` frames. */
  constructor(model: SampledViewModel, total: number | undefined) {
    if (total === undefined || !Number.isInteger(total) || total < 1) {
      throw new RangeError(
        `${model.who} stream: needs the video's frame count up front (stream({ frames })), ` +
          `since its frames are sampled across the whole video; got ${total}`,
      );
    }
    this.#model = model;
    this.#total = total;
  }

  /** Frames pushed so far. */
  get frames(): number {
    return this.#frames;
  }

  /** Takes the next frames `[t,3,H,W]` (see {@link VictimStream.push}). */
  push(frames: Tensor): void {
    const who = this.#model.who;
    const [t, h, w] = checkStreamChunk(who, frames, {
      closed: this.#closed,
      size: this.#size,
      frames: this.#frames,
    });
    if (this.#frames + t > this.#total) {
      throw new RangeError(
        `${who} stream: frame ${this.#frames + t - 1} pushed, but the stream was opened for ` +
          `${this.#total} frames`,
      );
    }
    this.#size = [h, w];
    if (t === 0) return;
    if (!this.#views) {
      this.#views = this.#model.views(this.#total, h, w);
      this.#images = this.#views.map((v) => new Array(v.indices.length));
      this.#at = this.#views.map((v) => {
        const m = new Map<number, number[]>();
        v.indices.forEach((index, n) => m.set(index, [...(m.get(index) ?? []), n]));
        return m;
      });
    }
    const views = this.#views;
    noGrad(() => {
      for (let k = 0; k < t; k++) {
        const index = this.#frames + k;
        views.forEach((view, v) => {
          const ns = this.#at[v].get(index);
          if (!ns) return;
          tidy(() => {
            const p = view.prepare(slice(frames, { axis: 0, start: k, end: k + 1 }));
            for (const n of ns) this.#images[v][n] = view.image(p, n).keep();
          });
        });
      }
    });
    this.#frames += t;
  }

  /** Scores the video once all its frames are pushed; frees the stream. */
  async finish(): Promise<VictimStreamResult> {
    const who = this.#model.who;
    if (this.#closed) throw new Error(`${who} stream: finish after the stream was ${this.#closed}`);
    try {
      if (this.#frames === 0) throw new RangeError(`${who} stream: no frames were pushed`);
      if (this.#frames !== this.#total) {
        throw new RangeError(
          `${who} stream: ${this.#frames} frames pushed, but the stream was opened for ${this.#total}`,
        );
      }
      const q = noGrad(() =>
        tidy(() =>
          this.#model.score(
            this.#images.map((list) => concat(list.map((x) => x!), 0)),
          ).keep()
        )
      );
      try {
        const score = (await q.read())[0];
        return { score, frameScores: [], frames: this.#frames };
      } finally {
        q.dispose();
      }
    } finally {
      this.dispose();
      this.#closed = "finished";
    }
  }

  /** Frees the images kept (safe to call twice). */
  dispose(): void {
    for (const list of this.#images) for (const x of list) x?.dispose();
    this.#images = [];
    this.#closed ??= "disposed";
  }
}

/**
 * What the victims of sampled views (`fast-vqa`, `faster-vqa`, `dover`) share: the score of a
 * clip is {@link SampledViewVictim.scoreViews} of its views' images, a batch is scored clip by
 * clip, `prepare` is the identity (the sampling is part of the score, so gradients reach the
 * frames) and the stream keeps the views' images ({@link SampledViewStream}). A family gives its
 * views and how it scores their images.
 *
 * @example
 * ```ts ignore
 * class MyModel extends SampledViewVictim {
 *   readonly name = "my-model";
 *   views(t: number, h: number, w: number): SampledView[] { ... }
 *   scoreViews(images: Tensor[]): Tensor { ... }
 * }
 * ```
 */
export abstract class SampledViewVictim {
  /** The model's name, for messages. */
  abstract readonly name: string;
  /** The views of a `t`-frame video of `height x width` (plans drawn from the model's seed). */
  abstract views(t: number, height: number, width: number): SampledView[];
  /** The clip's score `[1]` from each view's images, in the views' order. */
  abstract scoreViews(images: Tensor[]): Tensor;

  /** Identity (the sampling is part of the score, so gradients reach the frames). */
  prepare(clips: Tensor): Tensor {
    return clips;
  }

  /** The clip's score `[1]`, frames `[T,3,H,W]` in [0,1]. Differentiable. */
  score(frames: Tensor): Tensor {
    const x = asBatch(frames, this.name);
    if (x.shape[0] !== 1) {
      throw new RangeError(`${this.name}: score takes one clip [T,3,H,W], got [${x.shape}]`);
    }
    const f = x.reshape(x.shape.slice(1));
    const [t, , h, w] = f.shape;
    return this.scoreViews(this.views(t, h, w).map((v) => viewImages(f, v)));
  }

  /** Scores of a batch `[B,T,3,H,W]` -> `[B]`, clip by clip. Differentiable. */
  scoreBatch(clips: Tensor): Tensor {
    const x = asBatch(clips, this.name);
    const [b, ...rest] = x.shape;
    const scores: Tensor[] = [];
    for (let i = 0; i < b; i++) {
      scores.push(this.score(slice(x, { axis: 0, start: i, end: i + 1 }).reshape(rest)));
    }
    return scores.length === 1 ? scores[0] : concat(scores, 0);
  }

  /** {@link SampledViewVictim.scoreBatch} (prepare is the identity). */
  scorePrepared(prepared: Tensor): Tensor {
    return this.scoreBatch(prepared);
  }

  /**
   * A chunk-by-chunk scorer for a video of `options.frames` frames (required: the sampling
   * spans the whole video), keeping only the views' images. Forward only.
   */
  stream(options: StreamOptions = {}): VictimStream {
    return new SampledViewStream({
      who: this.name,
      views: (t, h, w) => this.views(t, h, w),
      score: (images) => this.scoreViews(images),
    }, options.frames);
  }
}
