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
  /** Attacks one clip `[T,3,H,W]` (RGB in [0,1]). Runs no gradient into the victim's weights. */
  run(frames: Tensor, victim: Victim, options: AttackOptions): Promise<AttackOutput>;
}
