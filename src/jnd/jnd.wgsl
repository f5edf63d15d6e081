// Just-noticeable-difference maps (formulas: docs/jnd.md), driven by src/jnd/mod.ts.
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
//   blur_rows dilated edge -> horizontal 7-tap Gaussian (the vertical taps are in combine)
//   complexity (wu2017) orientation labels -> distinct labels in 3x3
//   combine   p, bg, mg, blurred edges (+ contrast, complexity) -> JND / 255 for model MODEL
//             (0 chou-li, 1 namm, 2 namm-st, 3 wu2017)
//
// Specialisation: WGX, WGY (workgroup size), EDGES (features: also the Sobel outputs), WU
// (features: also the wu2017 contrast and orientation label), WU_PASSED and WU_G2MIN (the
// orientation-bin test and gradient threshold), MODEL, G0..G3 (the normalised Gaussian weights
// at distance 0..3), CW0 and CW1 (the wu2017 3x3 complexity Gaussian).
//
// The order of every float operation that a comparison depends on (luma, bg, Sobel, ild) is
// mirrored by the float32 steps of src/jnd/reference.ts; keep the two in step.

struct Params {
  w: i32,
  h: i32,
  frames: i32,   // frames in the input maps (luma .. blur_rows), output frames (combine)
  has_prev: i32, // 1 when map frame 0 is the previous frame
  edge_low: f32,
  edge_high: f32,
}

// Bindings (JND in src/jnd/mod.ts): params, then b1 .. b7 (f32 arrays; roles per entry point).

const TAN_22_5: f32 = 0.41421356237309503;

fn cx(x: i32) -> i32 {
  return clamp(x, 0, params.w - 1);
}

fn cy(y: i32) -> i32 {
  return clamp(y, 0, params.h - 1);
}

// Every kernel below except heatmap computes four horizontally adjacent pixels x0 .. x0 + 3 per
// invocation, as the lanes of vec4 values (lavapipe runs invocations as SIMD lanes; fewer, wider
// invocations share index arithmetic and loads). Per lane, the arithmetic is the scalar formula.
// Reads clamp columns, so lanes past the row end read valid memory; only lanes inside the row
// (n_valid) are stored.

fn lane_count(x0: i32) -> i32 {
  return min(4, params.w - x0);
}

// Four values of row `r` (a flat offset of column 0) at columns x0 - k + 0..3, clamped.
fn load4(r: i32, x0: i32, k: i32) -> vec4<f32> {
  return vec4<f32>(b1[r + cx(x0 - k)], b1[r + cx(x0 - k + 1)], b1[r + cx(x0 - k + 2)],
    b1[r + cx(x0 - k + 3)]);
}

// luma: b1 frames [T,3,H,W], b2 previous frame [3,H,W] (any buffer when has_prev = 0), b3 p.
@compute @workgroup_size({{WGX|16}}, {{WGY|4}}, 1)
fn luma(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x0 = i32(gid.x) * 4;
  let y = i32(gid.y);
  let f = i32(gid.z);
  if (x0 >= params.w || y >= params.h || f >= params.frames) { return; }
  let n = params.w * params.h;
  let row = y * params.w;
  var r: vec4<f32>;
  var g: vec4<f32>;
  var b: vec4<f32>;
  if (params.has_prev == 1 && f == 0) {
    for (var j = 0; j < 4; j++) {
      let i = row + cx(x0 + j);
      r[j] = b2[i];
      g[j] = b2[n + i];
      b[j] = b2[2 * n + i];
    }
  } else {
    let base = (f - params.has_prev) * 3 * n + row;
    r = load4(base, x0, 0);
    g = load4(base + n, x0, 0);
    b = load4(base + 2 * n, x0, 0);
  }
  let v = 255.0 * ((0.299 * r + 0.587 * g) + 0.114 * b);
  store_b3(f * n + row + x0, lane_count(x0), v);
}

// Eight consecutive values of a row, from column x0 - 2, columns clamped (replicate border).
struct Row8 {
  lo: vec4<f32>,
  hi: vec4<f32>,
}

