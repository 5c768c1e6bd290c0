/**
 * The file descriptors server reflection answers with, made whole.
 *
 * proto-loader describes what it loaded as one file per package (`sms_v1.proto`,
 * `google_protobuf.proto`) with no dependency list (grpc/grpc-node#2595), relative type names, map
 * entries named after their field (`Metadata`, where protoc says `MetadataEntry`) and `optional`
 * fields as plain one-field oneofs. `@grpc/reflection` serves that as it is, and reflection clients
 * that link what they receive refuse it: grpcurl answers `"*.google.protobuf.Timestamp" not found`
 * (grpc/grpc-node#2958). Here every file is rewritten as protoc would have written it: one file per
 * source (`sms/v1/gateway.proto`, `google/protobuf/timestamp.proto`, ...) naming the files it depends
 * on, fully qualified type names, `<Field>Entry` map entries, and `proto3Optional` fields.
 */
import * as protoLoader from "@grpc/proto-loader"
import { messageTypeIn } from "./Proto.js"

// descriptor.proto's messages (protobuf.js names their fields in camelCase), as far as they are
// rewritten here; the rest is carried along untouched

interface FieldDescriptor {
  name: string
  typeName?: string
  oneofIndex?: number
  proto3Optional?: boolean
  [other: string]: unknown
}

interface MessageDescriptor {
  name: string
  field?: Array<FieldDescriptor>
  nestedType?: Array<MessageDescriptor>
  enumType?: Array<{ name: string }>
  oneofDecl?: Array<{ name: string }>
  options?: { mapEntry?: boolean; [other: string]: unknown }
  [other: string]: unknown
}

interface MethodDescriptor {
  name: string
  inputType?: string
  outputType?: string
  [other: string]: unknown
}

interface ServiceDescriptor {
  name: string
  method?: Array<MethodDescriptor>
  [other: string]: unknown
}

interface FileDescriptor {
  name?: string
  package?: string
  dependency?: Array<string>
  messageType?: Array<MessageDescriptor>
  enumType?: Array<{ name: string }>
  service?: Array<ServiceDescriptor>
  syntax?: string
  [other: string]: unknown
}

/** The published files of the well-known types proto-loader folds into one `google_protobuf.proto`. */
const WELL_KNOWN_FILES: Readonly<Record<string, string>> = {
  ".google.protobuf.Any": "google/protobuf/any.proto",
  ".google.protobuf.Duration": "google/protobuf/duration.proto",
  ".google.protobuf.Empty": "google/protobuf/empty.proto",
  ".google.protobuf.FieldMask": "google/protobuf/field_mask.proto",
  ".google.protobuf.Struct": "google/protobuf/struct.proto",
  ".google.protobuf.Value": "google/protobuf/struct.proto",
  ".google.protobuf.ListValue": "google/protobuf/struct.proto",
  ".google.protobuf.NullValue": "google/protobuf/struct.proto",
  ".google.protobuf.Timestamp": "google/protobuf/timestamp.proto"
}

const descriptorCodec = (() => {
  let codec: protoLoader.MessageTypeDefinition<FileDescriptor, FileDescriptor> | undefined
  return () => {
    codec ??= messageTypeIn<FileDescriptor>(
      protoLoader.loadSync("google/protobuf/descriptor.proto", {
        keepCase: true,
        longs: Number,
        enums: String,
        defaults: false
      }),
      "google.protobuf.FileDescriptorProto"
    )
    return codec
  }
})()

/** `provider_ids` and `Provider_ids` -> `ProviderIds`, as protoc names a map's entry message. */
const pascalCase = (name: string) =>
  name.replace(/(?:^|_)([a-zA-Z0-9])/g, (_, letter: string) => letter.toUpperCase())

