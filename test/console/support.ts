/**
 * A whole gateway (every role, console included) on a fresh nats-server, with two simulated
 * providers: `good` (delivers; numbers starting +4479111990 are invalid) and `broken` (answers 503,
 * retried once: its messages end as dead letters). Keys of each scope, and a small browser-like
 * client for the console (a cookie jar, the CSRF token of the last page, same-origin headers).
 */
import { randomUUID } from "node:crypto"
import { Effect } from "effect"
import { providerEntry, simulator, startGateway } from "../support/inProcessGateway.js"
import { issueApiKey } from "../support/apiKeys.js"

export const INVALID_PREFIX = "+4479111990"

export const startConsoleGateway = Effect.gen(function* () {
  const good = yield* simulator({ invalidPrefixes: [INVALID_PREFIX] })
  const broken = yield* simulator({ errorRate: 1 })
  const gw = yield* startGateway([
    providerEntry("good", good.url, { priority: 0 }),
    providerEntry("broken", broken.url, {
      priority: 1,
      retry: { initialDelayMs: 20, maxRetries: 1, maxDelayMs: 50 }
    })
  ])
  const keys = {
    admin: yield* issueApiKey(gw.natsUrl, "ops", "admin"),
    auditor: yield* issueApiKey(gw.natsUrl, "audit", "auditor"),
    client: yield* issueApiKey(gw.natsUrl, "shop", "client")
  }
  return { gw, keys, base: gw.publicUrl, good, broken }
})

export type ConsoleGateway = Effect.Effect.Success<typeof startConsoleGateway>

/** Sends through the HTTP API; answers the status and the JSON body. */
export const sendSms = (base: string, apiKey: string, body: Record<string, unknown>, trackingId?: string) =>
  Effect.promise(async () => {
    const response = await fetch(`${base}/v1/messages`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-api-key": apiKey,
        "idempotency-key": randomUUID(),
        ...(trackingId ? { "x-tracking-id": trackingId } : {})
      },
      body: JSON.stringify(body)
    })
    return { status: response.status, json: (await response.json()) as Record<string, unknown> }
  })

export interface Answer {
  readonly status: number
  readonly location: string | null
  readonly headers: Headers
  readonly text: string
}

/** A browser's part in talking to the console: cookies, the last CSRF token, same-origin headers. */
export const consoleClient = (base: string) => {
  const jar = new Map<string, string>()
  let csrf = ""
  const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ")
  const remember = (response: Response) => {
    for (const line of response.headers.getSetCookie()) {
      const [pair = ""] = line.split(";")
      const at = pair.indexOf("=")
      const name = pair.slice(0, at).trim()
      const value = pair.slice(at + 1).trim()
      if (value === "") jar.delete(name)
      else jar.set(name, value)
    }
  }
  const read = async (response: Response): Promise<Answer> => {
    remember(response)
    const text = await response.text()
    const token = /name="_csrf" value="([^"]+)"/.exec(text)?.[1]
    if (token !== undefined) csrf = token
    return {
      status: response.status,
      location: response.headers.get("location"),
      headers: response.headers,
      text
    }
  }
  const sameOrigin = { origin: base, "sec-fetch-site": "same-origin" }
  const client = {
    jar,
    csrf: () => csrf,
    get: (path: string, headers: Record<string, string> = {}) =>
      Effect.promise(() =>
        fetch(`${base}${path}`, { redirect: "manual", headers: { cookie: cookieHeader(), ...headers } }).then(
          read
        )
      ),
    /** a form post as a console page makes it (its CSRF token unless `fields` names one) */
    post: (path: string, fields: Record<string, string> = {}, headers: Record<string, string> = {}) =>
      Effect.promise(() =>
        fetch(`${base}${path}`, {
          method: "POST",
          redirect: "manual",
          headers: {
            "content-type": "application/x-www-form-urlencoded",
            cookie: cookieHeader(),
            ...sameOrigin,
            ...headers
          },
          body: new URLSearchParams({ _csrf: csrf, ...fields }).toString()
        }).then(read)
      ),
    /** the sign-in form, filled with `apiKey` and sent */
    signIn: (apiKey: string) =>
      Effect.gen(function* () {
        yield* client.get("/console/login")
        return yield* client.post("/console/login", { apiKey })
      })
  }
  return client
}

export type ConsoleClient = ReturnType<typeof consoleClient>

/** Signed in with `apiKey`, then the overview loaded (so the client holds the session's CSRF token). */
export const signedIn = (base: string, apiKey: string) =>
  Effect.gen(function* () {
    const client = consoleClient(base)
    const answer = yield* client.signIn(apiKey)
    if (answer.status !== 303) return yield* Effect.die(new Error(`sign-in answered ${answer.status}`))
    yield* client.get("/console")
    return client
  })