fn row8(buf_row: i32, x0: i32) -> Row8 {
  return Row8(
    vec4<f32>(b1[buf_row + cx(x0 - 2)], b1[buf_row + cx(x0 - 1)], b1[buf_row + cx(x0)],
      b1[buf_row + cx(x0 + 1)]),
    vec4<f32>(b1[buf_row + cx(x0 + 2)], b1[buf_row + cx(x0 + 3)], b1[buf_row + cx(x0 + 4)],
      b1[buf_row + cx(x0 + 5)]),
  );
}

// Columns offset k = 0..4 (x - 2 .. x + 2) for the four outputs x0 .. x0 + 3.
fn tap0(r: Row8) -> vec4<f32> { return r.lo; }
fn tap1(r: Row8) -> vec4<f32> { return vec4<f32>(r.lo.yzw, r.hi.x); }
fn tap2(r: Row8) -> vec4<f32> { return vec4<f32>(r.lo.zw, r.hi.xy); }
fn tap3(r: Row8) -> vec4<f32> { return vec4<f32>(r.lo.w, r.hi.xyz); }
fn tap4(r: Row8) -> vec4<f32> { return r.hi; }

fn store_b2(i: i32, nv: i32, v: vec4<f32>) {
  for (var j = 0; j < 4; j++) {
    if (j < nv) { b2[i + j] = v[j]; }
  }
}

fn store_b3(i: i32, nv: i32, v: vec4<f32>) {
  for (var j = 0; j < 4; j++) {
    if (j < nv) { b3[i + j] = v[j]; }
  }
}

fn store_b4(i: i32, nv: i32, v: vec4<f32>) {
  for (var j = 0; j < 4; j++) {
    if (j < nv) { b4[i + j] = v[j]; }
  }
}

fn store_b5(i: i32, nv: i32, v: vec4<f32>) {
  for (var j = 0; j < 4; j++) {
    if (j < nv) { b5[i + j] = v[j]; }
  }
}

fn store_b6(i: i32, nv: i32, v: vec4<f32>) {
  for (var j = 0; j < 4; j++) {
    if (j < nv) { b6[i + j] = v[j]; }
  }
}

fn store_b7(i: i32, nv: i32, v: vec4<f32>) {
  for (var j = 0; j < 4; j++) {
    if (j < nv) { b7[i + j] = v[j]; }
  }
}

