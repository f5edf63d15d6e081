// Media fixtures made and read by ffmpeg for the tests: a clip with an audio track, and the
// per-packet digests of a file's audio streams (to check a copy is bit for bit).

import assert from "assert";

/** Per-packet MD5s of a file's audio streams, copied without decoding (ffmpeg's framemd5). */
export async function audioPackets(file: string): Promise<string[]> {
  const probe = await new Deno.Command("ffprobe", {
    args: ["-v", "error", "-select_streams", "a", "-show_entries", "stream=index", "-of", "csv=p=0"]
      .concat([file]),
    stdout: "piped",
  }).output();
  assert.ok(probe.success, `ffprobe ${file}`);
  if (!new TextDecoder().decode(probe.stdout).trim()) return []; // no audio stream
  const r = await new Deno.Command("ffmpeg", {
    args: ["-v", "error", "-i", file, "-map", "0:a", "-c", "copy", "-f", "framemd5", "-"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(r.success, new TextDecoder().decode(r.stderr));
  return new TextDecoder().decode(r.stdout).split("\n").filter((l) => l && !l.startsWith("#"))
    .map((l) => l.split(",").map((x) => x.trim()))
    .map((f) => `${f[0]} ${f[1]} ${f[3]} ${f.at(-1)}`); // stream, dts, duration, md5
}

/** A 1-second clip with a video and a FLAC audio stream (a 440 Hz tone), made by ffmpeg. */
export async function clipWithAudio(file: string, seconds = 1): Promise<void> {
  const r = await new Deno.Command("ffmpeg", {
    args: [
      ...["-v", "error", "-f", "lavfi", "-i", `testsrc=size=32x24:rate=25:duration=${seconds}`],
      ...["-f", "lavfi", "-i", `sine=frequency=440:sample_rate=16000:duration=${seconds}`],
      ...["-c:v", "ffv1", "-c:a", "flac", "-y", file],
    ],
    stderr: "piped",
  }).output();
  assert.ok(r.success, new TextDecoder().decode(r.stderr));
}
