/**
 * Windows of frames for the streamed evaluation: how many frames fit one window (every tensor an
 * attack, the victim and the JND maps bind per frame against the adapter's binding limit), each
 * attack as a sequence of windows ({@link attackWindows}; the STQA-Net generator's, `stqaAttack`,
 * carry its ConvGRU state).
 *
 * @module
 */

import { bindingLimit } from "../gpu/device.ts";
import type { Attack, AttackOptions, AttackWindows } from "../attack/types.ts";
import { fastVqaMiniSize } from "../models/victims/fastvqa_mini.ts";
import { simpleVqaMiniSize } from "../models/victims/simplevqa_mini.ts";
import { vsfaMiniSize } from "../models/victims/vsfa_mini.ts";
import type { Victim } from "../models/victims/victim.ts";

/**
 * The victim's largest activation per frame, where its config fixes the size the network sees
 * (FAST-VQA's fragments, a victim that scales clips to its own size): the estimate of
 * the family's size function (as `checkVictimConfig` uses it) for one clip, divided by the clip's frames. 0 when it cannot be told.
 *
 * @example
 * ```ts
 * import { initGpu, loadVictim } from "../../mod.ts";
 * import { victimBytesPerFrame } from "./windows.ts";
 * await initGpu();
 * console.log(victimBytesPerFrame(await loadVictim("fastvqa-mini"))); // 73728
 * ```
 */
export function victimBytesPerFrame(victim: Pick<Victim, "family" | "config">): number {
  // deno-lint-ignore no-explicit-any
  const c = victim.config as any;
  const size = victim.family === "vsfa-mini"
    ? vsfaMiniSize(c)
    : victim.family === "simplevqa-mini"
    ? simpleVqaMiniSize(c)
    : victim.family === "fastvqa-mini"
    ? fastVqaMiniSize(c)
    : null;
  return size?.activation ? Math.ceil(size.activation.bytes / victim.config.frames) : 0;
}

/**
 * Bytes the evaluation binds per frame of `width` x `height`: the largest of the frames as
 * float32 (`12 * width * height`: the clip, the perturbation, its gradient), the widest
 * per-frame tensor an attack declares ({@link Attack.bytesPerFrame}) and `victimBytes` (the
 * victim's, {@link victimBytesPerFrame}).
 *
 * @example
 * ```ts
 * import { windowBytesPerFrame } from "./windows.ts";
 * windowBytesPerFrame(1920, 1080, []); // 24883200
 * ```
 */
export function windowBytesPerFrame(
  width: number,
  height: number,
  attacks: readonly Pick<Attack, "bytesPerFrame">[],
  victimBytes = 0,
): number {
  let bytes = Math.max(12 * width * height, victimBytes);
  for (const a of attacks) bytes = Math.max(bytes, a.bytesPerFrame?.(height, width) ?? 0);
  return bytes;
}

/**
 * The frames per window of an evaluation: `requested` (default: as many as fit), at most what
 * fits in one binding of the adapter ({@link bindingLimit}) at {@link windowBytesPerFrame}
 * (`victimBytes`: the victim's per frame, {@link victimBytesPerFrame}).
 *
 * @throws {RangeError} naming the size when not even one frame fits, and the window and what
 * fits when `requested` is more, or not a whole number >= 1.
 * @example
 * ```ts
 * import { initGpu } from "../gpu/device.ts";
 * import { evalWindow } from "./windows.ts";
 * await initGpu();
 * evalWindow(1920, 1080, []); // 5 on lavapipe (128 MiB per binding)
 * ```
 */
export function evalWindow(
  width: number,
  height: number,
  attacks: readonly Pick<Attack, "bytesPerFrame">[],
  requested?: number,
  victimBytes = 0,
): number {
  if (requested !== undefined && !(Number.isInteger(requested) && requested >= 1)) {
    throw new RangeError(`window must be a whole number of frames >= 1, got ${requested}`);
  }
  const per = windowBytesPerFrame(width, height, attacks, victimBytes);
  const limit = bindingLimit();
  const fit = Math.floor(limit / per);
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  if (fit < 1) {
    throw new RangeError(
      `one ${width}x${height} frame needs ${mib(per)} in one tensor, more than this adapter's ` +
        `binding limit of ${mib(limit)}; evaluate smaller frames`,
    );
  }
  if (requested !== undefined && requested > fit) {
    throw new RangeError(
      `a window of ${requested} frames of ${width}x${height} needs ${mib(requested * per)} in ` +
        `one tensor, more than this adapter's binding limit of ${mib(limit)}; at most ${fit} ` +
        "fit (--window)",
    );
  }
  return requested ?? fit;
}

/**
 * An attack as a sequence of windows of one clip: its own {@link Attack.windows} when it has
 * one (state carried: the frames equal one `run` on the whole clip), else `run` on each window
 * alone with the options given (pass the whole video's `cleanScore` so that the untargeted
 * direction is the video's, not the window's).
 *
 * @example
 * ```ts
 * import { attackWindows } from "./windows.ts";
 * // const w = attackWindows(ifgsm, victim, { eps: 1, mode: "untargeted", cleanScore: 3.2 });
 * // for (const [x, j] of windows) (await w.next(x, j)).adversarial.dispose();
 * // w.dispose();
 * ```
 */
export function attackWindows(
  attack: Attack,
  victim: Victim,
  options: Omit<AttackOptions, "jnd">,
): AttackWindows {
  if (attack.windows) return attack.windows(victim, options);
  return {
    next: (frames, jnd) => attack.run(frames, victim, { ...options, jnd }),
    dispose() {},
  };
}