// features: b1 p -> b2 bg, b3 mg, b4 Sobel L1 magnitude, b5 sector (when EDGES is true), and
// for wu2017 (WU true) b6 luminance contrast (5x5 standard deviation) and b7 orientation label
// (0..14, 15 for a smooth pixel).
// Each invocation computes four horizontally adjacent pixels x0 .. x0 + 3 as the lanes of vec4
// values (a 5x8 window instead of four 5x5 ones); q<row><col> is the window at offset (row - 2,
// col - 2) for all four lanes, centre q22. Per lane the arithmetic is the scalar formula, in the
// order the reference mirrors.
@compute @workgroup_size({{WGX|16}}, {{WGY|4}}, 1)
fn features(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x0 = i32(gid.x) * 4;
  let y = i32(gid.y);
  let f = i32(gid.z);
  if (x0 >= params.w || y >= params.h || f >= params.frames) { return; }
  let w = params.w;
  let base = f * w * params.h;
  let a0 = row8(base + cy(y - 2) * w, x0);
  let a1 = row8(base + cy(y - 1) * w, x0);
  let a2 = row8(base + y * w, x0);
  let a3 = row8(base + cy(y + 1) * w, x0);
  let a4 = row8(base + cy(y + 2) * w, x0);
  let q00 = tap0(a0); let q01 = tap1(a0); let q02 = tap2(a0); let q03 = tap3(a0); let q04 = tap4(a0);
  let q10 = tap0(a1); let q11 = tap1(a1); let q12 = tap2(a1); let q13 = tap3(a1); let q14 = tap4(a1);
  let q20 = tap0(a2); let q21 = tap1(a2); let q22 = tap2(a2); let q23 = tap3(a2); let q24 = tap4(a2);
  let q30 = tap0(a3); let q31 = tap1(a3); let q32 = tap2(a3); let q33 = tap3(a3); let q34 = tap4(a3);
  let q40 = tap0(a4); let q41 = tap1(a4); let q42 = tap2(a4); let q43 = tap3(a4); let q44 = tap4(a4);
  // Background luminance: weights B summed row by row, left to right (the reference's order).
  var acc = q00 + q01;
  acc = acc + q02;
  acc = acc + q03;
  acc = acc + q04;
  acc = acc + q10;
  acc = acc + 2.0 * q11;
  acc = acc + 2.0 * q12;
  acc = acc + 2.0 * q13;
  acc = acc + q14;
  acc = acc + q20;
  acc = acc + 2.0 * q21;
  acc = acc + 2.0 * q23;
  acc = acc + q24;
  acc = acc + q30;
  acc = acc + 2.0 * q31;
  acc = acc + 2.0 * q32;
  acc = acc + 2.0 * q33;
  acc = acc + q34;
  acc = acc + q40;
  acc = acc + q41;
  acc = acc + q42;
  acc = acc + q43;
  acc = acc + q44;
  // Maximum weighted gradient over G1..G4.
  let d1 = (q10 + 3.0 * q11 + 8.0 * q12 + 3.0 * q13 + q14) - (q30 + 3.0 * q31 + 8.0 * q32 + 3.0 * q33 + q34);
  let d2 = q02 + 8.0 * q11 + 3.0 * q12 + q20 + 3.0 * q21 - 3.0 * q23 - q24 - 3.0 * q32 - 8.0 * q33 - q42;
  let d3 = q02 + 3.0 * q12 + 8.0 * q13 - q20 - 3.0 * q21 + 3.0 * q23 + q24 - 8.0 * q31 - 3.0 * q32 - q42;
  let d4 = (q01 + 3.0 * q11 + 8.0 * q21 + 3.0 * q31 + q41) - (q03 + 3.0 * q13 + 8.0 * q23 + 3.0 * q33 + q43);
  let i = base + y * w + x0;
  let nv = min(4, w - x0);
  store_b2(i, nv, acc / 32.0);
  store_b3(i, nv, max(max(abs(d1), abs(d2)), max(abs(d3), abs(d4))) / 16.0);
  if ({{EDGES|true}}) {
    // Sobel on the inner 3x3; columns and rows summed as (top + 2 * middle) + bottom, the order
    // the reference mirrors.
    let gx = ((q13 + 2.0 * q23) + q33) - ((q11 + 2.0 * q21) + q31);
    let gy = ((q31 + 2.0 * q32) + q33) - ((q11 + 2.0 * q12) + q13);
    let ax = abs(gx);
    let ay = abs(gy);
    store_b4(i, nv, ax + ay);
    // Sector: 0 when ay <= tan(22.5) ax, else 1 when ax <= tan(22.5) ay, else 2 when gx and gy
    // have the same sign, else 3.
    var sector = select(vec4<f32>(3.0), vec4<f32>(2.0), (gx > vec4<f32>(0.0)) == (gy > vec4<f32>(0.0)));
    sector = select(sector, vec4<f32>(1.0), ax <= TAN_22_5 * ay);
    sector = select(sector, vec4<f32>(0.0), ay <= TAN_22_5 * ax);
    store_b5(i, nv, sector);
  }
  if ({{WU|false}}) {
    let mean = (q00 + q01 + q02 + q03 + q04 + q10 + q11 + q12 + q13 + q14 + q20 + q21 + q22 +
      q23 + q24 + q30 + q31 + q32 + q33 + q34 + q40 + q41 + q42 + q43 + q44) / 25.0;
    var ss = sq(q00 - mean) + sq(q01 - mean) + sq(q02 - mean) + sq(q03 - mean) + sq(q04 - mean);
    ss = ss + sq(q10 - mean) + sq(q11 - mean) + sq(q12 - mean) + sq(q13 - mean) + sq(q14 - mean);
    ss = ss + sq(q20 - mean) + sq(q21 - mean) + sq(q22 - mean) + sq(q23 - mean) + sq(q24 - mean);
    ss = ss + sq(q30 - mean) + sq(q31 - mean) + sq(q32 - mean) + sq(q33 - mean) + sq(q34 - mean);
    ss = ss + sq(q40 - mean) + sq(q41 - mean) + sq(q42 - mean) + sq(q43 - mean) + sq(q44 - mean);
    store_b6(i, nv, sqrt(ss / 25.0));
    // Prewitt (three times the gradient), in the order the reference mirrors.
    var px = ((q13 + q23) + q33) - ((q11 + q21) + q31);
    var py = ((q31 + q32) + q33) - ((q11 + q12) + q13);
    let g2 = px * px + py * py;
    // Fold the direction into the upper half-plane (orientation mod 180 degrees).
    let flip = py < vec4<f32>(0.0) | (py == vec4<f32>(0.0) & px < vec4<f32>(0.0));
    px = select(px, -px, flip);
    py = select(py, -py, flip);
    let zero = vec4<f32>(0.0);
    let one = vec4<f32>(1.0);
    // Boundaries passed (gy cos b > gx sin b for b = 6, 18, .., 174 degrees), from src/jnd/mod.ts.
    let passed = {{WU_PASSED|zero}};
    let bin = select(passed, zero, passed == vec4<f32>(15.0));
    store_b7(i, nv, select(bin, vec4<f32>(15.0), g2 < vec4<f32>({{WU_G2MIN|225.0}})));
  }
}

