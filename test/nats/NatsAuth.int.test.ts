/**
 * NATS authentication and TLS (issue #12 item 7) against real nats-servers, each configured for one
 * way in: a token, a user and password, an nkey, TLS with a CA (and a client certificate), and
 * operator mode with a `.creds` file. Each server runs with a config file in a temporary folder on a
 * free loopback port, and is stopped by the test's scope. Every check goes through the gateway's own
 * connection (`Nats.connect`, which reads the `NATS_*` settings), so what passes here is what the
 * roles and the CLI do.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { nkeys } from "@nats-io/nats-core"
import { connect } from "@nats-io/transport-node"
import { Deferred, Duration, Effect, Exit, Layer } from "effect"
import { runningGateway, STATE_FILE } from "../../src/cli/Connect.js"
import { Nats, type NatsError } from "../../src/nats/Nats.js"
import {
  AUTH_FILE,
  ensureEmbeddedCredentials,
  forgetEmbeddedCredentials,
  natsAuthFromEnv
} from "../../src/nats/NatsAuth.js"
import { CONFIG_FILE, findNatsServer, startNatsServer } from "../../src/nats/NatsServer.js"
import { freePort, stopProcess } from "../support/gateway.js"

/** The NATS_* variables this suite sets; each test starts with none of them. */
const VARIABLES = [
  "NATS_URL",
  "NATS_TOKEN",
  "NATS_USER",
  "NATS_PASSWORD",
  "NATS_NKEY",
  "NATS_CREDS",
  "NATS_TLS_CA",
  "NATS_TLS_CERT",
  "NATS_TLS_KEY"
] as const

/** Runs `effect` with exactly `vars` among the NATS_* variables, restoring the environment after. */
const withEnv = <A, E, R>(
  vars: Partial<Record<(typeof VARIABLES)[number], string>>,
  effect: Effect.Effect<A, E, R>
) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const saved = Object.fromEntries(VARIABLES.map((name) => [name, process.env[name]]))
      for (const name of VARIABLES) delete process.env[name]
      Object.assign(process.env, vars)
      return saved
    }),
    () => effect,
    (saved) =>
      Effect.sync(() => {
        for (const name of VARIABLES) {
          const value = saved[name]
          if (value === undefined) delete process.env[name]
          else process.env[name] = value
        }
      })
  )

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "sms-gw-auth-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/**
 * A nats-server with JetStream on a free loopback port, configured by `config` (the part about
 * authorization or TLS), stopped with the scope. The URL stays `nats://`: the client upgrades to TLS
 * when the server requires it, and verifies it with `NATS_TLS_CA`.
 */
const natsServer = (dir: string, config: string) =>
  Effect.gen(function* () {
    const port = yield* freePort
    const file = join(dir, "server.conf")
    writeFileSync(
      file,
      `listen: 127.0.0.1:${port}\njetstream { store_dir: "${join(dir, "js")}" }\n${config}\n`,
      { mode: 0o600 }
    )
    let log = ""
    const ready = yield* Deferred.make<void, Error>()
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const child: ChildProcess = spawn(findNatsServer() ?? "nats-server", ["-c", file], {
          stdio: ["ignore", "ignore", "pipe"]
        })
        child.stderr?.on("data", (chunk: Buffer) => {
          if (log.length < 50_000) log += chunk.toString()
          if (log.includes("Server is ready")) Deferred.unsafeDone(ready, Effect.void)
        })
        child.on("exit", (code) =>
          Deferred.unsafeDone(ready, Effect.fail(new Error(`nats-server exited with ${code}:\n${log}`)))
        )
        return child
      }),
      (child) => stopProcess(child, 5_000)
    )
    yield* Deferred.await(ready).pipe(
      Effect.timeoutFail({
        duration: "15 seconds",
        onTimeout: () => new Error(`nats-server did not start:\n${log}`)
      })
    )
    return `nats://127.0.0.1:${port}`
  })

