// Just-noticeable-difference maps (DESIGN.md section 3), driven by src/jnd/mod.ts.
//
// Every entry point covers all frames of a batch in one dispatch: gid.x = column, gid.y = row,
// gid.z = frame. Maps are [F, H, W] float32 in 8-bit levels; borders replicate (coordinates are
// clamped). Frame 0 of the luma/bg/feature maps is the previous frame when has_prev = 1.
//
// Stages (entry points, in order):
//   luma      RGB [T,3,H,W] in [0,1] (+ previous frame [3,H,W]) -> p = 255 * BT.601 luma
//   features  p -> background luminance bg, maximum weighted gradient mg, L1 Sobel magnitude
//             and its gradient sector (0 horizontal, 1 vertical, 2/3 diagonals)
//   nms       magnitude, sector -> 0 / 1 (weak) / 2 (strong) after non-maximum suppression
//   edges     codes -> edge (strong, or weak with a strong 8-neighbour), dilated 3x3
//   combine   p, bg, mg, edges -> JND / 255 for model MODEL (0 chou-li, 1 namm, 2 namm-st)
//
// The order of every float operation that a comparison depends on (luma, bg, Sobel, ild) is
// mirrored by the float32 steps of src/jnd/reference.ts; keep the two in step.

struct Params {
  w: i32,
  h: i32,
  frames: i32,   // frames in the input maps (luma/features/nms/edges), output frames (combine)
  has_prev: i32, // 1 when map frame 0 is the previous frame
  edge_low: f32,
  edge_high: f32,
  g0: f32,       // normalised 1-D Gaussian weights at distance 0..3
  g1: f32,
  g2: f32,
  g3: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;
@group(0) @binding(4) var<storage, read_write> b4: array<f32>;
@group(0) @binding(5) var<storage, read_write> b5: array<f32>;

const TAN_22_5: f32 = 0.41421356237309503;

fn cx(x: i32) -> i32 {
  return clamp(x, 0, params.w - 1);
}

fn cy(y: i32) -> i32 {
  return clamp(y, 0, params.h - 1);
}

// luma: b1 frames [T,3,H,W], b2 previous frame [3,H,W] (any buffer when has_prev = 0), b3 p.
@compute @workgroup_size(16, 4, 1)
fn luma(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x = i32(gid.x);
  let y = i32(gid.y);
  let f = i32(gid.z);
  if (x >= params.w || y >= params.h || f >= params.frames) { return; }
  let n = params.w * params.h;
  let i = y * params.w + x;
  var r: f32;
  var g: f32;
  var b: f32;
  if (params.has_prev == 1 && f == 0) {
    r = b2[i];
    g = b2[n + i];
    b = b2[2 * n + i];
  } else {
    let base = (f - params.has_prev) * 3 * n + i;
    r = b1[base];
    g = b1[base + n];
    b = b1[base + 2 * n];
  }
  b3[f * n + i] = 255.0 * ((0.299 * r + 0.587 * g) + 0.114 * b);
}

const BGW = array<f32, 25>(
  1.0, 1.0, 1.0, 1.0, 1.0,
  1.0, 2.0, 2.0, 2.0, 1.0,
  1.0, 2.0, 0.0, 2.0, 1.0,
  1.0, 2.0, 2.0, 2.0, 1.0,
  1.0, 1.0, 1.0, 1.0, 1.0,
);

const G1 = array<f32, 25>(
  0.0, 0.0, 0.0, 0.0, 0.0,
  1.0, 3.0, 8.0, 3.0, 1.0,
  0.0, 0.0, 0.0, 0.0, 0.0,
  -1.0, -3.0, -8.0, -3.0, -1.0,
  0.0, 0.0, 0.0, 0.0, 0.0,
);

const G2 = array<f32, 25>(
  0.0, 0.0, 1.0, 0.0, 0.0,
  0.0, 8.0, 3.0, 0.0, 0.0,
  1.0, 3.0, 0.0, -3.0, -1.0,
  0.0, 0.0, -3.0, -8.0, 0.0,
  0.0, 0.0, -1.0, 0.0, 0.0,
);

const G3 = array<f32, 25>(
  0.0, 0.0, 1.0, 0.0, 0.0,
  0.0, 0.0, 3.0, 8.0, 0.0,
  -1.0, -3.0, 0.0, 3.0, 1.0,
  0.0, -8.0, -3.0, 0.0, 0.0,
  0.0, 0.0, -1.0, 0.0, 0.0,
);

const G4 = array<f32, 25>(
  0.0, 1.0, 0.0, -1.0, 0.0,
  0.0, 3.0, 0.0, -3.0, 0.0,
  0.0, 8.0, 0.0, -8.0, 0.0,
  0.0, 3.0, 0.0, -3.0, 0.0,
  0.0, 1.0, 0.0, -1.0, 0.0,
);

// features: b1 p -> b2 bg, b3 mg, b4 Sobel L1 magnitude, b5 sector (when EDGES is true).
@compute @workgroup_size(16, 4, 1)
fn features(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x = i32(gid.x);
  let y = i32(gid.y);
  let f = i32(gid.z);
  if (x >= params.w || y >= params.h || f >= params.frames) { return; }
  let w = params.w;
  let base = f * w * params.h;
  var win: array<f32, 25>;
  for (var ky = 0; ky < 5; ky++) {
    let row = base + cy(y + ky - 2) * w;
    for (var kx = 0; kx < 5; kx++) {
      win[ky * 5 + kx] = b1[row + cx(x + kx - 2)];
    }
  }
  var acc = 0.0;
  var d1 = 0.0;
  var d2 = 0.0;
  var d3 = 0.0;
  var d4 = 0.0;
  for (var k = 0; k < 25; k++) {
    let q = win[k];
    acc = acc + BGW[k] * q;
    d1 = d1 + G1[k] * q;
    d2 = d2 + G2[k] * q;
    d3 = d3 + G3[k] * q;
    d4 = d4 + G4[k] * q;
  }
  let i = base + y * w + x;
  b2[i] = acc / 32.0;
  b3[i] = max(max(abs(d1), abs(d2)), max(abs(d3), abs(d4))) / 16.0;
  if ({{EDGES|true}}) {
    // Sobel on the inner 3x3 of the window (centre at 12); columns and rows summed as
    // (top + 2 * middle) + bottom, the order the reference mirrors.
    let cr = (win[8] + 2.0 * win[13]) + win[18];
    let cl = (win[6] + 2.0 * win[11]) + win[16];
    let rb = (win[16] + 2.0 * win[17]) + win[18];
    let rt = (win[6] + 2.0 * win[7]) + win[8];
    let gx = cr - cl;
    let gy = rb - rt;
    let ax = abs(gx);
    let ay = abs(gy);
    b4[i] = ax + ay;
    var sector = 3.0;
    if (ay <= TAN_22_5 * ax) {
      sector = 0.0;
    } else if (ax <= TAN_22_5 * ay) {
      sector = 1.0;
    } else if ((gx > 0.0) == (gy > 0.0)) {
      sector = 2.0;
    }
    b5[i] = sector;
  }
}

// nms: b1 magnitude, b2 sector -> b3 code (0 none, 1 weak, 2 strong).
@compute @workgroup_size(16, 4, 1)
fn nms(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x = i32(gid.x);
  let y = i32(gid.y);
  let f = i32(gid.z);
  if (x >= params.w || y >= params.h || f >= params.frames) { return; }
  let w = params.w;
  let base = f * w * params.h;
  let i = base + y * w + x;
  let m = b1[i];
  let s = i32(b2[i]);
  var dy = 0;
  var dx = 1;
  if (s == 1) {
    dy = 1;
    dx = 0;
  } else if (s == 2) {
    dy = 1;
    dx = 1;
  } else if (s == 3) {
    dy = -1;
    dx = 1;
  }
  let before = b1[base + cy(y - dy) * w + cx(x - dx)];
  let after = b1[base + cy(y + dy) * w + cx(x + dx)];
  var code = 0.0;
  if (m > before && m >= after) {
    if (m > params.edge_high) {
      code = 2.0;
    } else if (m > params.edge_low) {
      code = 1.0;
    }
  }
  b3[i] = code;
}

// edges: b1 codes -> b2 dilated edge map (0 or 1). A pixel is an edge when strong, or weak with
// a strong 8-neighbour; the map is then dilated with a 3x3 square.
@compute @workgroup_size(16, 4, 1)
fn edges(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x = i32(gid.x);
  let y = i32(gid.y);
  let f = i32(gid.z);
  if (x >= params.w || y >= params.h || f >= params.frames) { return; }
  let w = params.w;
  let base = f * w * params.h;
  // Replicate borders apply to each stage's own input: a dilation tap is a clamped pixel, and
  // its hysteresis neighbours are clamped around that pixel.
  var on = 0.0;
  for (var dy = -1; dy <= 1; dy++) {
    let yy = cy(y + dy);
    for (var dx = -1; dx <= 1; dx++) {
      let xx = cx(x + dx);
      let v = b1[base + yy * w + xx];
      if (v == 2.0) {
        on = 1.0;
      } else if (v == 1.0) {
        for (var qy = -1; qy <= 1; qy++) {
          let row = base + cy(yy + qy) * w;
          for (var qx = -1; qx <= 1; qx++) {
            if (b1[row + cx(xx + qx)] == 2.0) { on = 1.0; }
          }
        }
      }
    }
  }
  b2[base + y * w + x] = on;
}

fn gauss(d: i32) -> f32 {
  switch (abs(d)) {
    case 0: { return params.g0; }
    case 1: { return params.g1; }
    case 2: { return params.g2; }
    default: { return params.g3; }
  }
}

fn lum_adapt(bg: f32) -> f32 {
  if (bg <= 127.0) {
    return 17.0 * (1.0 - sqrt(bg / 127.0)) + 3.0;
  }
  return (3.0 / 128.0) * (bg - 127.0) + 3.0;
}

fn temporal_factor(ild: f32) -> f32 {
  let k = -0.15 / (2.0 * 3.14159265358979);
  if (ild <= 0.0) {
    return max(0.8, 4.0 * exp(k * (ild + 255.0)) + 0.8);
  }
  return max(0.8, 1.6 * exp(k * (255.0 - ild)) + 0.8);
}

// combine: b1 p, b2 bg, b3 mg, b4 edges (unused by chou-li) -> b5 JND [T,H,W] / 255.
// params.frames = output frames T; input map frame of output f is f + has_prev.
@compute @workgroup_size(16, 4, 1)
fn combine(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x = i32(gid.x);
  let y = i32(gid.y);
  let f = i32(gid.z);
  if (x >= params.w || y >= params.h || f >= params.frames) { return; }
  let w = params.w;
  let n = w * params.h;
  let fi = f + params.has_prev;
  let base = fi * n;
  let i = base + y * w + x;
  let bg = b2[i];
  let mg = b3[i];
  let tl = lum_adapt(bg);
  let alpha = 0.0001 * bg + 0.115;
  let beta = 0.5 - 0.01 * bg;
  var jnd: f32;
  if ({{MODEL|1}} == 0) {
    jnd = max(tl, alpha * mg + beta);
  } else {
    var s = 0.0;
    for (var dy = -3; dy <= 3; dy++) {
      let row = base + cy(y + dy) * w;
      var rs = 0.0;
      for (var dx = -3; dx <= 3; dx++) {
        rs = rs + gauss(dx) * b4[row + cx(x + dx)];
      }
      s = s + gauss(dy) * rs;
    }
    let wt = 1.0 - 0.95 * s;
    let tt = max(0.0, alpha * mg * wt + beta);
    jnd = tl + tt - 0.3 * min(tl, tt);
    if ({{MODEL|1}} == 2 && fi >= 1) {
      let ild = 0.5 * ((b1[i] - b1[i - n]) + (bg - b2[i - n]));
      jnd = jnd * temporal_factor(ild);
    }
  }
  b5[f * n + y * w + x] = jnd / 255.0;
}