fn sq(v: vec4<f32>) -> vec4<f32> {
  return v * v;
}

// complexity: b1 labels -> b2 pattern complexity count: the number of distinct labels in the
// 3x3 neighbourhood, 1 when the centre is smooth (label 15).
@compute @workgroup_size({{WGX|16}}, {{WGY|4}}, 1)
fn complexity(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x0 = i32(gid.x) * 4;
  let y = i32(gid.y);
  let f = i32(gid.z);
  if (x0 >= params.w || y >= params.h || f >= params.frames) { return; }
  let w = params.w;
  let base = f * w * params.h;
  let nv = lane_count(x0);
  for (var j = 0; j < 4; j++) {
    if (j < nv) {
      let x = x0 + j;
      var mask = 0u;
      for (var dy = -1; dy <= 1; dy++) {
        let row = base + cy(y + dy) * w;
        for (var dx = -1; dx <= 1; dx++) {
          mask = mask | (1u << u32(b1[row + cx(x + dx)]));
        }
      }
      let centre = b1[base + y * w + x];
      b2[base + y * w + x] = select(f32(countOneBits(mask)), 1.0, centre == 15.0);
    }
  }
}

// nms: b1 magnitude, b2 sector -> b3 code (0 none, 1 weak, 2 strong).
@compute @workgroup_size({{WGX|16}}, {{WGY|4}}, 1)
fn nms(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x0 = i32(gid.x) * 4;
  let y = i32(gid.y);
  let f = i32(gid.z);
  if (x0 >= params.w || y >= params.h || f >= params.frames) { return; }
  let w = params.w;
  let base = f * w * params.h;
  let nv = lane_count(x0);
  for (var j = 0; j < 4; j++) {
    if (j < nv) {
      let x = x0 + j;
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
  }
}

// Horizontal 3-maxima of a Row8, centred at x - 1 (m), x (c) and x + 1 (p) for each lane x.
struct HMax {
  m: vec4<f32>,
  c: vec4<f32>,
  p: vec4<f32>,
}

fn hmax3(r: Row8) -> HMax {
  let t1 = tap1(r);
  let t2 = tap2(r);
  let t3 = tap3(r);
  return HMax(max(max(tap0(r), t1), t2), max(max(t1, t2), t3), max(max(t2, t3), tap4(r)));
}

// One dilation tap: the pixel is an edge (code >= 1 with a strong code in its 3x3, s == 2).
fn tap_edge(code: vec4<f32>, s: vec4<f32>) -> vec4<f32> {
  return select(vec4<f32>(0.0), vec4<f32>(1.0), code >= vec4<f32>(1.0) & s == vec4<f32>(2.0));
}

// edges: b1 codes -> b2 dilated edge map (0 or 1). A pixel is an edge when strong, or weak with a
// strong 8-neighbour (one-step hysteresis: code >= 1 and the 3x3 maximum of the codes is 2); the
// map is then dilated with a 3x3 square. Both in one pass over a 5x8 window of codes (rows and
// columns clamped). Around a dilation tap inside the image, the window's 3x3 is exactly that
// pixel's clamped 3x3. A tap outside the image stands for the border pixel next to it (the
// centre row or column), and its window 3x3 is a subset of that pixel's 3x3, so it can only
// repeat that pixel's verdict or say "no edge": the maximum is unchanged.
@compute @workgroup_size({{WGX|16}}, {{WGY|4}}, 1)
fn edges(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x0 = i32(gid.x) * 4;
  let y = i32(gid.y);
  let f = i32(gid.z);
  if (x0 >= params.w || y >= params.h || f >= params.frames) { return; }
  let w = params.w;
  let base = f * w * params.h;
  let a0 = row8(base + cy(y - 2) * w, x0);
  let a1 = row8(base + cy(y - 1) * w, x0);
  let a2 = row8(base + y * w, x0);
  let a3 = row8(base + cy(y + 1) * w, x0);
  let a4 = row8(base + cy(y + 2) * w, x0);
  let h0 = hmax3(a0);
  let h1 = hmax3(a1);
  let h2 = hmax3(a2);
  let h3 = hmax3(a3);
  let h4 = hmax3(a4);
  // Taps in row y - 1 (codes a1, neighbourhood rows a0..a2), y (a2; a1..a3), y + 1 (a3; a2..a4).
  var d = tap_edge(tap1(a1), max(max(h0.m, h1.m), h2.m));
  d = max(d, tap_edge(tap2(a1), max(max(h0.c, h1.c), h2.c)));
  d = max(d, tap_edge(tap3(a1), max(max(h0.p, h1.p), h2.p)));
  d = max(d, tap_edge(tap1(a2), max(max(h1.m, h2.m), h3.m)));
  d = max(d, tap_edge(tap2(a2), max(max(h1.c, h2.c), h3.c)));
  d = max(d, tap_edge(tap3(a2), max(max(h1.p, h2.p), h3.p)));
  d = max(d, tap_edge(tap1(a3), max(max(h2.m, h3.m), h4.m)));
  d = max(d, tap_edge(tap2(a3), max(max(h2.c, h3.c), h4.c)));
  d = max(d, tap_edge(tap3(a3), max(max(h2.p, h3.p), h4.p)));
  store_b2(base + y * w + x0, lane_count(x0), d);
}

// Normalised Gaussian weights at distance 0..3 (sigma 0.8), filled in by src/jnd/mod.ts.
const GW0: f32 = {{G0|0.0}};
const GW1: f32 = {{G1|0.0}};
const GW2: f32 = {{G2|0.0}};
const GW3: f32 = {{G3|0.0}};

// blur_rows: b1 dilated edges -> b2 horizontal 7-tap Gaussian of them.
@compute @workgroup_size({{WGX|16}}, {{WGY|4}}, 1)
fn blur_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x0 = i32(gid.x) * 4;
  let y = i32(gid.y);
  let f = i32(gid.z);
  if (x0 >= params.w || y >= params.h || f >= params.frames) { return; }
  let r = f * params.w * params.h + y * params.w;
  let a = load4(r, x0, 3); // columns x0 - 3 .. x0
  let b = load4(r, x0, -1); // x0 + 1 .. x0 + 4
  let c = vec2<f32>(b1[r + cx(x0 + 5)], b1[r + cx(x0 + 6)]);
  let s = GW3 * a + GW2 * vec4<f32>(a.yzw, b.x) + GW1 * vec4<f32>(a.zw, b.xy) +
    GW0 * vec4<f32>(a.w, b.xyz) + GW1 * b + GW2 * vec4<f32>(b.yzw, c.x) +
    GW3 * vec4<f32>(b.zw, c);
  store_b2(r + x0, lane_count(x0), s);
}