/**
 * One connection attempt through the gateway's own `Nats.connect` (credentials from the NATS_*
 * settings), open for the scope. No reconnects: a refusal is an answer here.
 */
const connectOnce = (url: string) =>
  Layer.build(Nats.connect(url, { name: "auth-test", timeout: 5_000, maxReconnectAttempts: 0 })).pipe(
    Effect.map((context) => context.unsafeMap.get(Nats.key) as Nats["Type"])
  )

/** Core publish/subscribe both ways, and a JetStream round trip (account info needs `$JS.API`). */
const canPublishAndSubscribe = (nats: Nats["Type"]) =>
  Effect.promise(async () => {
    const sub = nats.nc.subscribe("auth.check", { max: 1 })
    const got = (async () => {
      for await (const message of sub) return message.string()
    })()
    nats.nc.publish("auth.check", "hello")
    const text = await Promise.race([
      got,
      new Promise((resolve) => setTimeout(() => resolve("timeout"), 5_000))
    ])
    const info = await nats.jsm.getAccountInfo()
    return { text, jetstream: info.limits !== undefined }
  })

/** The refusal of a connection, as the gateway reports it. */
const refused = (url: string) =>
  Effect.flatMap(Effect.exit(Effect.scoped(connectOnce(url))), (exit) =>
    Exit.isFailure(exit)
      ? Effect.succeed(
          exit.cause._tag === "Fail"
            ? (exit.cause.error as NatsError)
            : ({ message: `not a failure: ${String(exit.cause)}` } as NatsError)
        )
      : Effect.die(new Error(`${url} accepted the connection`))
  )

