/**
 * What every provider adapter shares to make its one HTTP call: a kept-alive connection pool, a
 * timeout that covers the whole answer, one classification of network failures, and one rule that
 * keeps numbers out of the details that end up in events and logs. A submission never fails: every
 * outcome is a `SubmitResult`.
 */
import { Duration, Effect, type Scope } from "effect"
import { Agent, request } from "undici"
import type { RetryReason } from "../domain/Message.js"
import { maskNumber } from "../domain/PhoneNumber.js"
import type { OutboundSms, SubmitResult } from "./ProviderAdapter.js"

/** What tests may set on any adapter. */
export interface MakeOptions {
  /** the clock for signature freshness and `Retry-After` dates, in epoch ms; default the Effect `Clock` */
  readonly now?: () => number
}

/** `options.now`, or the Effect `Clock` of the adapter's construction. */
export const adapterClock = (options: MakeOptions) =>
  Effect.map(Effect.clock, (clock) => options.now ?? (() => clock.unsafeCurrentTimeMillis()))

export const transient = (reason: RetryReason, detail: string, retryAfterMs?: number): SubmitResult =>
  retryAfterMs === undefined
    ? { _tag: "Transient", reason, detail }
    : { _tag: "Transient", reason, detail, retryAfterMs }

export const permanent = (
  reason: "invalid_number" | "rejected",
  code: string,
  detail: string
): SubmitResult => ({
  _tag: "Permanent",
  reason,
  code,
  detail
})

export const flattenHeaders = (raw: Record<string, string | Array<string> | undefined>) => {
  const flat: Record<string, string | undefined> = {}
  for (const [name, value] of Object.entries(raw))
    flat[name] = Array.isArray(value) ? value.join(", ") : value
  return flat
}

const timedOut = { _tag: "TimedOut" } as const

interface Unreachable {
  readonly _tag: "Unreachable"
  readonly cause: unknown
}

const classifyError = (error: typeof timedOut | Unreachable, timeout: Duration.Duration): SubmitResult => {
  if (error._tag === "TimedOut") return transient("timeout", `no answer within ${Duration.format(timeout)}`)
  const code = socketCode(error.cause)
  // a malformed URL or header is a configuration fault: retrying lets the circuit breaker move on
  return code === "ERR_INVALID_URL" || code === "UND_ERR_INVALID_ARG"
    ? transient("provider_unavailable", `request not sent (${code})`)
    : transient("network", `connection failed: ${code}`)
}

/** The socket error (ECONNREFUSED, ECONNRESET...), which undici may wrap one level down. */
const socketCode = (cause: unknown): string => {
  const inner = cause instanceof Error && cause.cause instanceof Error ? cause.cause : cause
  if (inner instanceof Error && "code" in inner && typeof inner.code === "string") return inner.code
  if (cause instanceof Error && "code" in cause && typeof cause.code === "string") return cause.code
  return cause instanceof Error ? cause.message : "unknown"
}

/**
 * Details end up in events and logs: a provider echoing the number must not leak it, and a
 * chatty error page must not bloat the stream.
 */
export const scrub = (result: SubmitResult, to: string): SubmitResult => {
  if (result._tag === "Accepted") return result
  const masked = (to.length > 0 ? result.detail.replaceAll(to, maskNumber(to)) : result.detail).replace(
    /\+?\d{8,15}/g,
    (digits) => maskNumber(digits)
  )
  const detail = masked.length > 200 ? `${masked.slice(0, 199)}…` : masked
  return { ...result, detail }
}

export interface ProviderAnswer {
  readonly status: number
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly text: string
}

export interface Submission {
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly classify: (answer: ProviderAnswer) => SubmitResult
  /** masked wherever it appears in a detail */
  readonly recipient: string
}

/**
 * A submitter with its own connection pool (closed with the scope). Undici directly: a provider
 * call per message is the hot path, and it cost about four times the CPU through a wrapper client.
 * The call is a plain promise that never rejects (every outcome is a `SubmitResult`), so a batch
 * starts all its calls in one loop without a fiber each.
 */
export const makeSubmitter = (adapter: string, timeout: Duration.Duration) =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => new Agent({ keepAliveTimeout: 30_000, connections: 512 })),
      (agent) => Effect.promise(() => agent.close())
    ),
    (agent) =>
      async (submission: Submission, interruption?: AbortSignal): Promise<SubmitResult> => {
        const { url, headers, body } = submission
        // One timer for the whole answer, body included: a provider that stalls mid-answer is as
        // late as a silent one. (Effect.timeoutFail, a race of two fibers, cost ~55 µs more per call.)
        const deadline = new AbortController()
        let expired = false
        const timer = setTimeout(() => {
          expired = true
          deadline.abort()
        }, Duration.toMillis(timeout))
        const interrupt = () => deadline.abort()
        interruption?.addEventListener("abort", interrupt, { once: true })
        let result: SubmitResult
        try {
          const response = await request(url, {
            method: "POST",
            headers,
            body,
            dispatcher: agent,
            signal: deadline.signal
          })
          const text = await response.body.text()
          try {
            result = submission.classify({
              status: response.statusCode,
              headers: flattenHeaders(response.headers),
              text
            })
          } catch (defect) {
            // a classifier bug must not lose the message: retried, and on the record with its cause
            result = transient("provider_unavailable", `${adapter}: unexpected failure: ${String(defect)}`)
          }
        } catch (cause) {
          result = classifyError(expired ? timedOut : { _tag: "Unreachable", cause }, timeout)
        } finally {
          clearTimeout(timer)
          interruption?.removeEventListener("abort", interrupt)
        }
        return scrub(result, submission.recipient)
      }
  ) satisfies Effect.Effect<unknown, never, Scope.Scope>

export type Post = Effect.Effect.Success<ReturnType<typeof makeSubmitter>>

/** An adapter's two ways to call: `submitNow` for batches (a promise), `submit` as an Effect. */
export const adapterCalls = (post: Post, build: (sms: OutboundSms) => Submission) => ({
  submitNow: (sms: OutboundSms): Promise<SubmitResult> => post(build(sms)),
  submit: (sms: OutboundSms): Effect.Effect<SubmitResult> =>
    Effect.promise((signal) => post(build(sms), signal))
})
