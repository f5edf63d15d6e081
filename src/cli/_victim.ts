/**
 * What the commands that take a victim share about its weights.
 *
 * @module
 */

import { fileSha256 } from "../_fs.ts";
import { victimPaths } from "../models/victims/mod.ts";

/**
 * The sha256 that identifies a victim's weights in reports and reruns: the weights file of a
 * bundled name or a pair, or, for a published victim given with `--weights`, the sha256 of its
 * files' hashes joined in order (so a different file, or another order, is another victim).
 *
 * @example
 * ```ts
 * import { victimWeightsId } from "./_victim.ts";
 * console.log(await victimWeightsId("vsfa-mini"));
 * ```
 */
export async function victimWeightsId(
  victim: string,
  weights?: readonly string[],
): Promise<string> {
  if (!weights?.length) return await fileSha256(victimPaths(victim).weights);
  const parts = [];
  for (const f of weights) parts.push(await fileSha256(f));
  const joined = new TextEncoder().encode(parts.join("\n"));
  const digest = await crypto.subtle.digest("SHA-256", joined);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The digest of a victim's config for reports: the sha256 of its JSON (the config as
 * validated, keys in the order the schema gives them).
 *
 * @example
 * ```ts
 * import { configDigest } from "./_victim.ts";
 * console.log(await configDigest({ frames: 8 }));
 * ```
 */
export async function configDigest(config: Record<string, unknown>): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(config));
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
