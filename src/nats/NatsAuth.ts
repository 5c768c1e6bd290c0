/**
 * How the gateway authenticates to NATS: the standard NATS settings from the environment (for a
 * server of your own, `NATS_URL`), or the credentials generated for the embedded server and kept in
 * the data folder. Nothing here ever logs or prints a secret; errors name the variable or the file.
 */
import { randomBytes } from "node:crypto"
import { chmodSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { credsAuthenticator, nkeyAuthenticator, type NodeConnectionOptions } from "@nats-io/transport-node"
import { Data, Effect } from "effect"

export class NatsAuthError extends Data.TaggedError("NatsAuthError")<{
  /** the environment variable (or file) at fault */
  readonly variable: string
  readonly message: string
}> {}

/** The fields of the connection options that carry credentials and TLS. */
export type NatsAuthOptions = Pick<NodeConnectionOptions, "user" | "pass" | "token" | "authenticator" | "tls">

type Env = Readonly<Record<string, string | undefined>>

/** An empty variable counts as unset: compose files and shells often set `NATS_TOKEN=`. */
const setting = (env: Env, name: string): string | undefined => {
  const value = env[name]
  return value === undefined || value.trim() === "" ? undefined : value
}

const readFor = (variable: string, path: string, what: string): Effect.Effect<Buffer, NatsAuthError> =>
  Effect.try({
    try: () => readFileSync(path),
    catch: (cause) =>
      new NatsAuthError({
        variable,
        // the path and the errno only: never the file's contents
        message: `${variable}: cannot read the ${what} ${path} (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`
      })
  })

/** A user nkey seed: `SU` and 56 more base32 characters. */
const SEED = /^SU[A-Z2-7]{56}$/

/**
 * The credentials and TLS options the environment asks for:
 * - `NATS_TOKEN`; or `NATS_USER` with `NATS_PASSWORD`; or `NATS_NKEY` (a file holding a user nkey
 *   seed); or `NATS_CREDS` (a `.creds` file: user JWT and seed). At most one of these.
 * - `NATS_TLS_CA` (a CA file to verify the server with), and `NATS_TLS_CERT` with `NATS_TLS_KEY` (a
 *   client certificate). Any of them makes the connection require TLS.
 * Files are read now, so a wrong path fails the start naming its variable, not a later reconnect.
 */
export const natsAuthFromEnv = (env: Env = process.env): Effect.Effect<NatsAuthOptions, NatsAuthError> =>
  Effect.gen(function* () {
    const token = setting(env, "NATS_TOKEN")
    const user = setting(env, "NATS_USER")
    const password = setting(env, "NATS_PASSWORD")
    const nkey = setting(env, "NATS_NKEY")
    const creds = setting(env, "NATS_CREDS")
    const chosen = [
      token && "NATS_TOKEN",
      (user || password) && "NATS_USER/NATS_PASSWORD",
      nkey && "NATS_NKEY",
      creds && "NATS_CREDS"
    ].filter((name): name is string => typeof name === "string")
    if (chosen.length > 1)
      return yield* new NatsAuthError({
        variable: chosen[0] ?? "NATS_TOKEN",
        message: `set only one way to authenticate to NATS, not ${chosen.join(" and ")}`
      })
    if (user !== undefined && password === undefined)
      return yield* new NatsAuthError({
        variable: "NATS_PASSWORD",
        message: "NATS_USER is set without NATS_PASSWORD"
      })
    if (password !== undefined && user === undefined)
      return yield* new NatsAuthError({
        variable: "NATS_USER",
        message: "NATS_PASSWORD is set without NATS_USER"
      })

    const options: { -readonly [K in keyof NatsAuthOptions]: NatsAuthOptions[K] } = {}
    if (token !== undefined) options.token = token
    if (user !== undefined && password !== undefined) {
      options.user = user
      options.pass = password
    }
    if (nkey !== undefined) {
      const seed = (yield* readFor("NATS_NKEY", nkey, "nkey seed file")).toString("utf8").trim()
      if (!SEED.test(seed))
        return yield* new NatsAuthError({
          variable: "NATS_NKEY",
          message: `NATS_NKEY: ${nkey} does not hold a user nkey seed (one line starting with SU)`
        })
      options.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed))
    }
    if (creds !== undefined) {
      const file = yield* readFor("NATS_CREDS", creds, "credentials file")
      const text = file.toString("utf8")
      if (!text.includes("BEGIN NATS USER JWT") || !text.includes("BEGIN USER NKEY SEED"))
        return yield* new NatsAuthError({
          variable: "NATS_CREDS",
          message: `NATS_CREDS: ${creds} is not a NATS .creds file (a user JWT and an nkey seed)`
        })
      options.authenticator = credsAuthenticator(new Uint8Array(file))
    }

    const ca = setting(env, "NATS_TLS_CA")
    const cert = setting(env, "NATS_TLS_CERT")
    const key = setting(env, "NATS_TLS_KEY")
    if ((cert === undefined) !== (key === undefined))
      return yield* new NatsAuthError({
        variable: cert === undefined ? "NATS_TLS_CERT" : "NATS_TLS_KEY",
        message: "NATS_TLS_CERT and NATS_TLS_KEY go together: set both for a client certificate, or neither"
      })
    if (ca !== undefined || cert !== undefined) {
      options.tls = {
        ...(ca !== undefined && { ca: (yield* readFor("NATS_TLS_CA", ca, "CA file")).toString("utf8") }),
        ...(cert !== undefined && {
          cert: (yield* readFor("NATS_TLS_CERT", cert, "client certificate")).toString("utf8")
        }),
        ...(key !== undefined && {
          key: (yield* readFor("NATS_TLS_KEY", key, "client key")).toString("utf8")
        })
      }
    }
    return options
  })

