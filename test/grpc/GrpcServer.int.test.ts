/**
 * The gRPC server as a tool or an operator meets it: server reflection complete enough for a linking
 * client (grpcurl) to build every message without the `.proto`; UNAVAILABLE when a store it needs is
 * gone; and a shutdown that ends open watches UNAVAILABLE (to be resumed) instead of hanging.
 */
import { randomUUID } from "node:crypto"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Exit, Fiber, Scope } from "effect"
import { Nats } from "../../src/nats/Nats.js"
import { issueApiKey } from "../support/apiKeys.js"
import { eventually } from "../support/gateway.js"
import { grpcClient, startGrpcGateway } from "./support.js"

/** The reflection protocol's own definition, as `@grpc/reflection` ships it. */
const reflectionProto = join(
  dirname(createRequire(import.meta.url).resolve("@grpc/reflection")),
  "../proto/grpc/reflection/v1/reflection.proto"
)
const reflection = protoLoader.loadSync(reflectionProto, {
  keepCase: true,
  longs: Number,
  defaults: true,
  oneofs: true
})
/** descriptor.proto as protobuf.js bundles it: its fields in camelCase */
const descriptors = protoLoader.loadSync("google/protobuf/descriptor.proto", {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: false
})

interface Field {
  name: string
  typeName?: string
  proto3Optional?: boolean
}
interface MessageType {
  name: string
  field?: Array<Field>
  nestedType?: Array<MessageType>
  enumType?: Array<{ name: string }>
  options?: { mapEntry?: boolean }
}
interface FileDescriptor {
  name: string
  package: string
  dependency?: Array<string>
  messageType?: Array<MessageType>
  enumType?: Array<{ name: string }>
  service?: Array<{ name: string; method?: Array<{ name: string; inputType: string; outputType: string }> }>
}

const FileDescriptorProto = descriptors[
  "google.protobuf.FileDescriptorProto"
] as protoLoader.MessageTypeDefinition<FileDescriptor, FileDescriptor>

interface ReflectionResponse {
  list_services_response?: { service: Array<{ name: string }> }
  file_descriptor_response?: { file_descriptor_proto: Array<Buffer> }
  error_response?: { error_code: number; error_message: string }
}

/** Asks the server's reflection service each request in turn, on one stream (as grpcurl does). */
const askReflection = (address: string, requests: ReadonlyArray<Record<string, string>>) =>
  Effect.async<Array<ReflectionResponse>, Error>((resume) => {
    const service = reflection["grpc.reflection.v1.ServerReflection"] as grpc.ServiceDefinition
    const Client = grpc.makeGenericClientConstructor(service, "ServerReflection")
    const client = new Client(address, grpc.credentials.createInsecure())
    const definition = service.ServerReflectionInfo
    if (definition === undefined) return resume(Effect.dieMessage("no ServerReflectionInfo"))
    const call = client.makeBidiStreamRequest(
      definition.path,
      definition.requestSerialize,
      definition.responseDeserialize,
      new grpc.Metadata(),
      { deadline: Date.now() + 10_000 }
    )
    const responses: Array<ReflectionResponse> = []
    call.on("data", (response: ReflectionResponse) => {
      responses.push(response)
      const next = requests[responses.length]
      if (next === undefined) call.end()
      else call.write(next)
    })
    call.on("error", (error: Error) => resume(Effect.fail(error)))
    call.on("end", () => {
      client.close()
      resume(Effect.succeed(responses))
    })
    call.write(requests[0])
  })

const filesOf = (responses: ReadonlyArray<ReflectionResponse>) =>
  responses
    .flatMap((r) => r.file_descriptor_response?.file_descriptor_proto ?? [])
    .map(FileDescriptorProto.deserialize)

/** Every type a file names resolves to a definition in it or in a file it depends on. */
const unresolved = (files: ReadonlyArray<FileDescriptor>) => {
  const definedIn = new Map<string, string>()
  const index = (file: FileDescriptor, scope: string, messages: ReadonlyArray<MessageType>) => {
    for (const message of messages) {
      definedIn.set(`${scope}.${message.name}`, file.name)
      for (const e of message.enumType ?? []) definedIn.set(`${scope}.${message.name}.${e.name}`, file.name)
      index(file, `${scope}.${message.name}`, message.nestedType ?? [])
    }
  }
  for (const file of files) {
    index(file, `.${file.package}`, file.messageType ?? [])
    for (const e of file.enumType ?? []) definedIn.set(`.${file.package}.${e.name}`, file.name)
  }
  const problems: Array<string> = []
  const check = (file: FileDescriptor, name: string) => {
    const home = definedIn.get(name)
    if (home === undefined) problems.push(`${file.name}: ${name} is defined nowhere`)
    else if (home !== file.name && !(file.dependency ?? []).includes(home))
      problems.push(`${file.name}: ${name} is in ${home}, which it does not import`)
  }
  const walk = (file: FileDescriptor, messages: ReadonlyArray<MessageType>) => {
    for (const message of messages) {
      for (const field of message.field ?? []) if (field.typeName) check(file, field.typeName)
      walk(file, message.nestedType ?? [])
    }
  }
  for (const file of files) {
    walk(file, file.messageType ?? [])
    for (const service of file.service ?? [])
      for (const method of service.method ?? []) {
        check(file, method.inputType)
        check(file, method.outputType)
      }
  }
  return problems
}

