// The prelude: what every kernel shares. The loader (src/gpu/shaders.ts) puts this file before
// each kernel file, followed by the kernel's binding declarations, which it writes from the
// kernel's TypeScript declaration (`kernel()` in src/gpu/program.ts): binding 0 is
// `params: Params` (a uniform; the kernel file defines `struct Params`), then one storage array
// per declared buffer. Compile errors name the kernel file's own lines.

// Flat index of an invocation in a 1-D range of items laid over a 2-D grid of `wg`-wide
// workgroups (see grid1d in src/gpu/queue.ts).
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>, wg: u32) -> u32 {
  return gid.x + gid.y * nwg.x * wg;
}

// Entry i of up to 8 sizes or strides packed as two vec4s of a Params struct.
fn dim(arr: array<vec4<u32>, 2>, i: u32) -> u32 {
  return arr[i / 4u][i % 4u];
}