// ---------------------------------------------------------------------------------------------------
// The embedded server's credentials

/** `<data-dir>/nats.auth`: the embedded server's user and password, JSON, mode 0600. */
export const AUTH_FILE = "nats.auth"

export interface EmbeddedCredentials {
  readonly user: string
  readonly password: string
}

const parseCredentials = (text: string): EmbeddedCredentials | undefined => {
  try {
    const { user, password } = JSON.parse(text) as { user?: unknown; password?: unknown }
    // the server's config quotes them: only characters that need no escaping there
    const plain = (value: unknown): value is string => typeof value === "string" && /^[\w-]{8,}$/.test(value)
    return plain(user) && plain(password) ? { user, password } : undefined
  } catch {
    return undefined
  }
}

/** The data folder's credentials, when there are any this process may read; never throws. */
export const readEmbeddedCredentials = (dataDir: string): EmbeddedCredentials | undefined => {
  try {
    return parseCredentials(readFileSync(join(dataDir, AUTH_FILE), "utf8"))
  } catch {
    return undefined
  }
}

/**
 * The data folder's credentials, generated on first use (a user and 32 random bytes of password).
 * The file is written whole under another name with mode 0600 and renamed into place, so no reader
 * sees it half-written or readable by others; a file found wider than 0600 is narrowed. An unreadable
 * or invalid file is replaced: only the server this start launches uses them.
 */
export const ensureEmbeddedCredentials = (
  dataDir: string
): Effect.Effect<EmbeddedCredentials, NatsAuthError> =>
  Effect.gen(function* () {
    const file = join(dataDir, AUTH_FILE)
    const existing = readEmbeddedCredentials(dataDir)
    if (existing !== undefined) {
      const mode = statSync(file).mode & 0o777
      if (mode !== 0o600) {
        yield* Effect.try({
          try: () => chmodSync(file, 0o600),
          catch: () =>
            new NatsAuthError({
              variable: file,
              message: `${file} has mode ${mode.toString(8)} and cannot be set to 0600: fix it or remove it`
            })
        })
        yield* Effect.logWarning(`${file} had mode ${mode.toString(8)}: set to 0600`)
      }
      return existing
    }
    const credentials: EmbeddedCredentials = {
      user: "sms-gateway",
      password: randomBytes(32).toString("base64url")
    }
    return yield* Effect.try({
      try: () => {
        const temporary = `${file}.${process.pid}`
        rmSync(temporary, { force: true })
        writeFileSync(temporary, `${JSON.stringify(credentials)}\n`, { mode: 0o600, flag: "wx" })
        renameSync(temporary, file)
        return credentials
      },
      catch: (cause) =>
        new NatsAuthError({
          variable: file,
          message: `cannot write the embedded NATS credentials ${file} (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`
        })
    })
  })

/**
 * Credentials of embedded servers, by URL: what `startNatsServer` gave the server it runs, or what
 * the CLI read from a running gateway's data folder. A connection to one of these URLs uses them and
 * not the environment, which describes `NATS_URL`'s server. The URL names a loopback port, so two
 * servers never share an entry.
 */
const embedded = new Map<string, EmbeddedCredentials>()

export const rememberEmbeddedCredentials = (url: string, credentials: EmbeddedCredentials) => {
  embedded.set(url, credentials)
}

export const forgetEmbeddedCredentials = (url: string) => {
  embedded.delete(url)
}

/** The credentials and TLS options for a connection to `url`: an embedded server's, or the environment's. */
export const natsAuthFor = (
  url: string,
  env: Env = process.env
): Effect.Effect<NatsAuthOptions, NatsAuthError> => {
  const known = embedded.get(url)
  return known !== undefined
    ? Effect.succeed({ user: known.user, pass: known.password })
    : natsAuthFromEnv(env)
}