fn lum_adapt(bg: vec4<f32>) -> vec4<f32> {
  return select((3.0 / 128.0) * (bg - 127.0) + 3.0, 17.0 * (1.0 - sqrt(bg / 127.0)) + 3.0,
    bg <= vec4<f32>(127.0));
}

fn temporal_factor(ild: vec4<f32>) -> vec4<f32> {
  let k = -0.15 / (2.0 * 3.14159265358979);
  let neg = max(vec4<f32>(0.8), 4.0 * exp(k * (ild + 255.0)) + 0.8);
  let pos = max(vec4<f32>(0.8), 1.6 * exp(k * (255.0 - ild)) + 0.8);
  return select(pos, neg, ild <= vec4<f32>(0.0));
}

// Four values at flat offset r + x0 + 0..3 (columns clamped) of b1 .. b4.
fn at4_b1(r: i32, x0: i32) -> vec4<f32> {
  return vec4<f32>(b1[r + cx(x0)], b1[r + cx(x0 + 1)], b1[r + cx(x0 + 2)], b1[r + cx(x0 + 3)]);
}

fn at4_b2(r: i32, x0: i32) -> vec4<f32> {
  return vec4<f32>(b2[r + cx(x0)], b2[r + cx(x0 + 1)], b2[r + cx(x0 + 2)], b2[r + cx(x0 + 3)]);
}

