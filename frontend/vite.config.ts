// Vite build of the fraudnet link chart: static assets into fraudnet/viz/static, served by the API under /ui.
import { defineConfig } from "vite";
import { fileURLToPath } from "node:url";

export default defineConfig({
  base: "/ui/",
  build: {
    outDir: fileURLToPath(new URL("../fraudnet/viz/static", import.meta.url)),
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: process.env.FRAUDNET_SOURCEMAP === "1",
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: { "/api": process.env.FRAUDNET_API ?? "http://127.0.0.1:8000" },
  },
});
