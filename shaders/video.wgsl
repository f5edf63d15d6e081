// Video frame conversion between ffmpeg's rgb24 (interleaved 8-bit R,G,B per pixel, packed
// four bytes to a little-endian u32) and STQA's planar float frames [T,3,H,W] in [0,1].
//
// unpack_rgb24: one invocation per 4 pixels (3 words). Values come from a 256-entry table
//   (b3[i] = fround(i/255), written by the CPU), so they equal the CPU's i/255 exactly on any GPU.
//   The packed input must be padded to a multiple of 12 bytes (src/video/_convert.ts does).
// pack_rgb24: one invocation per output word (4 bytes). Quantises with round-half-up,
//   q = floor(v * 255 + 0.5) clamped to [0, 255] (NaN -> 0), and pads the output to w2 x h2 by
//   replicating the last column and row of the source.
//
// Indexing: a 1-D range over a 2-D grid of 256-wide workgroups (see grid1d in src/gpu/queue.ts).

struct Params {
  n: u32,     // unpack: pixels; pack: output words
  hw: u32,    // unpack: H*W per frame; pack: source H*W
  w: u32,     // pack: source width
  h: u32,     // pack: source height
  w2: u32,    // pack: output width (>= w)
  h2: u32,    // pack: output height (>= h)
  t0: u32,    // pack: first source frame
  nbytes: u32, // pack: output bytes (n = ceil(nbytes / 4))
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> packed_in: array<u32>;
@group(0) @binding(2) var<storage, read_write> planar_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> lut: array<f32>;

@group(0) @binding(1) var<storage, read_write> planar_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> packed_out: array<u32>;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

fn byte_of(words: array<u32, 3>, k: u32) -> u32 {
  return (words[k / 4u] >> ((k % 4u) * 8u)) & 255u;
}

@compute @workgroup_size(256)
fn unpack_rgb24(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = flat(gid, nwg);
  let p0 = g * 4u;
  if (p0 >= params.n) { return; }
  let words = array<u32, 3>(packed_in[3u * g], packed_in[3u * g + 1u], packed_in[3u * g + 2u]);
  let hw = params.hw;
  for (var k = 0u; k < 4u; k = k + 1u) {
    let p = p0 + k;
    if (p >= params.n) { return; }
    let t = p / hw;
    let s = p - t * hw;
    let base = t * 3u * hw + s;
    planar_out[base] = lut[byte_of(words, 3u * k)];
    planar_out[base + hw] = lut[byte_of(words, 3u * k + 1u)];
    planar_out[base + 2u * hw] = lut[byte_of(words, 3u * k + 2u)];
  }
}

fn quantise(v: f32) -> u32 {
  if (!(v >= 0.0)) { return 0u; }
  return u32(min(floor(v * 255.0 + 0.5), 255.0));
}

@compute @workgroup_size(256)
fn pack_rgb24(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = flat(gid, nwg);
  if (j >= params.n) { return; }
  let hw2 = params.w2 * params.h2;
  var word = 0u;
  for (var k = 0u; k < 4u; k = k + 1u) {
    let b = 4u * j + k;
    if (b >= params.nbytes) { break; }
    let p = b / 3u;
    let c = b - 3u * p;
    let t = p / hw2;
    let r = p - t * hw2;
    let y = r / params.w2;
    let x = r - y * params.w2;
    let sy = min(y, params.h - 1u);
    let sx = min(x, params.w - 1u);
    let v = planar_in[((params.t0 + t) * 3u + c) * params.hw + sy * params.w + sx];
    word = word | (quantise(v) << (8u * k));
  }
  packed_out[j] = word;
}