fn at4_b3(r: i32, x0: i32) -> vec4<f32> {
  return vec4<f32>(b3[r + cx(x0)], b3[r + cx(x0 + 1)], b3[r + cx(x0 + 2)], b3[r + cx(x0 + 3)]);
}

fn at4_b4(r: i32, x0: i32) -> vec4<f32> {
  return vec4<f32>(b4[r + cx(x0)], b4[r + cx(x0 + 1)], b4[r + cx(x0 + 2)], b4[r + cx(x0 + 3)]);
}

fn at4_b6(r: i32, x0: i32) -> vec4<f32> {
  return vec4<f32>(b6[r + cx(x0)], b6[r + cx(x0 + 1)], b6[r + cx(x0 + 2)], b6[r + cx(x0 + 3)]);
}

fn at4_b7(r: i32, x0: i32) -> vec4<f32> {
  return vec4<f32>(b7[r + cx(x0)], b7[r + cx(x0 + 1)], b7[r + cx(x0 + 2)], b7[r + cx(x0 + 3)]);
}

// combine: b1 p, b2 bg, b3 mg, b4 row-blurred dilated edges (unused by chou-li), b6 contrast and
// b7 complexity count (wu2017 only) -> b5 JND [T,H,W] / 255. MODEL 3 is wu2017. params.frames = output frames T; the map frame of output f is f + has_prev.
@compute @workgroup_size({{WGX|16}}, {{WGY|4}}, 1)
fn combine(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x0 = i32(gid.x) * 4;
  let y = i32(gid.y);
  let f = i32(gid.z);
  if (x0 >= params.w || y >= params.h || f >= params.frames) { return; }
  let w = params.w;
  let n = w * params.h;
  let fi = f + params.has_prev;
  let base = fi * n;
  let row = base + y * w;
  let bg = at4_b2(row, x0);
  let mg = at4_b3(row, x0);
  let tl = lum_adapt(bg);
  let alpha = 0.0001 * bg + 0.115;
  let beta = 0.5 - 0.01 * bg;
  var jnd: vec4<f32>;
  if ({{MODEL|1}} == 0) {
    jnd = max(tl, alpha * mg + beta);
  } else if ({{MODEL|1}} == 3) {
    // wu2017: b6 luminance contrast, b7 complexity count (smoothed here by a 3x3 Gaussian).
    let s = GW3 * at4_b4(base + cy(y - 3) * w, x0) + GW2 * at4_b4(base + cy(y - 2) * w, x0) +
      GW1 * at4_b4(base + cy(y - 1) * w, x0) + GW0 * at4_b4(row, x0) +
      GW1 * at4_b4(base + cy(y + 1) * w, x0) + GW2 * at4_b4(base + cy(y + 2) * w, x0) +
      GW3 * at4_b4(base + cy(y + 3) * w, x0);
    let wt = 1.0 - 0.95 * s;
    var pc = vec4<f32>(0.0);
    for (var dy = -1; dy <= 1; dy++) {
      let r = base + cy(y + dy) * w;
      let rs = {{CW1|0.0}} * at4_b7(r, x0 - 1) + {{CW0|0.0}} * at4_b7(r, x0) +
        {{CW1|0.0}} * at4_b7(r, x0 + 1);
      pc = pc + select({{CW1|0.0}}, {{CW0|0.0}}, dy == 0) * rs;
    }
    let cl = at4_b6(row, x0);
    let lc = 1.84 * pow(cl, vec4<f32>(2.4)) / (cl * cl + 676.0);
    let ct = 0.3 * pow(pc, vec4<f32>(2.7)) / (pc * pc + 1.0);
    let vm = max(lc, cl * ct * wt);
    jnd = tl + vm - 0.3 * min(tl, vm);
  } else {
    // Vertical 7-tap Gaussian of the row-blurred edge map.
    let s = GW3 * at4_b4(base + cy(y - 3) * w, x0) + GW2 * at4_b4(base + cy(y - 2) * w, x0) +
      GW1 * at4_b4(base + cy(y - 1) * w, x0) + GW0 * at4_b4(row, x0) +
      GW1 * at4_b4(base + cy(y + 1) * w, x0) + GW2 * at4_b4(base + cy(y + 2) * w, x0) +
      GW3 * at4_b4(base + cy(y + 3) * w, x0);
    let wt = 1.0 - 0.95 * s;
    let tt = max(vec4<f32>(0.0), alpha * mg * wt + beta);
    jnd = tl + tt - 0.3 * min(tl, tt);
    if ({{MODEL|1}} == 2 && fi >= 1) {
      let ild = 0.5 * ((at4_b1(row, x0) - at4_b1(row - n, x0)) + (bg - at4_b2(row - n, x0)));
      jnd = jnd * temporal_factor(ild);
    }
  }
  store_b5(f * n + y * w + x0, lane_count(x0), jnd / 255.0);
}

