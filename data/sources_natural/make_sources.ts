/**
 * Rebuilds `data/sources_natural/` from Debian's wallpaper packages (see SOURCES.md for each file's
 * author and licence). The images are committed, so nothing needs the packages at run time; this
 * script only documents and reproduces how they were made:
 *
 * ```sh
 * apt-get install -y mate-backgrounds lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 plasma-workspace-wallpapers
 * deno run --allow-read --allow-write --allow-run=ffmpeg data/sources_natural/make_sources.ts
 * ```
 *
 * Each image is scaled (area averaging) so that its longer side is 1024 pixels (never up), keeping
 * the aspect ratio, and written as JPEG (ffmpeg `-q:v 2`, about quality 90, 4:2:0).
 */

/** Output name (in this folder), Debian package, original path. */
export const SOURCES: readonly [string, string, string][] = [
  ["aqua_drop.jpg", "mate-backgrounds", "/usr/share/backgrounds/mate/nature/Aqua.jpg"],
  ["leaf_veins.jpg", "mate-backgrounds", "/usr/share/backgrounds/mate/nature/Blinds.jpg"],
  ["dune_grass.jpg", "mate-backgrounds", "/usr/share/backgrounds/mate/nature/Dune.jpg"],
  ["orange_flower.jpg", "mate-backgrounds", "/usr/share/backgrounds/mate/nature/FreshFlower.jpg"],
  ["marigold.jpg", "mate-backgrounds", "/usr/share/backgrounds/mate/nature/Garden.jpg"],
  ["green_meadow.jpg", "mate-backgrounds", "/usr/share/backgrounds/mate/nature/GreenMeadow.jpg"],
  ["ladybird.jpg", "mate-backgrounds", "/usr/share/backgrounds/mate/nature/LadyBird.jpg"],
  ["rain_drops.jpg", "mate-backgrounds", "/usr/share/backgrounds/mate/nature/RainDrops.jpg"],
  ["storm_road.jpg", "mate-backgrounds", "/usr/share/backgrounds/mate/nature/Storm.jpg"],
  ["dandelion_seeds.jpg", "mate-backgrounds", "/usr/share/backgrounds/mate/nature/TwoWings.jpg"],
  ["wood_grain.jpg", "mate-backgrounds", "/usr/share/backgrounds/mate/nature/Wood.jpg"],
  ["yellow_flower.jpg", "mate-backgrounds", "/usr/share/backgrounds/mate/nature/YellowFlower.jpg"],
  [
    "bridge_cables.jpg",
    "lomiri-wallpapers-16.04",
    "/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg",
  ],
  ["dragonfly.jpg", "lomiri-wallpapers-16.04", "/usr/share/backgrounds/Dragonfly_by_Bolly.jpg"],
  ["fig_bowl.jpg", "lomiri-wallpapers-16.04", "/usr/share/backgrounds/Picture_0B_by_freespace.jpg"],
  [
    "paint_brushes.jpg",
    "lomiri-wallpapers-16.04",
    "/usr/share/backgrounds/Picture_1A_by_freespace.jpg",
  ],
  ["wine_room.jpg", "lomiri-wallpapers-16.04", "/usr/share/backgrounds/Wine_by_Jakkub_Mede.jpg"],
  [
    "autumn_mountain.jpg",
    "lomiri-wallpapers-16.04",
    "/usr/share/backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg",
  ],
  ["bird_lamps.jpg", "lomiri-wallpapers-16.04", "/usr/share/backgrounds/free_by_Peter_Nerlich.jpg"],
  [
    "dogs_window.jpg",
    "lomiri-wallpapers-16.04",
    "/usr/share/backgrounds/friends_by_Aitzol_Berasategi.jpg",
  ],
  [
    "wall_clock.jpg",
    "lomiri-wallpapers-16.04",
    "/usr/share/backgrounds/greentock_by_Peter_Nerlich.jpg",
  ],
  [
    "forest_stream.jpg",
    "lomiri-wallpapers-16.04",
    "/usr/share/backgrounds/life_by_Aitzol_Berasategi.jpg",
  ],
  [
    "mountain_path.jpg",
    "lomiri-wallpapers-16.04",
    "/usr/share/backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg",
  ],
  [
    "dandelion_field.jpg",
    "lomiri-wallpapers-16.04",
    "/usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg",
  ],
  [
    "mountain_sunset.jpg",
    "lomiri-wallpapers-16.04",
    "/usr/share/backgrounds/sunset_by_Aitzol_Berasategi.jpg",
  ],
  [
    "nuthatch.jpg",
    "lomiri-wallpapers-20.04",
    "/usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg",
  ],
  [
    "jetty_lake.jpg",
    "plasma-workspace-wallpapers",
    "/usr/share/wallpapers/BytheWater/contents/images/2560x1600.jpg",
  ],
  [
    "pier_fog.jpg",
    "plasma-workspace-wallpapers",
    "/usr/share/wallpapers/ColdRipple/contents/images/2560x1600.jpg",
  ],
  [
    "colorful_cups.jpg",
    "plasma-workspace-wallpapers",
    "/usr/share/wallpapers/ColorfulCups/contents/images/2560x1600.jpg",
  ],
  [
    "misty_lake.jpg",
    "plasma-workspace-wallpapers",
    "/usr/share/wallpapers/DarkestHour/contents/images/2560x1600.jpg",
  ],
  [
    "rowing_boats.jpg",
    "plasma-workspace-wallpapers",
    "/usr/share/wallpapers/EveningGlow/contents/images/2560x1600.jpg",
  ],
  [
    "fallen_leaf.jpg",
    "plasma-workspace-wallpapers",
    "/usr/share/wallpapers/FallenLeaf/contents/images/2560x1600.jpg",
  ],
  [
    "building_facade.jpg",
    "plasma-workspace-wallpapers",
    "/usr/share/wallpapers/Grey/contents/images/2560x1600.jpg",
  ],
  [
    "kite_sky.jpg",
    "plasma-workspace-wallpapers",
    "/usr/share/wallpapers/Kite/contents/images/2560x1600.jpg",
  ],
  [
    "moss.jpg",
    "plasma-workspace-wallpapers",
    "/usr/share/wallpapers/OneStandsOut/contents/images/2560x1600.jpg",
  ],
  [
    "forest_path.jpg",
    "plasma-workspace-wallpapers",
    "/usr/share/wallpapers/Path/contents/images/2560x1600.jpg",
  ],
  [
    "summer_night_lake.jpg",
    "plasma-workspace-wallpapers",
    "/usr/share/wallpapers/summer_1am/contents/images/2560x1600.jpg",
  ],
];

/** Longer side of the outputs, in pixels (smaller originals are not scaled up). */
export const MAX_SIDE = 1024;

if (import.meta.main) {
  const outDir = new URL(".", import.meta.url).pathname;
  const scale = `scale=w='if(gte(iw,ih),min(${MAX_SIDE},iw),-2)':` +
    `h='if(gte(iw,ih),-2,min(${MAX_SIDE},ih))':flags=area`;
  for (const [name, pkg, src] of SOURCES) {
    try {
      await Deno.stat(src);
    } catch {
      throw new Error(`${src} is missing: apt-get install -y ${pkg}`);
    }
    const out = `${outDir}${name}`;
    const args = ["-v", "error", "-y", "-i", src, "-vf", scale, "-frames:v", "1"];
    args.push("-pix_fmt", "yuvj420p", "-q:v", "2", out);
    const r = await new Deno.Command("ffmpeg", { args, stdout: "inherit", stderr: "inherit" })
      .output();
    if (!r.success) throw new Error(`ffmpeg failed on ${src}`);
    console.log(`${name} <- ${pkg}: ${src}`);
  }
}