/** `nullValue` -> `null_value`. */
const snakeCase = (name: string) => name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`)

/** The parent scope of a fully qualified name: `.a.b.C` -> `.a.b`; the root is "". */
const parentOf = (scope: string) => scope.slice(0, Math.max(0, scope.lastIndexOf(".")))

/**
 * Rewrites proto-loader's files as protoc would have written them. `fileOf(package, name)` names the
 * file a top-level definition of a package came from (the well-known types are known here).
 */
export const linkFiles = (
  encoded: ReadonlyArray<Buffer>,
  fileOf: (pkg: string, name: string) => string
): Array<Buffer> => {
  const codec = descriptorCodec()
  const byName = new Map<string, FileDescriptor>()
  for (const buffer of encoded) {
    const file = codec.deserialize(buffer)
    if (file.name !== undefined && !byName.has(file.name)) byName.set(file.name, file)
  }

  // 1. map entries get protoc's names; every symbol is indexed under its fully qualified name
  const renamed = new Map<string, string>()
  const symbols = new Set<string>()
  const indexMessage = (message: MessageDescriptor, scope: string) => {
    const full = `${scope}.${message.name}`
    symbols.add(full)
    for (const nested of message.nestedType ?? []) {
      if (nested.options?.mapEntry && !nested.name.endsWith("Entry")) {
        // protoc's name: the field's name in PascalCase, then "Entry" (proto-loader keeps the field's name)
        const entry = `${pascalCase(nested.name)}Entry`
        renamed.set(`${full}.${nested.name}`, `${full}.${entry}`)
        symbols.add(`${full}.${nested.name}`)
        nested.name = entry
      }
      indexMessage(nested, full)
    }
    for (const enumType of message.enumType ?? []) symbols.add(`${full}.${enumType.name}`)
  }
  for (const file of byName.values()) {
    const scope = file.package ? `.${file.package}` : ""
    for (const message of file.messageType ?? []) indexMessage(message, scope)
    for (const enumType of file.enumType ?? []) symbols.add(`${scope}.${enumType.name}`)
  }

  /** A type name as C++ scoping resolves it from `scope`, fully qualified. */
  const resolve = (name: string, scope: string): string => {
    if (name.startsWith(".")) return renamed.get(name) ?? name
    for (let at = scope; ; at = parentOf(at)) {
      const candidate = `${at}.${name}`
      if (symbols.has(candidate) || renamed.has(candidate)) return renamed.get(candidate) ?? candidate
      if (at === "") return `.${name}`
    }
  }

  // 2. type names qualified, optional fields marked; each top-level definition goes to the file it came from
  const outputs = new Map<string, FileDescriptor>()
  const outputFor = (pkg: string, name: string): FileDescriptor => {
    const fileName = WELL_KNOWN_FILES[`.${pkg}.${name}`] ?? fileOf(pkg, name)
    let output = outputs.get(fileName)
    if (output === undefined) {
      output = { name: fileName, package: pkg, dependency: [], syntax: "proto3" }
      outputs.set(fileName, output)
    }
    return output
  }
  const topLevelFile = (fullName: string): string | undefined => {
    for (const [fileName, output] of outputs) {
      const scope = `.${output.package}`
      if (!fullName.startsWith(`${scope}.`)) continue
      const top = fullName.slice(scope.length + 1).split(".")[0]
      if (
        output.messageType?.some((m) => m.name === top) ||
        output.enumType?.some((e) => e.name === top) ||
        output.service?.some((s) => s.name === top)
      )
        return fileName
    }
    return undefined
  }
  const references = new Map<FileDescriptor, Set<string>>()
  const refer = (output: FileDescriptor, fullName: string) => {
    const set = references.get(output) ?? new Set<string>()
    set.add(fullName)
    references.set(output, set)
  }
  const rewriteMessage = (message: MessageDescriptor, scope: string, output: FileDescriptor) => {
    const full = `${scope}.${message.name}`
    // protobuf.js holds the well-known types with camelCase fields; the published files say snake_case
    if (full.startsWith(".google.protobuf."))
      for (const field of message.field ?? []) field.name = snakeCase(field.name)
    const oneofUsers = new Map<number, number>()
    for (const field of message.field ?? [])
      if (field.oneofIndex !== undefined)
        oneofUsers.set(field.oneofIndex, (oneofUsers.get(field.oneofIndex) ?? 0) + 1)
    for (const field of message.field ?? []) {
      if (field.typeName !== undefined) {
        field.typeName = resolve(field.typeName, full)
        refer(output, field.typeName)
      }
      // proto-loader's name for the synthetic oneof of a proto3 `optional` field
      const oneof = field.oneofIndex === undefined ? undefined : message.oneofDecl?.[field.oneofIndex]
      if (
        field.oneofIndex !== undefined &&
        oneof?.name === `_${field.name}` &&
        oneofUsers.get(field.oneofIndex) === 1
      )
        field.proto3Optional = true
    }
    for (const nested of message.nestedType ?? []) rewriteMessage(nested, full, output)
  }
  for (const file of byName.values()) {
    const pkg = file.package ?? ""
    const scope = pkg ? `.${pkg}` : ""
    for (const message of file.messageType ?? []) {
      const output = outputFor(pkg, message.name)
      rewriteMessage(message, scope, output)
      output.messageType = [...(output.messageType ?? []), message]
    }
    for (const enumType of file.enumType ?? []) {
      const output = outputFor(pkg, enumType.name)
      output.enumType = [...(output.enumType ?? []), enumType]
    }
    for (const service of file.service ?? []) {
      const output = outputFor(pkg, service.name)
      for (const method of service.method ?? []) {
        if (method.inputType !== undefined) method.inputType = resolve(method.inputType, scope)
        if (method.outputType !== undefined) method.outputType = resolve(method.outputType, scope)
        for (const type of [method.inputType, method.outputType]) if (type !== undefined) refer(output, type)
      }
      output.service = [...(output.service ?? []), service]
    }
  }

  // 3. each file names the files holding what it refers to
  for (const [output, names] of references) {
    const dependencies = new Set<string>()
    for (const name of names) {
      const fileName = topLevelFile(name)
      if (fileName !== undefined && fileName !== output.name) dependencies.add(fileName)
    }
    output.dependency = [...dependencies].sort()
  }
  return [...outputs.values()].map((output) => codec.serialize(output))
}

/** A message or enum definition (which carries the descriptors), not a service. */
const isTypeDefinition = (
  entry: protoLoader.AnyDefinition
): entry is protoLoader.MessageTypeDefinition<object, object> | protoLoader.EnumTypeDefinition =>
  "format" in entry && Array.isArray(entry.fileDescriptorProtos)

/**
 * The package definitions with their descriptors linked (`linkFiles`), for `ReflectionService`,
 * which reads nothing else of them.
 */
export const linkedForReflection = (
  definitions: ReadonlyArray<protoLoader.PackageDefinition>,
  fileOf: (pkg: string, name: string) => string
): protoLoader.PackageDefinition => {
  const encoded: Array<Buffer> = []
  for (const definition of definitions)
    for (const entry of Object.values(definition))
      if (isTypeDefinition(entry)) encoded.push(...entry.fileDescriptorProtos)
  const files = linkFiles(encoded, fileOf)
  const linked: protoLoader.PackageDefinition = {}
  for (const definition of definitions)
    for (const [name, entry] of Object.entries(definition))
      linked[name] = isTypeDefinition(entry) ? { ...entry, fileDescriptorProtos: files } : entry
  return linked
}