const openssl = (dir: string, ...args: Array<string>) =>
  execFileSync("/usr/bin/openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] })

/** A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, signed by it. */
const makeCertificates = (dir: string) => {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
  openssl(
    dir,
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "1",
    "-subj",
    "/CN=sms-gateway test CA"
  )
  writeFileSync(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
  writeFileSync(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n")
  for (const name of ["server", "client"]) {
    openssl(dir, "req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`)
    openssl(
      dir,
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "1",
      "-extfile",
      `${name}.ext`
    )
  }
  return (name: string) => join(dir, name)
}

// NATS JWTs (operator mode): header.claims.signature, base64url, signed with the issuer's nkey.
const b64url = (data: Uint8Array | string) => Buffer.from(data).toString("base64url")

const encodeJwt = (issuer: nkeys.KeyPair, subject: string, name: string, nats: Record<string, unknown>) => {
  const claims: Record<string, unknown> = {
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 }
  }
  // the id is a hash of the claims, as the NATS tools make it
  claims.jti = createHash("sha512-256").update(JSON.stringify(claims)).digest("base64url")
  const body = `${b64url(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" }))}.${b64url(JSON.stringify(claims))}`
  return `${body}.${b64url(issuer.sign(new TextEncoder().encode(body)))}`
}

const UNLIMITED = { subs: -1, data: -1, payload: -1 }

describe("NATS authentication and TLS, against real nats-servers", () => {
  it.scopedLive("NATS_TOKEN: the token connects and works; a wrong one and none are refused", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const url = yield* natsServer(dir, `authorization { token: "s3cret-token-for-test" }`)
      const nats = yield* withEnv({ NATS_TOKEN: "s3cret-token-for-test" }, connectOnce(url))
      expect(yield* canPublishAndSubscribe(nats)).toEqual({ text: "hello", jetstream: true })

      const wrong = yield* withEnv({ NATS_TOKEN: "not-the-token" }, refused(url))
      expect(wrong.message).toMatch(/Authorization Violation/i)
      expect(wrong.message).not.toContain("not-the-token")
      const none = yield* withEnv({}, refused(url))
      expect(none.message).toMatch(/Authorization Violation/i)
    })
  )

  it.scopedLive(
    "NATS_USER/NATS_PASSWORD: the pair connects; a wrong password is refused, also by the daemon's layer",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const url = yield* natsServer(dir, `authorization { user: "gw", password: "right-password" }`)
        const nats = yield* withEnv({ NATS_USER: "gw", NATS_PASSWORD: "right-password" }, connectOnce(url))
        expect(yield* canPublishAndSubscribe(nats)).toEqual({ text: "hello", jetstream: true })

        const wrong = yield* withEnv({ NATS_USER: "gw", NATS_PASSWORD: "wrong-password" }, refused(url))
        expect(wrong.message).toMatch(/Authorization Violation/i)
        expect(wrong.message).not.toContain("wrong-password")
        expect((yield* withEnv({}, refused(url))).message).toMatch(/Authorization Violation/i)

        // the daemon's layer waits for a server that is not up yet, but gives up on a refusal
        const daemon = yield* withEnv(
          { NATS_USER: "gw", NATS_PASSWORD: "wrong-password" },
          Effect.scoped(Layer.build(Nats.layer(url, "auth-test-daemon"))).pipe(
            Effect.flip,
            Effect.timeoutFail({
              duration: "15 seconds",
              onTimeout: () => new Error("the daemon kept retrying")
            })
          )
        )
        expect(daemon.message).toMatch(/Authorization Violation/i)
      })
  )

  it.scopedLive("NATS_NKEY: the user's seed file connects; another user's seed is refused", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const user = nkeys.createUser()
      const seedFile = join(dir, "user.nk")
      writeFileSync(seedFile, `${new TextDecoder().decode(user.getSeed())}\n`, { mode: 0o600 })
      const url = yield* natsServer(dir, `authorization { users = [ { nkey: "${user.getPublicKey()}" } ] }`)
      const nats = yield* withEnv({ NATS_NKEY: seedFile }, connectOnce(url))
      expect(yield* canPublishAndSubscribe(nats)).toEqual({ text: "hello", jetstream: true })

      const otherFile = join(dir, "other.nk")
      writeFileSync(otherFile, new TextDecoder().decode(nkeys.createUser().getSeed()), { mode: 0o600 })
      expect((yield* withEnv({ NATS_NKEY: otherFile }, refused(url))).message).toMatch(
        /Authorization Violation/i
      )
      expect((yield* withEnv({}, refused(url))).message).toMatch(/Authorization Violation/i)
    })
  )

  it.scopedLive(
    "NATS_TLS_CA: TLS verified by the CA connects; without the CA the server's certificate is refused",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const file = makeCertificates(dir)
        const url = yield* natsServer(
          dir,
          `tls { cert_file: "${file("server.pem")}", key_file: "${file("server.key")}", timeout: 5 }`
        )
        const nats = yield* withEnv({ NATS_TLS_CA: file("ca.pem") }, connectOnce(url))
        expect(yield* canPublishAndSubscribe(nats)).toEqual({ text: "hello", jetstream: true })
        expect(nats.nc.info?.tls_required).toBe(true)

        const noCa = yield* withEnv({}, refused(url))
        expect(noCa.message).toMatch(/certificate/i)
      })
  )

  it.scopedLive(
    "NATS_TLS_CERT/NATS_TLS_KEY: a server that verifies clients takes the certificate, refuses none",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const file = makeCertificates(dir)
        const url = yield* natsServer(
          dir,
          `tls { cert_file: "${file("server.pem")}", key_file: "${file("server.key")}", ca_file: "${file("ca.pem")}", verify: true, timeout: 5 }`
        )
        const nats = yield* withEnv(
          {
            NATS_TLS_CA: file("ca.pem"),
            NATS_TLS_CERT: file("client.pem"),
            NATS_TLS_KEY: file("client.key")
          },
          connectOnce(url)
        )
        expect(yield* canPublishAndSubscribe(nats)).toEqual({ text: "hello", jetstream: true })
        const noCert = yield* withEnv({ NATS_TLS_CA: file("ca.pem") }, refused(url))
        expect(noCert.message).toMatch(/cannot connect/)
      })
  )

  it.scopedLive(
    "NATS_CREDS: operator mode, a user's .creds file connects; another account's user is refused",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const operator = nkeys.createOperator()
        const system = nkeys.createAccount()
        const account = nkeys.createAccount()
        const operatorJwt = encodeJwt(operator, operator.getPublicKey(), "test-operator", {
          type: "operator"
        })
        // JetStream for the gateway's account only: the system account may not have it
        const accountJwt = (key: nkeys.KeyPair, name: string, jetstream: boolean) =>
          encodeJwt(operator, key.getPublicKey(), name, {
            type: "account",
            limits: {
              ...UNLIMITED,
              imports: -1,
              exports: -1,
              wildcards: true,
              conn: -1,
              leaf: -1,
              ...(jetstream && { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 })
            },
            default_permissions: { pub: {}, sub: {} }
          })
        const credsFor = (issuer: nkeys.KeyPair, file: string) => {
          const user = nkeys.createUser()
          const jwt = encodeJwt(issuer, user.getPublicKey(), "gateway", {
            type: "user",
            pub: {},
            sub: {},
            ...UNLIMITED
          })
          writeFileSync(
            join(dir, file),
            `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n` +
              `-----BEGIN USER NKEY SEED-----\n${new TextDecoder().decode(user.getSeed())}\n------END USER NKEY SEED------\n`,
            { mode: 0o600 }
          )
          return join(dir, file)
        }
        const url = yield* natsServer(
          dir,
          `operator: ${operatorJwt}\nsystem_account: ${system.getPublicKey()}\nresolver: MEMORY\n` +
            `resolver_preload: {\n  ${system.getPublicKey()}: ${accountJwt(system, "SYS", false)}\n` +
            `  ${account.getPublicKey()}: ${accountJwt(account, "SMS", true)}\n}`
        )
        const nats = yield* withEnv({ NATS_CREDS: credsFor(account, "gateway.creds") }, connectOnce(url))
        expect(yield* canPublishAndSubscribe(nats)).toEqual({ text: "hello", jetstream: true })

        // a user signed by an account the operator never issued
        const stranger = credsFor(nkeys.createAccount(), "stranger.creds")
        expect((yield* withEnv({ NATS_CREDS: stranger }, refused(url))).message).toMatch(
          /Authorization Violation/i
        )
        expect((yield* withEnv({}, refused(url))).message).toMatch(/Authorization Violation/i)
      })
  )

  it.effect("settings that cannot work fail naming the variable, never showing a secret", () =>
    Effect.gen(function* () {
      const fail = (env: Record<string, string>) => Effect.flip(natsAuthFromEnv(env))
      const noPassword = yield* fail({ NATS_USER: "gw" })
      expect(noPassword.variable).toBe("NATS_PASSWORD")
      expect((yield* fail({ NATS_PASSWORD: "hunter2-secret" })).message).not.toContain("hunter2-secret")
      expect((yield* fail({ NATS_TOKEN: "t", NATS_USER: "u", NATS_PASSWORD: "p" })).message).toMatch(
        /only one way/
      )
      expect((yield* fail({ NATS_NKEY: "/nonexistent/user.nk" })).message).toMatch(
        /NATS_NKEY: cannot read the nkey seed file \/nonexistent\/user\.nk \(ENOENT\)/
      )
      expect((yield* fail({ NATS_CREDS: "/nonexistent/x.creds" })).variable).toBe("NATS_CREDS")
      expect((yield* fail({ NATS_TLS_CA: "/nonexistent/ca.pem" })).variable).toBe("NATS_TLS_CA")
      expect((yield* fail({ NATS_TLS_CERT: "/tmp/cert.pem" })).variable).toBe("NATS_TLS_KEY")
      // empty variables are unset, as compose files leave them
      expect(yield* natsAuthFromEnv({ NATS_TOKEN: "", NATS_USER: " " })).toEqual({})
    })
  )

  it.effect("a file that is not what the variable names is refused before any connection", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "sms-gw-auth-"))
      try {
        writeFileSync(join(dir, "bad"), "SECRET-LOOKING-CONTENT\n")
        const nkey = yield* Effect.flip(natsAuthFromEnv({ NATS_NKEY: join(dir, "bad") }))
        expect(nkey.message).toMatch(/does not hold a user nkey seed/)
        expect(nkey.message).not.toContain("SECRET-LOOKING-CONTENT")
        const creds = yield* Effect.flip(natsAuthFromEnv({ NATS_CREDS: join(dir, "bad") }))
        expect(creds.message).toMatch(/not a NATS \.creds file/)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })
  )
})