describe("gRPC server", () => {
  it.scopedLive(
    "reflection lists the API and health, and serves linkable files: protoc's names, imports, map entries, optional fields",
    () =>
      Effect.gen(function* () {
        const gw = yield* startGrpcGateway(["http"])
        const [list, gateway, byName] = yield* askReflection(gw.address, [
          { list_services: "*" },
          { file_containing_symbol: "sms.v1.SmsGateway" },
          { file_by_filename: "google/protobuf/timestamp.proto" }
        ])
        expect(list?.list_services_response?.service.map((s) => s.name).sort()).toEqual([
          "grpc.health.v1.Health",
          "sms.v1.SmsGateway"
        ])
        const files = filesOf([gateway ?? {}, byName ?? {}])
        const api = files.find((file) => file.name === "sms/v1/gateway.proto")
        expect(api?.dependency).toEqual(["google/protobuf/struct.proto", "google/protobuf/timestamp.proto"])
        // the file and everything it imports, so a client can link it
        expect(new Set(files.map((file) => file.name))).toEqual(
          new Set(["sms/v1/gateway.proto", "google/protobuf/struct.proto", "google/protobuf/timestamp.proto"])
        )
        expect(unresolved(files)).toEqual([])
        expect(api?.service?.[0]?.method?.map((m) => m.name)).toEqual([
          "SendSms",
          "GetMessage",
          "WatchMessage",
          "GetHistory"
        ])
        const send = api?.messageType?.find((m) => m.name === "SendSmsRequest")
        expect(send?.field?.map((f) => f.name)).toEqual([
          "idempotency_key",
          "to",
          "body",
          "from",
          "providers",
          "valid_until",
          "metadata",
          "tracking_id"
        ])
        expect(send?.field?.find((f) => f.name === "metadata")?.typeName).toBe(
          ".sms.v1.SendSmsRequest.MetadataEntry"
        )
        expect(send?.nestedType?.map((m) => [m.name, m.options?.mapEntry])).toEqual([["MetadataEntry", true]])
        expect(send?.field?.filter((f) => f.proto3Optional).map((f) => f.name)).toEqual([
          "from",
          "tracking_id"
        ])
        const value = files
          .find((file) => file.name === "google/protobuf/struct.proto")
          ?.messageType?.find((m) => m.name === "Value")
        expect(value?.field?.map((f) => f.name)).toContain("null_value")

        const [health] = yield* askReflection(gw.address, [
          { file_containing_symbol: "grpc.health.v1.Health" }
        ])
        expect(filesOf([health ?? {}]).map((file) => file.name)).toEqual(["grpc/health/v1/health.proto"])
        const [missing] = yield* askReflection(gw.address, [{ file_containing_symbol: "sms.v1.Nothing" }])
        expect(missing?.error_response?.error_code).toBe(grpc.status.NOT_FOUND)
      }),
    60_000
  )

  it.scopedLive(
    "UNAVAILABLE when the command store cannot take the command; the same key works once it is back",
    () =>
      Effect.gen(function* () {
        const gw = yield* startGrpcGateway(["http"])
        const api = yield* grpcClient(gw.address)
        const key = yield* issueApiKey(gw.natsUrl, "grpc-down", "client")
        const { jsm } = yield* gw.provide(Nats)
        const config = (yield* Effect.promise(() => jsm.streams.info("SMS_COMMANDS"))).config
        yield* Effect.promise(() => jsm.streams.delete("SMS_COMMANDS"))
        const request = { to: "+447911123456", body: "hello", idempotencyKey: randomUUID() }
        const down = yield* Effect.flip(api.sendSms(request, key))
        expect(grpc.status[down.code], down.details).toBe("UNAVAILABLE")
        expect(down.details).toBe("the command store is unavailable, retry later")
        yield* Effect.promise(() => jsm.streams.add(config))
        expect((yield* api.sendSms(request, key)).duplicate).toBe(false)
      }),
    60_000
  )

  it.scopedLive(
    "a shutdown tells health watchers NOT_SERVING and ends an open watch UNAVAILABLE (to be resumed) instead of waiting for it",
    () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const gw = yield* Scope.extend(startGrpcGateway(), scope)
        const api = yield* grpcClient(gw.address)
        const key = yield* issueApiKey(gw.natsUrl, "grpc-shutdown", "client")
        const sent = yield* api.sendSms(
          { to: "+447911123456", body: "hello", providers: ["slow"], idempotencyKey: randomUUID() },
          key
        )
        yield* eventually(api.getHistory({ messageId: sent.messageId }, key))
        const watch = yield* Effect.fork(
          api.watch({ messageId: sent.messageId }, key, { deadlineMs: 30_000 })
        )
        const health = yield* Effect.fork(
          api.healthWatch("", (received) => received.some((r) => r.status === "NOT_SERVING"))
        )
        // the watch is open (its first update is in) before the gateway stops
        yield* Effect.sleep("300 millis")
        const started = yield* Clock.currentTimeMillis
        yield* Scope.close(scope, Exit.void)
        const closedIn = (yield* Clock.currentTimeMillis) - started
        const ended = yield* Fiber.join(watch)
        expect(grpc.status[ended.end.code], ended.end.details).toBe("UNAVAILABLE")
        expect(ended.end.details).toContain("after_revision")
        expect(ended.updates.length).toBeGreaterThan(0)
        expect(ended.updates.some((u) => u.final)).toBe(false)
        expect((yield* Fiber.join(health)).received.map((r) => r.status)).toEqual(["SERVING", "NOT_SERVING"])
        // a watch that held the shutdown up would have kept it for the whole call (30 s), or for good
        expect(closedIn).toBeLessThan(10_000)
      }),
    60_000
  )
})
