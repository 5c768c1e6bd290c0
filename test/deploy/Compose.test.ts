/**
 * The production compose file and the image it builds. `docker-compose config` (Debian's
 * docker-compose, no engine needed) validates the compose file where the binary exists; elsewhere
 * that check is registered as skipped and the reason printed. The rest needs no Docker at all.
 */
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { decodeProvidersFile } from "../../src/providers/ProviderConfig.js"

const root = fileURLToPath(new URL("../../", import.meta.url))
const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8")

/** Debian's docker-compose v1 by default; DOCKER_COMPOSE names another binary. */
const BIN = process.env.DOCKER_COMPOSE ?? "docker-compose"

const compose = (...args: ReadonlyArray<string>) =>
  spawnSync(BIN, ["-f", "docker-compose.yml", ...args], {
    cwd: root,
    encoding: "utf8",
    timeout: 60_000
  })

const probe = compose("version")
const noCompose: string | undefined =
  probe.error !== undefined
    ? `${BIN} is not installed (${probe.error.message}); apt-get install docker-compose`
    : probe.status !== 0
      ? `${BIN} does not run: ${probe.stderr.trim()}`
      : undefined

if (noCompose === undefined) {
  describe("docker-compose.yml", () => {
    it("is valid for docker-compose config", () => {
      const result = compose("config", "-q")
      expect(result.stderr).toBe("")
      expect(result.status).toBe(0)
    })

    it("has the four services", () => {
      const result = compose("config", "--services")
      expect(result.status).toBe(0)
      expect(result.stdout.trim().split("\n").sort()).toEqual(["esdb", "gateway", "nats", "simulator"])
    })
  })
} else {
  console.warn(`SKIPPED "docker-compose.yml": ${noCompose}`)
  describe.skip(`docker-compose.yml [skipped: ${noCompose}]`, () => {
    it("is valid for docker-compose config", () => {})
    it("has the four services", () => {})
  })
}

describe("deployment files", () => {
  it("the compose providers file is a valid providers file naming the simulator's credentials", () => {
    const decoded = decodeProvidersFile(
      JSON.parse(read("deploy/providers.compose.json")),
      "providers.compose.json"
    )
    expect(Either.isRight(decoded)).toBe(true)
    const file = read("docker-compose.yml")
    for (const variable of [
      "SIM_API_KEY",
      "SIM_WEBHOOK_SECRET",
      "NATS_URL",
      "EVENT_STORE: esdb",
      "ESDB_URL"
    ]) {
      expect(file).toContain(variable)
    }
  })

  it("the image is multi-stage, compiled, runs as node with a healthcheck, and starts the gateway", () => {
    const dockerfile = read("Dockerfile")
    expect(dockerfile.match(/^FROM /gm)).toHaveLength(3)
    expect(dockerfile).toMatch(/^RUN npm run build$/m)
    expect(dockerfile).toContain("COPY --from=build /app/dist ./dist")
    expect(dockerfile).toMatch(/npm install --omit=dev/)
    expect(dockerfile).toMatch(/^USER node$/m)
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\n?.*\/health/m)
    expect(dockerfile).toContain(
      'CMD ["node", "--max-semi-space-size=32", "--min-semi-space-size=16", "bin/sms-gateway.mjs", "start", "--host", "0.0.0.0"]'
    )
  })

  it("nats persists JetStream on its file store with the durability setting documented", () => {
    const conf = read("deploy/nats.conf")
    expect(conf).toMatch(/store_dir: \/data/)
    expect(conf).toMatch(/sync_interval: always/)
  })
})
