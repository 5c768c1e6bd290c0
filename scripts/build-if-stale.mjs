#!/usr/bin/env node
// `npm start` runs this instead of `npm run build`: the compiler takes about 10 s, and a start after
// nothing changed need not pay it. It builds when dist/ is missing or older than any file of src/,
// tsconfig*.json or package.json (a fresh clone has no dist/: it builds). tsc rewrites every output
// file, so dist/cli/main.js, the file bin/sms-gateway.mjs runs, dates the last build.
import { execFileSync } from "node:child_process"
import { existsSync, readdirSync, statSync } from "node:fs"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const built = `${root}dist/cli/main.js`

const newest = (path) => {
  const stat = statSync(path)
  if (!stat.isDirectory()) return stat.mtimeMs
  let latest = stat.mtimeMs // a deleted source file shows as its folder's change
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(`${path}/${entry}`))
  return latest
}

const inputs = ["src", "package.json", ...readdirSync(root).filter((f) => /^tsconfig.*\.json$/.test(f))]
const stale =
  !existsSync(built) || inputs.some((input) => newest(`${root}${input}`) > statSync(built).mtimeMs)

if (stale) {
  execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, "-p", "tsconfig.build.json"], {
    cwd: root,
    stdio: "inherit"
  })
}
