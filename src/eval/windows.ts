/**
 * Windows of frames for the streamed evaluation: how many frames fit one window (every tensor an
 * attack, the victim and the JND maps bind per frame against the adapter's binding limit), each
 * attack as a sequence of windows ({@link attackWindows}), and the STQA-Net generator as an
 * attack whose windows carry its ConvGRU state ({@link generatorAttack}).
 *
 * @module
 */

import { bindingLimit } from "../gpu/device.ts";
import { branchFor, chunkFor, generatorPerturb, stqaAttack } from "../attack/stqa.ts";
import type { Attack, AttackOptions, AttackOutput, AttackWindows } from "../attack/types.ts";
import type { Generator } from "../models/generator_io.ts";
import { fastVqaMiniSize } from "../models/victims/fastvqa_mini.ts";
import { simpleVqaMiniSize } from "../models/victims/simplevqa_mini.ts";
import { vsfaMiniSize } from "../models/victims/vsfa_mini.ts";
import type { Victim } from "../models/victims/victim.ts";
import { syncGpu } from "../gpu/queue.ts";
import { concat, slice } from "../nn/mod.ts";
import { noGrad, type Tensor, tidy } from "../tensor/tensor.ts";

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

/**
 * A loaded generator as an {@link Attack} ({@link stqaAttack}'s `run`, name `stqa-net` unless
 * given), with the windows of a long clip attacked one after the other, the ConvGRU state
 * carried from each window to the next: the frames equal `run` on the whole clip. Its branch
 * for `untargeted` comes from `cleanScore` (the whole video's; required then for a two-branch
 * generator). `bytesPerFrame` is the network's widest activation per frame.
 *
 * @example
 * ```ts
 * import { initGpu, loadGenerator } from "../../mod.ts";
 * import { generatorAttack } from "./windows.ts";
 * await initGpu();
 * const attack = generatorAttack(await loadGenerator("stqa-vsfa-mini"));
 * console.log(attack.name, attack.usesCleanScore); // "stqa-net" false
 * ```
 */
export function generatorAttack(
  generator: Generator,
  options: { chunkFrames?: number; name?: string } = {},
): Attack {
  const base = stqaAttack(generator, options);
  const net = generator.net;
  return {
    ...base,
    usesCleanScore: net.config.variant === "two-branch",
    bytesPerFrame: (h, w) => net.bytesPerFrame(h, w),
    windows(_victim: Victim, opts: Omit<AttackOptions, "jnd">): AttackWindows {
      const branch = branchFor(generator, opts.mode ?? "untargeted", opts.cleanScore, opts.median);
      const eps = opts.eps ?? generator.info.eps;
      let state: Tensor | undefined;
      return {
        async next(frames: Tensor, jnd: Tensor): Promise<AttackOutput> {
          const t0 = performance.now();
          const [t, , h, w] = frames.shape;
          const chunk = chunkFor(net, h, w, options.chunkFrames ?? 16);
          const pieces: Tensor[] = [];
          try {
            for (let s = 0; s < t; s += chunk) {
              const e = Math.min(t, s + chunk);
              const out = tidy(() =>
                noGrad(() => {
                  const x = slice(frames, { axis: 0, start: s, end: e });
                  const j = slice(jnd, { axis: 0, start: s, end: e });
                  const r = generatorPerturb(net, x, j, { eps, state });
                  return { adv: r.adversarial[branch], state: r.state };
                })
              );
              state?.dispose();
              state = out.state.keep();
              pieces.push(out.adv.keep());
            }
            const adversarial = pieces.length === 1
              ? pieces[0]
              : tidy(() => concat(pieces, 0).keep());
            if (pieces.length > 1) { for (const p of pieces) p.dispose(); }
            await syncGpu();
            // The clean pass that picks a two-branch generator's branch is the caller's.
            return { adversarial, victimPasses: 0, seconds: (performance.now() - t0) / 1000 };
          } catch (e) {
            for (const p of pieces) if (!p.disposed) p.dispose();
            throw e;
          }
        },
        dispose() {
          state?.dispose();
          state = undefined;
        },
      };
    },
  };
}
