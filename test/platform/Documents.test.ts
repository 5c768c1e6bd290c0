import { memoryDocuments } from "../../src/platform/Documents.js"
import { suite } from "../contracts/DocumentsContract.js"

suite("memory", { fresh: () => Promise.resolve(memoryDocuments()) })