describe("the embedded server's generated credentials", () => {
  it.scopedLive("refuses a connection without them, accepts them, keeps them in 0600 files out of ps", () =>
    Effect.gen(function* () {
      const dataDir = yield* tempDir
      const credentials = yield* ensureEmbeddedCredentials(dataDir)
      const authFile = join(dataDir, AUTH_FILE)
      expect(statSync(authFile).mode & 0o777).toBe(0o600)
      expect(credentials.password.length).toBeGreaterThanOrEqual(40)
      // the same ones on the next start
      expect(yield* ensureEmbeddedCredentials(dataDir)).toEqual(credentials)

      const server = yield* startNatsServer({ storeDir: join(dataDir, "nats"), auth: credentials })
      expect(statSync(join(dataDir, "nats", CONFIG_FILE)).mode & 0o777).toBe(0o600)
      const cmdline = readFileSync(`/proc/${server.pid}/cmdline`, "utf8")
      expect(cmdline).toContain(join(dataDir, "nats"))
      expect(cmdline).not.toContain(credentials.password)

      // any local process without the credentials: refused
      const anonymous = yield* Effect.flip(
        Effect.tryPromise(() => connect({ servers: server.url, maxReconnectAttempts: 0, timeout: 5_000 }))
      )
      expect(String(anonymous.error)).toMatch(/Authorization Violation/i)
      const guessed = yield* Effect.flip(
        Effect.tryPromise(() =>
          connect({ servers: server.url, user: credentials.user, pass: "guess", maxReconnectAttempts: 0 })
        )
      )
      expect(String(guessed.error)).toMatch(/Authorization Violation/i)
      // even with NATS_* settings of another server in the environment, the gateway's connection
      // to its embedded server uses the generated credentials
      const nats = yield* withEnv({ NATS_TOKEN: "for-another-server" }, connectOnce(server.url))
      expect(yield* canPublishAndSubscribe(nats)).toEqual({ text: "hello", jetstream: true })
    })
  )

  it.scopedLive("the CLI finds them through the data folder (gateway.json and nats.auth)", () =>
    Effect.gen(function* () {
      const dataDir = yield* tempDir
      const credentials = yield* ensureEmbeddedCredentials(dataDir)
      const server = yield* startNatsServer({ storeDir: join(dataDir, "nats"), auth: credentials })
      // as a separate CLI process sees it: nothing known about the server but the data folder
      forgetEmbeddedCredentials(server.url)
      expect((yield* withEnv({}, refused(server.url))).message).toMatch(/Authorization Violation/i)

      mkdirSync(dataDir, { recursive: true })
      writeFileSync(join(dataDir, STATE_FILE), JSON.stringify({ natsUrl: server.url, pid: process.pid }))
      const found = yield* withEnv(
        {},
        Effect.sync(() => runningGateway(dataDir))
      )
      expect(found.natsUrl).toBe(server.url)
      const nats = yield* withEnv({}, connectOnce(server.url))
      expect(yield* canPublishAndSubscribe(nats)).toEqual({ text: "hello", jetstream: true })
    })
  )

  it.scopedLive("startNatsServer without auth still accepts any local connection (the tests' servers)", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* startNatsServer({ storeDir: dir })
      const nc = yield* Effect.acquireRelease(
        Effect.promise(() => connect({ servers: server.url, maxReconnectAttempts: 0, timeout: 5_000 })),
        (nc) => Effect.promise(() => nc.close())
      )
      expect(nc.info?.auth_required ?? false).toBe(false)
    }).pipe(Effect.timeout(Duration.seconds(20)))
  )
})
