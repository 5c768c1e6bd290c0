/**
 * How the CLI writes to the terminal. @effect/cli renders help and its own error messages with ANSI
 * colours whatever the output is, and lists subcommands as `<full usage><padding><description>`,
 * padded to the longest usage: with the simulator's twenty options that is a line of about 400
 * columns for every command. This Console, used for the whole CLI, fixes both where they are
 * written instead of forking the library's renderer:
 * - colour codes are removed unless the stream is a terminal and `NO_COLOR` is unset
 *   (https://no-color.org);
 * - a subcommand line of the help (`  - <usage>   <description>`) longer than 100 columns becomes
 *   the usage, wrapped at 100 columns, then the description on the next line, indented;
 * - the generic sentence of an option's type ("A user-defined piece of text.") is dropped where our
 *   own description follows it, so each option reads as what it means.
 */
import { Console, Effect } from "effect"

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences start with ESC
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g

const colours = (stream: NodeJS.WriteStream) => stream.isTTY === true && !process.env.NO_COLOR

/** `  - <usage>    <description>`: the padding @effect/cli puts between them is at least 2 spaces, usages have single ones. */
const SUBCOMMAND = /^(\s*- \S.*?\S) {2,}(\S.*)$/

const WIDTH = 100

/** `text` in lines of at most WIDTH columns, broken before an option (` [--…`, ` --…`), the rest indented. */
const wrap = (text: string, indent: string): Array<string> => {
  const lines: Array<string> = []
  let line = ""
  for (const part of text.split(/ (?=\[?--)/)) {
    if (line !== "" && line.length + 1 + part.length > WIDTH) {
      lines.push(line)
      line = indent + part
    } else line = line === "" ? part : `${line} ${part}`
  }
  return [...lines, line]
}

const GENERIC_TYPE_SENTENCES = new Set([
  "A user-defined piece of text.",
  "An integer.",
  "A floating point number.",
  "A true or false value."
])

/** Help text as we want it: subcommand lines split, generic type sentences dropped when followed by ours. */
export const tidyHelp = (text: string): string => {
  const lines = text.split("\n")
  const out: Array<string> = []
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? ""
    const plain = line.replace(ANSI, "")
    const subcommand = SUBCOMMAND.exec(plain)
    if (subcommand !== null && plain.length > WIDTH) {
      out.push(...wrap(subcommand[1] ?? "", "        "), `      ${subcommand[2] ?? ""}`)
      continue
    }
    // "  A user-defined piece of text.", "", "  <our description>": keep only ours
    const next = (lines[i + 2] ?? "").replace(ANSI, "").trim()
    if (
      GENERIC_TYPE_SENTENCES.has(plain.trim()) &&
      (lines[i + 1] ?? "").trim() === "" &&
      next !== "" &&
      !next.startsWith("This setting is optional")
    ) {
      i++ // the blank line after it goes too
      continue
    }
    out.push(line)
  }
  return out.join("\n")
}

const render = (stream: NodeJS.WriteStream, args: ReadonlyArray<unknown>) =>
  args.map((arg) => {
    if (typeof arg !== "string") return arg
    const tidy = arg.includes("\n") ? tidyHelp(arg) : arg
    return colours(stream) ? tidy : tidy.replace(ANSI, "")
  })

/** Runs `program` with the Console described above. */
export const withTidyConsole = <A, E, R>(program: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.console, (base) => {
    const console: Console.Console = {
      ...base,
      log: (...args) => base.log(...render(process.stdout, args)),
      error: (...args) => base.error(...render(process.stderr, args)),
      unsafe: {
        ...base.unsafe,
        log: (...args) => base.unsafe.log(...render(process.stdout, args)),
        error: (...args) => base.unsafe.error(...render(process.stderr, args))
      }
    }
    return Effect.withConsole(program, console)
  })
