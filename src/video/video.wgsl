// Video frame conversion between ffmpeg's rgb24 (interleaved 8-bit R,G,B per pixel, packed
// four bytes to a little-endian u32) and STQA's planar float frames [T,3,H,W] in [0,1].
//
// unpack_rgb24 / unpack_rgb24_x4: frame t = gid.z (no integer division per pixel); _x4 takes
//   4 pixels per invocation when H*W is a multiple of 4. Values come from a 256-entry table
//   (lut[i] = fround(i/255), written by the CPU), so they equal the CPU's i/255 exactly on any
//   GPU. The packed input is padded to a multiple of 12 bytes (src/video/_convert.ts does).
// pack_rgb24_x4: the fast path (no padding, H*W a multiple of 4): 4 pixels per invocation.
// pack_rgb24: one invocation per output word (4 bytes). Quantises with round-half-to-even,
//   q = round(v * 255) clamped to [0, 255] (NaN -> 0), and pads the output to w2 x h2 by
//   replicating the last column and row of the source.
//
// Indexing: a 1-D range over a 2-D grid of 256-wide workgroups (see grid1d in src/gpu/queue.ts).

struct Params {
  n: u32,     // pack: output words
  hw: u32,    // unpack: H*W per frame; pack: source H*W
  w: u32,     // pack: source width
  h: u32,     // pack: source height
  w2: u32,    // pack: output width (>= w)
  h2: u32,    // pack: output height (>= h)
  t0: u32,    // pack: first source frame
  nbytes: u32, // pack: output bytes (n = ceil(nbytes / 4))
}

// Bindings (VIDEO in src/video/_convert.ts): params; 1 packed_in (u32), also planar_in (f32) and
// planar_in4 (vec4<f32>); 2 planar_out (f32), also packed_out (u32) and planar_out4; 3 lut (f32).

// General case (any H*W): one invocation per pixel s of frame t = gid.z.
@compute @workgroup_size(256)
fn unpack_rgb24(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
  let s = flat_index(gid, nwg, 256u);
  let hw = params.hw;
  if (s >= hw) { return; }
  let t = gid.z;
  let b = 3u * (t * hw + s);
  let base = t * 3u * hw + s;
  for (var c = 0u; c < 3u; c = c + 1u) {
    let k = b + c;
    planar_out[base + c * hw] = lut[(packed_in[k >> 2u] >> ((k & 3u) * 8u)) & 255u];
  }
}

// H*W divisible by 4: one invocation per 4 pixels (3 words in, one vec4 store per plane).
@compute @workgroup_size(256)
fn unpack_rgb24_x4(@builtin(global_invocation_id) gid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = flat_index(gid, nwg, 256u);
  let q = params.hw / 4u;
  if (g >= q) { return; }
  let t = gid.z;
  let wi = 3u * (t * q + g);
  let w0 = packed_in[wi];
  let w1 = packed_in[wi + 1u];
  let w2 = packed_in[wi + 2u];
  let o = t * 3u * q + g;
  planar_out4[o] = vec4<f32>(lut[w0 & 255u], lut[w0 >> 24u], lut[(w1 >> 16u) & 255u],
                             lut[(w2 >> 8u) & 255u]);
  planar_out4[o + q] = vec4<f32>(lut[(w0 >> 8u) & 255u], lut[w1 & 255u], lut[w1 >> 24u],
                                 lut[(w2 >> 16u) & 255u]);
  planar_out4[o + 2u * q] = vec4<f32>(lut[(w0 >> 16u) & 255u], lut[(w1 >> 8u) & 255u],
                                      lut[w2 & 255u], lut[w2 >> 24u]);
}

fn quantise(v: f32) -> u32 {
  if (!(v >= 0.0)) { return 0u; }
  // The product is correctly rounded to f32 and round() is exact (ties to even), so every
  // implementation gets the same byte (floor(x + 0.5) could be fused into an FMA).
  return u32(min(round(v * 255.0), 255.0));
}

@compute @workgroup_size(256)
fn pack_rgb24(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = flat_index(gid, nwg, 256u);
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

fn quantise4(v: vec4<f32>) -> vec4<u32> {
  // select(0, q, v >= 0) also maps NaN to 0.
  let q = vec4<u32>(min(round(v * 255.0), vec4<f32>(255.0)));
  return select(vec4<u32>(0u), q, v >= vec4<f32>(0.0));
}

// Unpadded frames with H*W divisible by 4: one invocation per 4 pixels of frame t0 + gid.z.
@compute @workgroup_size(256)
fn pack_rgb24_x4(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = flat_index(gid, nwg, 256u);
  let q = params.hw / 4u;
  if (g >= q) { return; }
  let i = (params.t0 + gid.z) * 3u * q + g;
  let r = quantise4(planar_in4[i]);
  let gr = quantise4(planar_in4[i + q]);
  let b = quantise4(planar_in4[i + 2u * q]);
  let o = 3u * (gid.z * q + g);
  packed_out[o] = r.x | (gr.x << 8u) | (b.x << 16u) | (r.y << 24u);
  packed_out[o + 1u] = gr.y | (b.y << 8u) | (r.z << 16u) | (gr.z << 24u);
  packed_out[o + 2u] = b.z | (r.w << 8u) | (gr.w << 16u) | (b.w << 24u);
}
