/** Errors of the CLI that are the user's to fix: printed as one plain sentence on stderr, exit code 1. */
import { Data } from "effect"

/** A mistake of the person at the keyboard, or a state they can change (a busy port, no gateway). */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}
