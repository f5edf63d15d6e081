// Fused ConvGRU gates (PyTorch GRUCell gate order r, z, n, per pixel over channel planes).
//
// Inputs: gx, gh [N, 3C, H, W] (gate pre-activations of the input and hidden convolutions, biases
// included), h [N, C, H, W]. Per element, with gx = [xr | xz | xn] and gh = [hr | hz | hn] along
// the channel axis:
//   r = σ(xr + hr), z = σ(xz + hz), n = tanh(xn + r ⊙ hn), h' = (1 − z) ⊙ n + z ⊙ h
//
// Specialisation: T is the element type of every buffer, `f32` or `vec4<f32>` (src/tensor/ops/
// conv_gru.ts picks vec4 when C*H*W is a multiple of 4, so a vector never straddles two batch
// items). Units below are elements of T.
//
// Indexing: the grid is grid1d(units per batch item, 64) in x/y and N in z, so the batch item is
// gid.z and no invocation divides: within item n, unit u of gate block k of gx/gh sits at
// (3n + k) * U + u, unit u of h at n * U + u. One unit per invocation, no loops.

struct Params {
  units: u32, // U = C*H*W / width of T
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

// Bindings (src/tensor/ops/_kernels.ts): params, then b1 .. b7 (arrays of T).

alias T = {{T|f32}};

fn sig(a: T) -> T {
  return 1.0 / (1.0 + exp(-a));
}

// tanh saturating to ±1 beyond |a| = 15, as elementwise.wgsl (exp-based tanh can overflow to NaN).
fn th(a: T) -> T {
  return select(tanh(a), sign(a), abs(a) > T(15.0));
}

// b4 = h' from gx = b1, gh = b2, h = b3
@compute @workgroup_size(64)
fn gates(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let u = flat_index(gid, nwg, 64u);
  let units = params.units;
  if (u >= units) { return; }
  let ho = gid.z * units + u;
  let go = 3u * gid.z * units + u;
  let r = sig(b1[go] + b2[go]);
  let z = sig(b1[go + units] + b2[go + units]);
  let n = th(b1[go + 2u * units] + r * b2[go + 2u * units]);
  let h = b3[ho];
  b4[ho] = n + z * (h - n);
}

// Backward from g = b4 (gradient of h'), recomputing r, z, n from gx = b1, gh = b2, h = b3:
//   dn = g (1 − z), dz = g (h − n), dh = g z (the direct path only)
//   da_n = dn (1 − n²): dxn = da_n, dhn = r da_n, dr = hn da_n
//   dxr = dhr = dr r (1 − r), dxz = dhz = dz z (1 − z)
// Writes dgx = b5, dgh = b6 [N, 3C, H, W] and dh = b7 [N, C, H, W].
@compute @workgroup_size(64)
fn gates_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let u = flat_index(gid, nwg, 64u);
  let units = params.units;
  if (u >= units) { return; }
  let ho = gid.z * units + u;
  let go = 3u * gid.z * units + u;
  let r = sig(b1[go] + b2[go]);
  let z = sig(b1[go + units] + b2[go + units]);
  let hn = b2[go + 2u * units];
  let n = th(b1[go + 2u * units] + r * hn);
  let h = b3[ho];
  let g = b4[ho];
  let dan = g * (1.0 - z) * (1.0 - n * n);
  let dar = dan * hn * r * (1.0 - r);
  let daz = g * (h - n) * z * (1.0 - z);
  b5[go] = dar;
  b5[go + units] = daz;
  b5[go + 2u * units] = dan;
  b6[go] = dar;
  b6[go + units] = daz;
  b6[go + 2u * units] = dan * r;
  b7[ho] = g * z;
}
