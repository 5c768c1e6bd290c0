/**
 * grpc-js handlers that run Effects: a unary call answers its Effect's outcome, a server-streaming
 * call writes its Stream's elements (waiting for the client to keep up) and ends with its outcome.
 *
 * Each call runs as a fiber of the server's set, in the server's runtime: a client that cancels, or
 * whose deadline passes, interrupts it; a server that shuts down interrupts what is left, answered
 * UNAVAILABLE (a watch reconnects with the last revision it saw). A defect is logged and answered
 * INTERNAL without its details. Every call ends with one log line, as an HTTP request does.
 */
import * as grpc from "@grpc/grpc-js"
import { Cause, Clock, Effect, Exit, Fiber, Option, Stream } from "effect"
import { GrpcError, unavailable } from "./Errors.js"

/** Runs an Effect as a fiber of the server's set (`FiberSet.makeRuntime`). */
export type Run<R> = <A, E>(effect: Effect.Effect<A, E, R>) => Fiber.RuntimeFiber<A, E>

export interface CallContext<R> {
  readonly run: Run<R>
  /** the status a failure answers, with its details */
  readonly toServiceError: (error: GrpcError) => grpc.ServiceError
}

const SHUTTING_DOWN = unavailable(
  "the gateway is shutting down: call again (WatchMessage: with after_revision)"
)

/** Why a call stopped before its Effect ended: the client cancelled, or its deadline passed. */
interface Stop {
  by: "client" | "deadline" | undefined
}

/** The failure a call answers for an outcome that is not a success. */
const failureOf = (cause: Cause.Cause<GrpcError>, stop: Stop): GrpcError => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) return failure.value
  if (Cause.isInterruptedOnly(cause))
    return stop.by === "client"
      ? new GrpcError({ code: grpc.status.CANCELLED, message: "cancelled by the client" })
      : SHUTTING_DOWN
  return new GrpcError({ code: grpc.status.INTERNAL, message: "internal error" })
}

/** Logs the end of a call: the method, its status code, and how long it took (defects with their cause). */
const logged =
  (method: string, stop: Stop) =>
  <A, R>(effect: Effect.Effect<A, GrpcError, R>): Effect.Effect<A, GrpcError, R> =>
    Effect.flatMap(Clock.currentTimeMillis, (started) =>
      Effect.onExit(effect, (exit) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const code = Exit.isSuccess(exit) ? grpc.status.OK : failureOf(exit.cause, stop).code
          const line = { method, code: grpc.status[code], ms: now - started }
          if (Exit.isFailure(exit) && code === grpc.status.INTERNAL)
            return Effect.logError("grpc call failed", exit.cause).pipe(Effect.annotateLogs(line))
          return Effect.logInfo("grpc call").pipe(Effect.annotateLogs(line))
        })
      )
    )

/** Milliseconds until the call's deadline; undefined for a call without one. */
const untilDeadline = (deadline: grpc.Deadline): number | undefined => {
  const at = deadline instanceof Date ? deadline.getTime() : deadline
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined
}

export const unary =
  <Req, Res, R>(
    context: CallContext<R>,
    method: string,
    handle: (request: Req, metadata: grpc.Metadata) => Effect.Effect<Res, GrpcError, R>
  ): grpc.handleUnaryCall<Req, Res> =>
  (call, callback) => {
    const stop: Stop = { by: undefined }
    const fiber = context.run(logged(method, stop)(handle(call.request, call.metadata)))
    call.on("cancelled", () => {
      stop.by = "client"
      Effect.runFork(Fiber.interrupt(fiber))
    })
    fiber.addObserver((exit) =>
      Exit.isSuccess(exit)
        ? callback(null, exit.value)
        : callback(context.toServiceError(failureOf(exit.cause, stop)))
    )
  }

/** Writes one message, then waits for the client to take it when the stream's buffer is full. */
const write = <Res>(call: grpc.ServerWritableStream<unknown, Res>, message: Res) =>
  Effect.async<void>((resume) => {
    if (call.write(message)) return resume(Effect.void)
    const drained = () => resume(Effect.void)
    call.once("drain", drained)
    return Effect.sync(() => call.off("drain", drained))
  })

export const serverStreaming =
  <Req, Res, R>(
    context: CallContext<R>,
    method: string,
    handle: (request: Req, metadata: grpc.Metadata) => Stream.Stream<Res, GrpcError, R>
  ): grpc.handleServerStreamingCall<Req, Res> =>
  (call) => {
    const stop: Stop = { by: undefined }
    const streamed = Stream.runForEach(handle(call.request, call.metadata), (message) => write(call, message))
    const remaining = untilDeadline(call.getDeadline())
    // grpc-js answers DEADLINE_EXCEEDED itself when the deadline passes: the stream only stops
    const bounded =
      remaining === undefined
        ? streamed
        : Effect.timeoutFail(streamed, {
            duration: remaining,
            onTimeout: () => {
              stop.by = "deadline"
              return new GrpcError({ code: grpc.status.DEADLINE_EXCEEDED, message: "deadline exceeded" })
            }
          })
    const fiber = context.run(logged(method, stop)(bounded))
    call.on("cancelled", () => {
      stop.by ??= "client"
      Effect.runFork(Fiber.interrupt(fiber))
    })
    fiber.addObserver((exit) => {
      // the client is gone, or grpc-js has answered it: nothing more is sent
      if (stop.by !== undefined) return
      if (Exit.isSuccess(exit)) call.end()
      else call.emit("error", context.toServiceError(failureOf(exit.cause, stop)))
    })
  }
