/**
 * The import rules (`.dependency-cruiser.cjs`, run by dependency-cruiser's own command line): the
 * gateway's code follows them, and a wrong arrow fails, named by its rule.
 */
import { spawnSync } from "node:child_process"
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { describe, expect, it } from "vitest"

const root = resolve(import.meta.dirname, "../..")
const depcruise = join(root, "node_modules", ".bin", "depcruise")

interface Violation {
  readonly from: string
  readonly to: string
  readonly rule: { readonly name: string }
}

/** The violations the rule file finds in `cwd`'s `src/`. */
const violationsIn = (cwd: string): ReadonlyArray<{ from: string; to: string; rule: string }> => {
  const run = spawnSync(depcruise, ["src", "--config", ".dependency-cruiser.cjs", "--output-type", "json"], {
    cwd,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024
  })
  expect(run.stdout, run.stderr).not.toBe("")
  const result = JSON.parse(run.stdout) as { summary: { violations: ReadonlyArray<Violation> } }
  return result.summary.violations.map((v) => ({ from: v.from, to: v.to, rule: v.rule.name }))
}

describe("imports run one way", () => {
  it("domain <- platform <- features <- edges <- main <- cli: no violation in src/", () => {
    expect(violationsIn(root)).toEqual([])
  }, 60_000)

  it("fails on a wrong arrow, naming its rule", () => {
    const dir = mkdtempSync(join(tmpdir(), "imports-"))
    try {
      const write = (path: string, text: string) => {
        mkdirSync(dirname(join(dir, path)), { recursive: true })
        writeFileSync(join(dir, path), text)
      }
      copyFileSync(join(root, ".dependency-cruiser.cjs"), join(dir, ".dependency-cruiser.cjs"))
      copyFileSync(join(root, "tsconfig.json"), join(dir, "tsconfig.json"))
      // a feature reaching up into an edge, and the domain into the platform
      write("src/http/Api.ts", "export const api = 1\n")
      write("src/platform/PublicUrl.ts", "export const url = 'http://localhost'\n")
      write("src/dispatch/ProviderActor.ts", "import { api } from '../http/Api.js'\nexport const a = api\n")
      write("src/domain/Ids.ts", "import { url } from '../platform/PublicUrl.js'\nexport const b = url\n")
      // and two modules importing each other
      write("src/messages/A.ts", "import { b } from './B.js'\nexport const a = () => b\n")
      write("src/messages/B.ts", "import { a } from './A.js'\nexport const b = () => a\n")
      const found = violationsIn(dir)
      expect(found).toContainEqual({
        from: "src/dispatch/ProviderActor.ts",
        to: "src/http/Api.ts",
        rule: "features-below-edges"
      })
      expect(found).toContainEqual({
        from: "src/domain/Ids.ts",
        to: "src/platform/PublicUrl.ts",
        rule: "domain-is-pure"
      })
      expect(found.filter((v) => v.rule === "no-circular").length).toBeGreaterThan(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