// heatmap: b1 JND [T,H,W] (levels / 255) -> b2 RGB [T,3,H,W] in [0,1] on an inferno-like ramp,
// piecewise linear through five colours of matplotlib's inferno; edge_low holds 255 / the
// level shown at the top of the ramp.
@compute @workgroup_size({{WGX|16}}, {{WGY|4}}, 1)
fn heatmap(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x = i32(gid.x);
  let y = i32(gid.y);
  let f = i32(gid.z);
  if (x >= params.w || y >= params.h || f >= params.frames) { return; }
  let n = params.w * params.h;
  let i = y * params.w + x;
  let v = clamp(b1[f * n + i] * params.edge_low, 0.0, 1.0) * 4.0;
  let k = min(i32(floor(v)), 3);
  let t = v - f32(k);
  var c0 = vec3<f32>(0.0015, 0.0005, 0.0139);
  var c1 = vec3<f32>(0.2582, 0.0386, 0.4065);
  if (k == 1) {
    c0 = vec3<f32>(0.2582, 0.0386, 0.4065);
    c1 = vec3<f32>(0.7350, 0.2158, 0.3300);
  } else if (k == 2) {
    c0 = vec3<f32>(0.7350, 0.2158, 0.3300);
    c1 = vec3<f32>(0.9783, 0.5570, 0.0350);
  } else if (k == 3) {
    c0 = vec3<f32>(0.9783, 0.5570, 0.0350);
    c1 = vec3<f32>(0.9884, 0.9984, 0.6449);
  }
  let c = mix(c0, c1, t);
  let o = f * 3 * n + i;
  b2[o] = c.x;
  b2[o + n] = c.y;
  b2[o + 2 * n] = c.z;
}
