/**
 * The interface every attack shares (STQA-Net's generator and the iterative baselines): frames
 * and a frozen victim in, adversarial frames and statistics out.
 *
 * @module
 */

import type { JndModel } from "../jnd/models.ts";
import type { Victim } from "../models/victims/victim.ts";
import type { Tensor } from "../tensor/tensor.ts";

/**
 * Which way an attack pushes the victim's score:
 * - `untargeted`: toward the score-reversed boundary (Zhang et al. 2023): `qMin` for a clip
 *   whose clean score is above the median, else `qMax`;
 * - `up`: toward `qMax`; `down`: toward `qMin`.
 */
export type AttackMode = "untargeted" | "up" | "down";

/** The modes, for validation.
 *
 * @example
 * ```ts
 * import { ATTACK_MODES } from "./types.ts";
 * console.log(ATTACK_MODES.join("|"));
 * ```
 */
export const ATTACK_MODES = ["untargeted", "up", "down"] as const;

/** Options every attack takes. */
export interface AttackOptions {
  /**
   * JND maps `[T,1,H,W]` in levels/255 (from `computeJnd`); the attack keeps `|d| <= eps * J`
   * (Zhang et al.'s attack, which bounds the RMS instead, ignores it except for statistics).
   */
  jnd: Tensor;
  /** Multiple of the JND allowed (default 1). */
  eps?: number;
  /** Direction (default `untargeted`). */
  mode?: AttackMode;
  /**
   * The median score that decides the untargeted boundary (default: the midpoint of the
   * victim's `qMin..qMax`).
   */
  median?: number;
  /** Seed of anything random (default 1). */
  seed?: number;
  /**
   * The clean score of the whole video these frames belong to, when the caller knows it (a
   * window of a longer video, scored by a first streamed pass): the `untargeted` boundary is
   * decided from it instead of from the frames given, and no victim pass is spent on it.
   */
  cleanScore?: number;
}

/**
 * A long clip attacked window by window (from {@link Attack.windows}): the windows are given in
 * order and whatever the attack carries across them (the random control's generator, a
 * generator's ConvGRU state) goes on from one to the next, so the frames equal those of one
 * `run` on the whole clip.
 */
export interface AttackWindows {
  /**
   * Attacks the next window `[t,3,H,W]` with its JND maps `[t,1,H,W]` (the options' other fields
   * were given to {@link Attack.windows}). The caller disposes the output's frames.
   */
  next(frames: Tensor, jnd: Tensor): Promise<AttackOutput>;
  /** Frees what is carried between windows (safe to call twice). */
  dispose(): void;
}

/** What an attack returns. */
export interface AttackOutput {
  /** Adversarial frames `[T,3,H,W]` in [0,1] (the caller disposes them). */
  adversarial: Tensor;
  /** Forward and backward passes through the victim the attack needed (0 for a generator). */
  victimPasses: number;
  /** Wall seconds, including a final GPU sync. */
  seconds: number;
}

/**
 * An attack method.
 *
 * @example
 * ```ts
 * import type { Attack } from "./types.ts";
 * // const out = await attack.run(frames, victim, { jnd, eps: 1 });
 * // console.log(attack.name, out.seconds);
 * ```
 */
export interface Attack {
  /** A short name used in tables, e.g. `fgsm`, `stqa-net`. */
  readonly name: string;
  /**
   * Whether the attack keeps its perturbation inside the JND box `|d| <= eps * J` of the maps it
   * is given. Its 8-bit frames are then quantised without leaving the box (`quantizeInJnd`);
   * an attack with another bound (zhang2023's RMS) is rounded to the nearest level instead.
   */
  readonly jndBox: boolean;
  /**
   * The JND model whose maps the attack must be given (a generator's: the model it was trained
   * with); absent when any maps do (the baselines), and the caller's default applies.
   */
  readonly jndModel?: JndModel;
  /**
   * Whether the attack needs the clean score in `untargeted` mode (default true): false for the
   * random control and a one-branch generator, which do not look at it. A windowed evaluation
   * runs its first clean pass only for attacks that need it.
   */
  readonly usesCleanScore?: boolean;
  /**
   * Bytes of the largest tensor the attack binds per frame of `height` x `width`, when it is
   * more than the frames' own `12 * height * width` (a generator's widest activation); absent
   * otherwise. A windowed evaluation sizes its windows with it.
   */
  bytesPerFrame?(height: number, width: number): number;
  /** Attacks one clip `[T,3,H,W]` (RGB in [0,1]). Runs no gradient into the victim's weights. */
  run(frames: Tensor, victim: Victim, options: AttackOptions): Promise<AttackOutput>;
  /**
   * Attacks a long clip window by window with its state carried, so that the windows' frames
   * equal one `run` on the whole clip (see {@link AttackWindows}). Absent for the gradient
   * attacks: a windowed evaluation then runs `run` on each window alone, with the whole video's
   * `cleanScore` (docs/eval.md, "Long videos: windows", says what that approximates).
   */
  windows?(victim: Victim, options: Omit<AttackOptions, "jnd">): AttackWindows;
}
